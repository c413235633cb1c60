"""The deployed package on MiniStack, once per session: `emulated_stack`.

A MiniStack of the session's own (free port, 127.0.0.1, AUTH=true: every
function calls AWS as its execution role) gets the `emulated` stage from
`python -m deploy deploy`, the code path of `make deploy` (devstack.emulator).
Tests under tests/emulated/ are marked `emulated`; e2e tests imported here
run against the deployed URL through `live_stack`, which is this stack.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from deploy import emulator as gaps
from deploy.settings import ROOT
from devstack.emulator import Deployed, Emulator, deploy, ministack_python, start_ministack
from devstack.ports import free_port

# Chalice keeps the downloaded wheels under here between sessions.
BUILD_DIR = ROOT / "build" / "test"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/emulated/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.emulated)


@dataclass
class EmulatedStack:
    """The emulated stage, deployed and served by a running MiniStack."""

    ministack: Emulator
    deployed: Deployed

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


@pytest.fixture(scope="session")
def emulated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedStack]:
    """MiniStack with the emulated stage deployed to it; stopped with its functions at the end."""
    if not ministack_python().exists():
        pytest.fail(f"{ministack_python()} not found: `make ministack` (part of `make test`) "
                    "builds MiniStack's venv, or set MINISTACK_PYTHON")
    state = tmp_path_factory.mktemp("ministack")
    ministack = start_ministack(free_port(), state / "ministack.log")
    try:
        deployed = deploy(ministack.endpoint, build_dir=BUILD_DIR)
        yield EmulatedStack(ministack, deployed)
    finally:
        ministack.stop()


@pytest.fixture(scope="session")
def live_stack(emulated_stack: EmulatedStack) -> EmulatedStack:
    """The e2e tests' stack, here the deployed one (tests/e2e/conftest.py has the local one)."""
    return emulated_stack
