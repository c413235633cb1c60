# chalice-cart: the project's vocabulary. Every target installs what it needs.
SHELL := /bin/bash
# Set-up needs only `make` and any Python 3. That Python installs uv (pinned with
# hashes in requirements-tools.lock) into .venv-tools; uv then makes each venv and
# fills it from its lock file (every package, transitive ones included, pinned
# with hashes: `make lock` writes them from the requirements-*.txt beside them).
# The venv's Python is the Lambda runtime's (python3.13, .chalice/config.json):
# what is tested and run locally is what is deployed. scripts/lambda-python finds
# an installed one (PATH, pyenv); with none, uv fetches a managed CPython 3.13.
# PYTHON=... overrides; INSTALLER=pip uses pip with the same lock files instead of
# uv (and is what happens, with a warning, when uv cannot be installed).
LAMBDA_PYTHON := 3.13
PYTHON ?= $(shell scripts/lambda-python $(LAMBDA_PYTHON))
BOOTSTRAP_PYTHON ?= $(shell command -v python3 || command -v python)
INSTALLER ?= uv
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAGE ?= dev
STAMP := $(VENV)/.installed-py$(LAMBDA_PYTHON)
CHECKOV_VENV := $(VENV)/checkov
# Every lock file `make lock` writes. A new venv: add its requirements-<name>.txt,
# its lock here, run `make lock`, then `$(call sync_venv,<dir>,<lock>)` in its rule.
LOCKS := requirements-dev.lock requirements-checkov.lock requirements-ministack.lock

.PHONY: install lock browser run reset logs catalog test lint unit functional e2e bench smoke soak package deploy destroy redrive clean ministack emulate emulated

$(UV): requirements-tools.lock
	@scripts/bootstrap-uv "$(BOOTSTRAP_PYTHON)" $(TOOLS) requirements-tools.lock

# $(call sync_venv,DIR,LOCK): DIR a venv of the Lambda runtime's Python holding
# exactly what LOCK pins (hashes checked), made anew if its Python is another.
define sync_venv
	@$(1)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(LAMBDA_PYTHON)".split("."))))' \
		2>/dev/null || scripts/make-venv "$(INSTALLER)" "$(UV)" "$(or $(PYTHON),$(LAMBDA_PYTHON))" $(1)
	scripts/sync-venv "$(INSTALLER)" "$(UV)" $(1) $(2)
endef

$(STAMP): requirements.txt requirements-dev.lock requirements-checkov.lock \
		| $(if $(filter uv,$(INSTALLER)),$(UV))
	$(call sync_venv,$(VENV),requirements-dev.lock)
	$(call sync_venv,$(CHECKOV_VENV),requirements-checkov.lock)
	touch $(STAMP)

install: $(STAMP)

# Re-resolve every lock file from its requirements-*.txt (hashes included):
# after changing a pin. Kept versions stay unless UPGRADE=1.
UPGRADE ?= 0
lock: $(UV)
	@for lock in requirements-tools.lock $(LOCKS); do \
		cp "$$lock" "$$lock.new" 2>/dev/null || true; \
		$(UV) pip compile --quiet --generate-hashes --universal --custom-compile-command "make lock" \
			--python-version $(LAMBDA_PYTHON) $(if $(filter 1,$(UPGRADE)),--upgrade) \
			"$${lock%.lock}.txt" -o "$$lock.new" || { rm -f "$$lock.new"; exit 1; }; \
		if cmp -s "$$lock" "$$lock.new"; then rm "$$lock.new"; echo "$$lock: unchanged"; \
		else mv "$$lock.new" "$$lock"; echo "$$lock: written"; fi; \
	done

# MiniStack, the local AWS emulator of `make emulate` and tests/emulated, in a venv of
# its own: its botocore pin clashes with moto's. It runs the deployed functions with
# its own interpreter, so that is the Lambda runtime's Python too.
MINISTACK_VENV := $(VENV)/ministack
MINISTACK_STAMP := $(MINISTACK_VENV)/.installed
$(MINISTACK_STAMP): requirements-ministack.lock | $(STAMP)
	$(call sync_venv,$(MINISTACK_VENV),requirements-ministack.lock)
	touch $(MINISTACK_STAMP)

ministack: $(MINISTACK_STAMP)

# The browser tests drive an installed Chrome or Chromium (CHROME_PATH, Playwright's
# own if you installed it, then the system's; devstack/browser.py). Only on
# Debian/Ubuntu is one installed for you (apt-get chromium); never a download.
browser: install
	@$(BIN)/python -m devstack browser >/dev/null
BROWSER_PATH = $$($(BIN)/python -m devstack browser --no-install)

# The whole stack offline on http://127.0.0.1:$(PORT): moto, table, stream runner,
# chalice local (README "Run it locally"). Ctrl-C stops every process it started.
# chalice local's reloader polls every file under the project (the venv too) and
# restarts on any write, so it is opt-in: `make run RELOAD=1`.
# Data survives a restart (build/devstack/table.json); `make reset` starts clean.
# RELOAD and VERBOSE take 1/true/yes or 0/false/no; VERBOSE=1 logs every stream batch.
MOTO_PORT ?= 8001
RELOAD ?= 0
VERBOSE ?= 0
# TTL_SWEEP: seconds between expiries of items past their TTL (devstack/ttl.py; 0: never).
TTL_SWEEP ?= 60
RUN = $(BIN)/python -m devstack run --port "$(PORT)" --moto-port "$(MOTO_PORT)" \
	--reload "$(RELOAD)" --verbose "$(VERBOSE)" --ttl-interval "$(TTL_SWEEP)"
