"""The local stack as a user runs it: real processes, HTTP, the real stream.

`live_stack` (moto server, stream runner, chalice local) stays up for the
session; the tests that stop, restart or crash a stack start one of their own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess  # nosec B404: starts the stack's own command
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.environment import PROJECT_DIR
from tests.e2e.helpers import (
    HOST,
    LiveStack,
    alive,
    descendants,
    free_port,
    port_is_free,
    start_stack,
    store_stall,
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


def _pid_of(stack: LiveStack, marker: bytes) -> int:
    """The stack's child whose command line holds `marker` (moto, streams, chalice_local)."""
    for pid in descendants(stack.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(marker in arg for arg in argv[1:4]) and alive(pid):
            return pid
    raise AssertionError(f"no {marker!r} among the stack's processes")


def _checked_out(stack: LiveStack, shopper: requests.Session) -> str:
    add(shopper, stack, "kettle", 2)
    placed = shopper.post(f"{stack.url}/api/cart/checkout", headers=JSON, timeout=5)
    assert placed.status_code == 201, placed.text
    add(shopper, stack, "grinder", 1)  # a cart after the order
    return str(placed.json()["orderId"])


def _settled(read: Any, quiet: float = 1.5, timeout: float = 30.0) -> dict[str, Any]:
    """What `read()` returns once two reads `quiet` seconds apart agree (the stream is done)."""
    deadline = time.monotonic() + timeout
    last = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read()
        if now == last:
            return dict(now)
        last = now
    raise AssertionError(f"still changing after {timeout} s: {last!r}")


def _what_a_shopper_sees(stack: LiveStack, shopper: requests.Session,
                         order_id: str) -> dict[str, Any]:
    return {
        "cart": shopper.get(f"{stack.url}/api/cart", timeout=5).json(),
        "status": status(shopper, stack),
        "order": shopper.get(f"{stack.url}/api/orders/{order_id}", timeout=5).json(),
        "products": requests.get(f"{stack.url}/api/products", timeout=5).json(),
    }


def test_a_cart_and_its_order_survive_a_restart_and_the_restore_is_not_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a shopper sees settles once the caches have turned over: the catalog's
    # stock (2 s here, as for the live stack) and inCarts (the shared snapshot's 2 s
    # plus each process's 1 s: services.COUNTS*).
    monkeypatch.setenv("CATALOG_CACHE_SECONDS", "2")
    quiet = 4.0
    state = tmp_path / "restarted-stack"
    stack = start_stack(state)
    shopper = requests.Session()  # one cookie jar: the same shopper after the restart
    try:
        order_id = _checked_out(stack, shopper)
        before = _settled(lambda: _what_a_shopper_sees(stack, shopper, order_id), quiet)
        assert before["order"]["status"] == "CONFIRMED" and before["status"]["itemCount"] == 1
    finally:
        assert stack.stop() == 0

    stack = start_stack(state)
    try:
        assert "items restored from" in stack.output()
        time.sleep(quiet)  # were the restore's records delivered, the counters would move
        after = _what_a_shopper_sees(stack, shopper, order_id)
    finally:
        stack.stop()

    assert after == before  # cart, summary (same updatedAt), order, inCarts: all kept
    assert before["cart"]["items"][0]["productId"] == "grinder"
    assert after["order"]["status"] == "CONFIRMED"


def test_reset_starts_clean(tmp_path: Path) -> None:
    state = tmp_path / "reset-stack"
    stack = start_stack(state)
    shopper = requests.Session()
    try:
        add(shopper, stack, "kettle", 1)
    finally:
        stack.stop()

    stack = start_stack(state, extra=("--fresh",))
    try:
        cart = shopper.get(f"{stack.url}/api/cart", timeout=5).json()
    finally:
        stack.stop()

    assert "devstack: starting clean (removed table.json, stream-position.json" \
        in stack.output()
    assert cart["itemCount"] == 0


def test_a_killed_moto_is_restarted_with_the_data_it_had(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "moto-crash")
    shopper = requests.Session()
    try:
        for _ in range(30):  # the old stream runs well past where a new one would start
            add(shopper, stack, "filters", 1)
        order_id = _checked_out(stack, shopper)  # checks the filters out too
        for _ in range(30):
            add(shopper, stack, "filters", 1)
        # moto saves the table within a second of a change: what a crash keeps.
        wait_until(lambda: _saved_quantity(stack, "filters") == 30, timeout=10)
        os.kill(_pid_of(stack, b"moto"), signal.SIGKILL)

        cart = wait_until(lambda: _answer(shopper, f"{stack.url}/api/cart"), timeout=30)
        order = shopper.get(f"{stack.url}/api/orders/{order_id}", timeout=5)
        add(shopper, stack, "grinder", 1)  # the stream runner follows the new table
        # A new moto has a new user pool, so chalice local restarts: connections reset.
        wait_until(lambda: (seen := _answer(shopper, f"{stack.url}/api/cart/status"))
                   and seen["itemCount"] == 32, timeout=30)
        # The restored holder mark remembers the old stream's last sequence:
        # the new stream's records must come after it, or popularity sticks.
        removed = shopper.delete(f"{stack.url}/api/cart/items/grinder", timeout=5)
        assert removed.status_code in (200, 204), removed.text
        wait_until(lambda: _in_carts(stack, "grinder") == 0, timeout=10)
    finally:
        assert stack.stop() == 0

    assert "devstack: the moto server exited with code -9; restarting it (1/3)" \
        in stack.errors()
    assert sorted(line["productId"] for line in cart["items"]) == ["filters", "grinder"]
    assert order.status_code == 200 and order.json()["orderId"] == order_id


def _saved_quantity(stack: LiveStack, product_id: str) -> int | None:
    try:
        saved = json.loads((stack.state_dir / "table.json").read_text())
    except (OSError, ValueError):
        return None
    return next((int(item["quantity"]["N"]) for item in saved["items"]
                 if item["sk"]["S"] == f"LINE#{product_id}"), None)


def _in_carts(stack: LiveStack, product_id: str) -> int:
    products = requests.get(f"{stack.url}/api/products", timeout=5).json()["products"]
    return int(next(p["inCarts"] for p in products if p["id"] == product_id))


def _answer(session: requests.Session, url: str) -> dict[str, Any] | None:
    try:
        response = session.get(url, timeout=2)
    except requests.RequestException:
        return None
    return dict(response.json()) if response.status_code == 200 else None


@pytest.mark.parametrize(("marker", "name"), [(b"streams", "stream runner"),
                                              (b"chalice_local", "chalice local")])
def test_a_killed_child_is_restarted_and_the_stack_keeps_working(
        tmp_path: Path, marker: bytes, name: str) -> None:
    stack = start_stack(tmp_path / f"{name.replace(' ', '-')}-crash")
    shopper = requests.Session()
    try:
        add(shopper, stack, "kettle", 1)
        wait_until(lambda: status(shopper, stack)["itemCount"] == 1, timeout=10)
        os.kill(_pid_of(stack, marker), signal.SIGKILL)
        wait_until(lambda: f"the {name} exited" in stack.errors(), timeout=10)

        wait_until(lambda: _answer(shopper, f"{stack.url}/api/cart"), timeout=30)
        add(shopper, stack, "kettle", 1)
        wait_until(lambda: status(shopper, stack)["itemCount"] == 2, timeout=10)
    finally:
        assert stack.stop() == 0

    assert f"devstack: the {name} exited with code -9; restarting it (1/3)" in stack.errors()
    assert stack.process.returncode == 0


def test_ctrl_c_after_activity_stops_server_runner_then_moto_without_an_error(
        tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "interrupted-stack")
    shopper = requests.Session()
    for _ in range(5):
        add(shopper, stack, "filters", 1)
    shopper.post(f"{stack.url}/api/cart/checkout", headers=JSON, timeout=5)

    os.kill(stack.process.pid, signal.SIGINT)
    code = stack.process.wait(timeout=15)

    assert code == 0
    stopped = [line for line in stack.output().splitlines()
               if line.startswith("devstack: stopped")]
    assert len(stopped) == 1
    assert stopped[0].startswith(
        "devstack: stopped chalice local, stream runner, moto server in ")
    everything = stack.output() + stack.errors()
    assert "ERROR" not in everything and "Traceback" not in everything


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def test_the_idle_stack_uses_under_two_percent_of_a_core(live_stack: LiveStack) -> None:
    shopper = requests.Session()
    add(shopper, live_stack, "scale", 1)
    wait_until(lambda: status(shopper, live_stack)["itemCount"] >= 1, timeout=10)
    time.sleep(3.0)  # polling backs off to its slowest within a few seconds
    pids = [live_stack.process.pid, *descendants(live_stack.process.pid)]

    before, started = _cpu_ticks(pids), time.monotonic()
    time.sleep(10.0)
    used = (_cpu_ticks(pids) - before) / os.sysconf("SC_CLK_TCK")
    share = used / (time.monotonic() - started)

    assert share < 0.02, f"the idle stack used {share:.1%} of a core"


def test_a_stalled_runner_warns_on_stderr_and_says_when_it_caught_up(
        live_stack: LiveStack) -> None:
    shopper = requests.Session()
    warned = ""
    for _ in range(3):  # the runner may finish the record before the stall begins: again
        time.sleep(1.5)  # idle: the runner polls slowly, so the record is not read yet
        add(shopper, live_stack, "kettle", 1)
        with store_stall(live_stack, 30) as end:  # the follow-ups' DynamoDB calls hang
            try:
                warned = wait_until(lambda: [
                    line for line in live_stack.errors().splitlines()
                    if line.startswith("devstack streams: warning: stream lag")
                ], timeout=9)[-1]
            except AssertionError:
                continue
            finally:
                end()
        break

    assert "cart status and order confirmations are behind" in warned
    wait_until(lambda: "devstack streams: caught up" in live_stack.errors(), timeout=20)


# -- 9. tidy edges ----------------------------------------------------------------

def test_every_request_is_logged_once(live_stack: LiveStack) -> None:
    probe = f"probe-{time.time_ns()}"
    responses = [requests.get(f"{live_stack.url}/api/products?{probe}", timeout=5),
                 requests.get(f"{live_stack.url}/api/{probe}", timeout=5),  # the app's 404
                 requests.get(f"{live_stack.url}/{probe}", timeout=5)]

    def lines(text: str) -> list[str]:
        return [line for line in (live_stack.output() + live_stack.errors()).splitlines()
                if text in line]

    ids = [response.headers["X-Request-Id"] for response in responses]
    wait_until(lambda: all(lines(request_id) for request_id in ids), timeout=5)
    time.sleep(0.2)  # a second line, if any, would be written right after the first
    assert [len(lines(request_id)) for request_id in ids] == [1, 1, 1]
    assert lines(probe) == []  # no Apache-style line from chalice local beside the app's
    assert [response.status_code for response in responses] == [200, 404, 404]


def test_a_burst_of_requests_never_overflows_the_connection_pool(
        live_stack: LiveStack) -> None:
    def fetch(_: int) -> int:
        return requests.get(f"{live_stack.url}/api/products", timeout=30).status_code

    with ThreadPoolExecutor(max_workers=48) as pool:
        codes = list(pool.map(fetch, range(96)))

    assert codes == [200] * 96
    assert "Connection pool is full" not in live_stack.errors()


def test_a_client_that_goes_away_leaves_no_traceback(live_stack: LiveStack) -> None:
    for _ in range(20):
        with socket.create_connection((HOST, live_stack.port)) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            # Reset, not a polite close: the server's write meets a dead socket.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert requests.get(f"{live_stack.url}/api/products", timeout=5).status_code == 200

    errors = live_stack.errors()
    assert "BrokenPipeError" not in errors and "ConnectionResetError" not in errors
    assert "Traceback" not in errors


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
