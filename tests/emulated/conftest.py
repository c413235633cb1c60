"""The deployed package on MiniStack, once per session: `emulated_stack`.

`make emulate`'s own command (`python -m devstack emulate`, on a free port) starts a
MiniStack on 127.0.0.1 with AUTH=true (every function calls AWS as its execution
role) and deploys the `emulated` stage with `python -m deploy deploy`, the code
path of `make deploy`, smoke suite included; the fixture reads what it printed.
Tests under tests/emulated/ are marked `emulated`; e2e tests imported here run
against the deployed URL through `live_stack`, which is this stack. The last
test (test_teardown_deployed.py) stops it with Ctrl-C, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess  # nosec B404: starts `make emulate`'s own command
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from deploy import emulator as gaps
from deploy.settings import ROOT
from devstack.background import alive, descendants
from devstack.emulator import Deployed, ministack_python, parse_deployed
from devstack.ports import free_port, local_url

START_TIMEOUT = 600.0  # a first run downloads the x86_64 wheels
# A page load opens up to six connections at once (Chromium's per-host limit), and
# MiniStack starts a worker process per concurrent invocation: warm that many first.
WARM_WORKERS = 6


# These go last within a front door, in this order, whatever other files tests/emulated/
# holds: the first holds up the stream for a minute, the second destroys the stage and
# stops MiniStack.
LAST = ("test_stream_failures_deployed.py", "test_teardown_deployed.py")
# Both front doors (docs/OPERATIONS.md, "Front door"): the emulated tests run against
# each, one `make emulate` at a time: every test on the first door, then on the
# second (its stack starts when the first's teardown has stopped that one). A module
# whose subject no front door changes says ONE_FRONT_DOOR = True and runs on the
# first only. EMULATED_APIS=rest (or http) runs one door.
FRONT_DOORS = tuple(api for api in os.environ.get("EMULATED_APIS", "rest,http").split(",")
                    if api)


def _front_door(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("emulated_stack") if callspec else None


@pytest.hookimpl(trylast=True)  # after pytest's own grouping by fixture parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> tuple[int, int]:
        name = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
        door = FRONT_DOORS.index(_front_door(item) or FRONT_DOORS[0])
        return door, LAST.index(name) + 1 if name in LAST else 0

    places = [i for i, item in enumerate(items)
              if "tests/emulated/" in item.nodeid.replace("\\", "/")]
    dropped = [items[i] for i in places if _front_door(items[i]) not in (None, FRONT_DOORS[0])
               and getattr(items[i].module, "ONE_FRONT_DOOR", False)]
    # stable: file order otherwise
    ours = sorted((items[i] for i in places if items[i] not in dropped), key=rank)
    for item in ours:
        item.add_marker(pytest.mark.emulated)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    first = places[0] if places else len(items)
    others = [item for i, item in enumerate(items) if i not in set(places)]
    items[:] = others[:first] + ours + others[first:]


@dataclass
class EmulatedStack:
    """`make emulate` running: MiniStack with the emulated stage deployed and served."""

    port: int
    process: subprocess.Popen[bytes]
    output_path: Path
    deployed: Deployed
    ministack_log: Path
    pids: list[int] = field(default_factory=list)
    api: str = "rest"  # the front door: "rest" or "http" (make emulate API=...)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a terminal sends it (SIGINT to the foreground group); its exit code."""
        self.pids = sorted(set(self.pids) | set(descendants(self.process.pid)))
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """Whatever is left, killed (a failed test must not leave MiniStack running)."""
        for pid in [self.process.pid, *self.pids, *descendants(self.process.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    @property
    def url(self) -> str:
        """The stage's base URL for requests, no trailing slash: `url + "/api/products"`."""
        return self.deployed.api.rstrip("/")

    @property
    def shop_url(self) -> str:
        """The stage's base URL for a browser (the API's own host name under localhost)."""
        return self.deployed.shop.rstrip("/")

    @property
    def endpoint(self) -> str:
        return local_url(self.port)

    @property
    def table_name(self) -> str:
        return self.deployed.table

    @property
    def queue_url(self) -> str:
        return self.deployed.queue

    def client(self, service: str) -> Any:
        """A boto3 client on the emulator, with its root credentials."""
        return boto3.session.Session(
            aws_access_key_id=gaps.ACCESS_KEY, aws_secret_access_key=gaps.SECRET_KEY,
            region_name=gaps.REGION,
        ).client(service, endpoint_url=self.endpoint)

    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    def log(self) -> str:
        return self.ministack_log.read_text(errors="replace")

    def function_log(self, function: str) -> str:
        """What the function wrote to its log group (MiniStack's CloudWatch Logs)."""
        logs = self.client("logs")
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=f"/aws/lambda/{function}")
        return "\n".join(e["message"] for page in pages for e in page["events"])

    def mailbox(self, address: str) -> list[dict[str, Any]]:
        """What MiniStack's Cognito sent to `address`, oldest first (its SES outbox)."""
        with urllib.request.urlopen(self.endpoint + "/_ministack/ses/messages",  # nosec B310
                                    timeout=5) as response:
            by_account = json.loads(response.read())["messages"]
        return [m for messages in by_account.values() for m in messages
                if address in m.get("To", [])]

    def confirmation_code(self, address: str) -> str:
        """The code in the newest e-mail the pool sent to `address`."""
        [*_, newest] = self.mailbox(address)
        found = re.search(r"\b(\d{6})\b", newest["BodyText"] or newest["BodyHtml"] or "")
        assert found, newest
        return found[1]


def warm_api_workers(stack: EmulatedStack, workers: int = WARM_WORKERS) -> None:
    """Start `workers` workers of the API function, as provisioned concurrency would.

    Six cold starts at once on a shared 2-CPU machine can each take longer than a
    browser test waits for its page (docs/OPERATIONS.md, the emulated stage's
    difference "concurrency on this machine"); a 502 from one past its 15 s is retried.
    """
    def first_answer(_: int) -> int:
        for _attempt in range(3):
            status = requests.get(f"{stack.url}/api/products", timeout=60).status_code
            if status == 200:
                return status
        return status

    with ThreadPoolExecutor(workers) as pool:
        statuses = list(pool.map(first_answer, range(workers)))
    assert statuses == [200] * workers, statuses


def start_emulate(state: Path, api: str = "rest") -> EmulatedStack:
    """`python -m devstack emulate` in a session of its own; back once it printed the Shop."""
    port = free_port()
    output_path = state / "emulate.out"
    with output_path.open("wb") as output:
        process = subprocess.Popen(  # nosec B603: fixed argv
            [sys.executable, "-m", "devstack", "emulate", "--port", str(port),
             "--state-dir", str(state), "--api", api],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while "make smoke BASE_URL=" not in (text := output_path.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                process.wait(30)
            pytest.fail(f"make emulate did not serve (exit {process.poll()}):\n{text[-3000:]}")
        time.sleep(0.2)
    deployed = parse_deployed(text)
    assert deployed is not None, text
    return EmulatedStack(port, process, output_path, deployed, state / "ministack.log",
                         descendants(process.pid), api)


@pytest.fixture(scope="session", params=FRONT_DOORS)
def emulated_stack(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedStack]:
    """`make emulate API=<door>`'s stack; stopped with every process it started."""
    if not ministack_python().exists():
        pytest.fail(f"{ministack_python()} not found: `make ministack` (part of `make test`) "
                    "builds MiniStack's venv, or set MINISTACK_PYTHON")
    stack = start_emulate(tmp_path_factory.mktemp(f"emulate-{request.param}"), request.param)
    try:
        warm_api_workers(stack)
        yield stack
    finally:
        if stack.process.poll() is None:
            try:
                stack.interrupt()
            except subprocess.TimeoutExpired:
                pass
        stack.kill()


@pytest.fixture(scope="session")
def live_stack(emulated_stack: EmulatedStack) -> EmulatedStack:
    """The e2e tests' stack, here the deployed one (tests/e2e/conftest.py has the local one)."""
    return emulated_stack
