"""The deployed package on MiniStack, once per session: `emulated_stack`.

A MiniStack of the session's own (free port, 127.0.0.1, AUTH=true: every
function calls AWS as its execution role) gets the `emulated` stage from
`python -m deploy deploy`, the code path of `make deploy` (devstack.emulator).
Tests under tests/emulated/ are marked `emulated`; e2e tests imported here
run against the deployed URL through `live_stack`, which is this stack.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests

from deploy import emulator as gaps
from deploy.settings import ROOT
from devstack.emulator import Deployed, Emulator, deploy, ministack_python, start_ministack
from devstack.ports import free_port

# Chalice keeps the downloaded wheels under here between sessions.
BUILD_DIR = ROOT / "build" / "test"
# A page load opens up to six connections at once (Chromium's per-host limit), and
# MiniStack starts a worker process per concurrent invocation: warm that many first.
WARM_WORKERS = 6


def _front_door(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("emulated_stack") if callspec else None


@pytest.hookimpl(trylast=True)  # after pytest's own ordering by fixture parameters
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the emulated tests; run them one front door after the other, in file order
    within each (a door's teardown test last); a module whose subject no front door
    changes (ONE_FRONT_DOOR = True) runs on the first door only."""
    places = [i for i, item in enumerate(items)
              if "tests/emulated/" in item.nodeid.replace("\\", "/")]
    emulated = [items[i] for i in places]
    for item in emulated:
        item.add_marker(pytest.mark.emulated)
    doors = {door: n for n, door in enumerate(FRONT_DOORS)}
    dropped = [item for item in emulated if _front_door(item) not in (None, FRONT_DOORS[0])
               and getattr(item.module, "ONE_FRONT_DOOR", False)]
    kept = sorted((item for item in emulated if item not in dropped),
                  key=lambda item: (doors.get(_front_door(item) or "", 0),
                                    str(item.path), places[emulated.index(item)]))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    others = [item for i, item in enumerate(items) if i not in set(places)]
    first = places[0] if places else len(items)
    items[:] = others[:first] + kept + others[first:]


@dataclass
class EmulatedStack:
    """The emulated stage, deployed and served by a running MiniStack."""

    ministack: Emulator
    deployed: Deployed
    api: str = "rest"  # the front door: "rest" or "http"

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
        return self.ministack.endpoint

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
        return self.ministack.log()

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


# Both front doors (docs/OPERATIONS.md, "Front door"): every emulated test runs
# against each, one MiniStack at a time (pytest finishes one door's tests, stops its
# MiniStack, then deploys the other: ~7 s more, the tests' own time doubles).
# EMULATED_APIS=rest (or http) runs one.
FRONT_DOORS = tuple(api for api in os.environ.get("EMULATED_APIS", "rest,http").split(",")
                    if api)


@pytest.fixture(scope="session", params=FRONT_DOORS)
def emulated_stack(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedStack]:
    """MiniStack with the emulated stage deployed to it; stopped with its functions at the end."""
    if not ministack_python().exists():
        pytest.fail(f"{ministack_python()} not found: `make ministack` (part of `make test`) "
                    "builds MiniStack's venv, or set MINISTACK_PYTHON")
    state = tmp_path_factory.mktemp(f"ministack-{request.param}")
    ministack = start_ministack(free_port(), state / "ministack.log")
    try:
        deployed = deploy(ministack.endpoint, build_dir=BUILD_DIR, api=request.param)
        stack = EmulatedStack(ministack, deployed, request.param)
        warm_api_workers(stack)
        yield stack
    finally:
        ministack.stop()


@pytest.fixture(scope="session")
def live_stack(emulated_stack: EmulatedStack) -> EmulatedStack:
    """The e2e tests' stack, here the deployed one (tests/e2e/conftest.py has the local one)."""
    return emulated_stack
