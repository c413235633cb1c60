"""The stage redeployed unchanged, destroyed, then `make emulate` stopped with Ctrl-C.

Runs last (file order): it removes the session's stage and stops its MiniStack.
"""

from __future__ import annotations

import subprocess  # nosec B404: runs `make deploy`/`make destroy`'s command as a user does
import sys

from deploy.settings import ROOT
from devstack.background import alive
from devstack.emulator import aws_environment
from devstack.ports import port_is_free
from tests.emulated.conftest import EmulatedStack


def deploy_command(stack: EmulatedStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603: fixed argv
        [sys.executable, "-m", "deploy", *args, "--stage", "emulated"], cwd=ROOT,
        env=aws_environment(stack.endpoint), capture_output=True, text=True, timeout=300,
        check=False)


def test_a_redeploy_changes_nothing_and_destroy_leaves_nothing_behind(
        emulated_stack: EmulatedStack) -> None:
    again = deploy_command(emulated_stack, "deploy", "--no-smoke", "--api", emulated_stack.api)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "no changes: the stack already matches this build" in again.stdout

    gone = deploy_command(emulated_stack, "destroy")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert "chalice-cart-emulated is gone" in gone.stdout
    assert emulated_stack.client("apigateway").get_rest_apis()["items"] == []
    assert emulated_stack.client("apigatewayv2").get_apis()["Items"] == []
    assert emulated_stack.client("dynamodb").list_tables()["TableNames"] == []
    assert emulated_stack.client("lambda").list_functions()["Functions"] == []
    assert emulated_stack.client("cognito-idp").list_user_pools(MaxResults=10)[
        "UserPools"] == []
    assert emulated_stack.client("sqs").list_queues().get("QueueUrls", []) == []


def test_ctrl_c_stops_ministack_and_every_function_it_started(
        emulated_stack: EmulatedStack) -> None:
    started = set(emulated_stack.pids)
    assert started, "make emulate started no MiniStack"
    assert emulated_stack.interrupt() == 0
    assert "==> stopping MiniStack and the functions it runs" in emulated_stack.output()
    left = [pid for pid in {*started, *emulated_stack.pids} if alive(pid)]
    assert left == [], left
    assert port_is_free(emulated_stack.port)