run: install
	exec $(RUN)

reset: install
	exec $(RUN) --fresh

# Load a catalog file (docs/OPERATIONS.md "Managing the catalog"): into the local
# stack's table (the `make run` on MOTO_PORT), or with STAGE=<stage> into a deployed
# (or emulated) stage's. The whole file is checked first; a bad line writes nothing.
catalog: install
	@test -n "$(FILE)" || { echo "usage: make catalog FILE=catalog/products.csv [STAGE=dev]" >&2; exit 2; }
	$(BIN)/python -m deploy.catalog "$(FILE)" --moto-port "$(MOTO_PORT)" \
		$(if $(filter command line environment,$(origin STAGE)),--stage "$(STAGE)")

# Follow what the running stack writes (every process's output, one file).
logs:
	@test -f build/devstack/stack.log || { echo "no build/devstack/stack.log: start the stack with make run" >&2; exit 1; }
	tail -n 50 -F build/devstack/stack.log

lint: install
	scripts/tracked-python | xargs $(BIN)/ruff check --force-exclude
	$(BIN)/mypy
	$(BIN)/bandit -q -r app.py chalicelib devstack deploy bench smoke -c pyproject.toml

test: install ministack browser lint
	CHROME_PATH="$(BROWSER_PATH)" $(BIN)/pytest tests

unit: install
	$(BIN)/pytest tests/unit

functional: install
	$(BIN)/pytest tests/functional

e2e: install browser
	CHROME_PATH="$(BROWSER_PATH)" $(BIN)/pytest tests/e2e

# The history checker (tests/functional/test_history.py) for longer: more shoppers,
# more operations, more faults; prints operations, faults injected, anomalies found.
# SOAK_SEED=n replays a run exactly as far as threads allow.
SOAK_OPS ?= 60
SOAK_SEED ?= $(shell date +%s)
soak: install
	HISTORY_OPS=$(SOAK_OPS) HISTORY_SEED=$(SOAK_SEED) HISTORY_PRIVATE=6 HISTORY_SHARED=4 \
	HISTORY_FAULT_RATE=0.15 $(BIN)/pytest tests/functional/test_history.py -q -p no:randomly

# The deployed stack on MiniStack, a local AWS emulator, on 127.0.0.1:$(MINISTACK_PORT):
# the `emulated` stage deployed by `python -m deploy` (what `make deploy` runs), its
# smoke suite, then `Shop: <url>` until Ctrl-C stops MiniStack and every function it
# runs (README "Run the deployed stack offline"). API=http: the HTTP API front door.
MINISTACK_PORT ?= 4566
API ?= rest
emulate: install ministack
	exec $(BIN)/python -m devstack emulate --port "$(MINISTACK_PORT)" --api "$(API)"

# The tests against the deployed package on MiniStack only (part of `make test`).
emulated: install ministack browser
	CHROME_PATH="$(BROWSER_PATH)" $(BIN)/pytest tests/emulated

# Every benchmark (bench/), each table printed, all of them written to
# docs/PERFORMANCE.md with the machine, date and command. Loopback only, ~4 min.
bench: install ministack
	$(BIN)/python -m bench --command "make bench"

# The shopper's journey over HTTP against any running stack: `make run` in
# another terminal, or a deployed stage's URL (BASE_URL=https://.../api/).
BASE_URL ?= http://127.0.0.1:$(PORT)
smoke: install
	$(BIN)/python -m smoke --base-url $(BASE_URL)

# Deploy to the AWS account of the usual boto3 chain (see README "Deploy").
# `package` also expands the template and runs checkov over it (no AWS calls).
# EMAIL=you@example.com subscribes to the alarms; RESEED=1 rewrites the catalog.
# The deploy ends with the smoke suite against the URL it printed; SMOKE=0 skips it.
EMAIL ?=
RESEED ?= 0
SMOKE ?= 1
package: install
	$(BIN)/python -m deploy package --stage $(STAGE)

deploy: install
	$(BIN)/python -m deploy deploy --stage $(STAGE) $(if $(filter 0,$(SMOKE)),--no-smoke) \
		$(if $(EMAIL),--alarm-email $(EMAIL)) $(if $(filter 1,$(RESEED)),--reseed)

# The dead-letter queue's failed stream batches, run through the follow-ups again.
# STAGE=emulated: the dead-letter queue of `make emulate`'s MiniStack (MINISTACK_PORT).
redrive: install
	MINISTACK_PORT="$(MINISTACK_PORT)" $(BIN)/python -m deploy redrive --stage $(STAGE)

destroy: install
	$(BIN)/python -m deploy destroy --stage $(STAGE)

clean:
	rm -rf $(VENV) $(TOOLS) build .pytest_cache .mypy_cache .ruff_cache
