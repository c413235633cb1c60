# chalice-cart: the project's vocabulary. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAGE ?= dev
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit functional e2e bench deploy destroy clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.3"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@# Browser tests use Debian's Chromium; never a downloaded browser build.
	test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/bandit -q -r app.py chalicelib -c pyproject.toml

test: install lint
	$(BIN)/pytest tests

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
