"""The local stack as a user runs it: real processes, HTTP, the real stream.

`live_stack` (moto server, stream runner, chalice local) stays up for the
session; the stop test starts a second stack of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404: starts the stack's own command
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.environment import PROJECT_DIR
from tests.e2e.helpers import (
    LiveStack,
    alive,
    free_port,
    port_is_free,
    start_stack,
    wait_until,
)
from tests.factories import JSON, add_body

STREAM_DEADLINE = 2.0  # seconds from a write to its summary, as the issue asks


def add(session: requests.Session, stack: LiveStack, product_id: str,
        quantity: int) -> requests.Response:
    response = session.post(f"{stack.url}/api/cart/items", headers=JSON,
                            data=add_body(product_id, quantity), timeout=5)
    assert response.status_code == 201, response.text
    return response


def status(session: requests.Session, stack: LiveStack) -> dict[str, Any]:
    response = session.get(f"{stack.url}/api/cart/status", timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_cart_status_reflects_an_add_within_two_seconds(live_stack: LiveStack) -> None:
    shopper = requests.Session()
    add(shopper, live_stack, "kettle", 2)
    added = time.monotonic()

    summary = wait_until(lambda: status(shopper, live_stack)["itemCount"] == 2 and
                         status(shopper, live_stack), timeout=STREAM_DEADLINE)

    assert time.monotonic() - added < STREAM_DEADLINE
    assert summary["subtotalCents"] == 2 * 5900


def test_a_checked_out_order_becomes_confirmed(live_stack: LiveStack) -> None:
    shopper = requests.Session()
    add(shopper, live_stack, "espresso-cup", 1)
    add(shopper, live_stack, "filters", 3)
    cart = shopper.get(f"{live_stack.url}/api/cart", timeout=5).json()
    assert cart["itemCount"] == 4

    placed = shopper.post(f"{live_stack.url}/api/cart/checkout", headers=JSON, timeout=5)
    assert placed.status_code == 201, placed.text
    order_url = f"{live_stack.url}/api/orders/{placed.json()['orderId']}"

    order = wait_until(
        lambda: (body := shopper.get(order_url, timeout=5).json())["status"] == "CONFIRMED"
        and body,
        timeout=STREAM_DEADLINE,
    )
    assert order["itemCount"] == 4


def _write_poison_line(stack: LiveStack, cart_id: str) -> None:
    """A cart line whose quantity is a string: no follow-up can ever read it."""
    stack.dynamodb().put_item(TableName=stack.table_name, Item={
        "pk": {"S": f"CART#{cart_id}"}, "sk": {"S": "LINE#kettle"},
        "productId": {"S": "kettle"}, "name": {"S": "Gooseneck kettle"},
        "unitPriceCents": {"N": "5900"}, "quantity": {"S": "two"},
        "updatedAt": {"S": "2026-01-01T00:00:00.000Z"},
    })


def _parked(stack: LiveStack, cart_id: str) -> list[dict[str, Any]]:
    if not stack.park_file.exists():
        return []
    entries = [json.loads(line) for line in stack.park_file.read_text().splitlines()]
    return [entry for entry in entries
            if entry["keys"]["pk"]["S"] == f"CART#{cart_id}"]


def test_a_poison_record_is_parked_and_other_carts_still_update(
        live_stack: LiveStack) -> None:
    poison_cart = f"poison-{os.getpid()}-{time.time_ns()}"
    _write_poison_line(live_stack, poison_cart)
    shopper = requests.Session()
    add(shopper, live_stack, "grinder", 1)

    wait_until(lambda: status(shopper, live_stack)["itemCount"] == 1, timeout=STREAM_DEADLINE)
    parked = wait_until(lambda: len(entries := _parked(live_stack, poison_cart)) >= 1
                        and entries, timeout=10)

    assert {entry["handler"] for entry in parked} == {"process_stream"}
    assert all(entry["record"]["dynamodb"]["NewImage"]["quantity"] == {"S": "two"}
               for entry in parked)
    reported = wait_until(lambda: [
        json.loads(line) for line in live_stack.errors().splitlines()
        if line.startswith("{") and poison_cart in line and "stream_record_parked" in line
    ], timeout=5)
    assert reported[0]["attempts"] >= 1
    # Later writes still flow: the handler that parked it is not stuck on it.
    add(shopper, live_stack, "grinder", 1)
    wait_until(lambda: status(shopper, live_stack)["itemCount"] == 2, timeout=STREAM_DEADLINE)


@pytest.fixture
def second_stack(tmp_path: Path) -> LiveStack:
    return start_stack(tmp_path / "second-stack")


def test_stop_leaves_no_process_and_frees_the_ports(second_stack: LiveStack) -> None:
    stack = second_stack
    assert requests.get(f"{stack.url}/api/products", timeout=5).status_code == 200
    processes = [stack.process.pid, *stack.pids]
    assert len(stack.pids) >= 3  # moto server, stream runner, chalice local

    assert stack.stop() == 0

    assert wait_until(lambda: not any(alive(pid) for pid in processes), timeout=5)
    assert port_is_free(stack.port)
    assert port_is_free(stack.moto_port)
    assert "devstack: stopping" in stack.output()


def _runner_pid(stack: LiveStack) -> int:
    for pid in stack.pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"devstack" in argv and b"streams" in argv:
            return pid
    raise AssertionError("no stream runner among the stack's processes")


def test_a_crashed_child_stops_the_stack_with_its_cause(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "crashing-stack")
    try:
        os.kill(_runner_pid(stack), signal.SIGKILL)
        code = stack.process.wait(timeout=15)
    finally:
        stack.stop()

    assert code == 1
    assert "devstack: the stream runner exited with code -9; stopping the stack" in stack.errors()
    assert wait_until(lambda: not any(alive(pid) for pid in stack.pids), timeout=5)
    assert port_is_free(stack.port) and port_is_free(stack.moto_port)


def test_a_port_in_use_is_refused_in_one_line(live_stack: LiveStack) -> None:
    result = subprocess.run(  # nosec B603: this venv's interpreter, fixed argv
        [sys.executable, "-m", "devstack", "run", "--port", str(live_stack.port),
         "--moto-port", str(free_port())],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"devstack: port {live_stack.port} on 127.0.0.1 is already in use "
        "(Address already in use); stop what holds it or pick another port"
    ]
    assert requests.get(f"{live_stack.url}/api/products", timeout=5).status_code == 200
