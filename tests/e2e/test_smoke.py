"""`python -m smoke`: passes against the local stack, names the step a broken stack fails."""

from __future__ import annotations

import http.server
import subprocess  # nosec B404: runs the smoke suite as a user does
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.environment import PROJECT_DIR
from tests.e2e.helpers import HOST, LiveStack, free_port

STEPS = ("products", "add", "cart-status", "display", "set", "remove", "checkout",
         "order-confirmed", "bad-input")


def smoke(base_url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603
        [sys.executable, "-m", "smoke", "--base-url", base_url, *extra],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)


def test_the_smoke_suite_passes_against_the_local_stack(live_stack: LiveStack) -> None:
    result = smoke(live_stack.url)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in STEPS:
        assert f"ok    {step} " in result.stdout, (step, result.stdout)
    assert result.stdout.rstrip().endswith("smoke: passed")


def test_the_smoke_suite_takes_the_deployed_form_of_the_url_locally_too(
        live_stack: LiveStack) -> None:
    result = smoke(live_stack.url + "/api/")  # what `make deploy` prints ends in /api/
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the shop's root is {live_stack.url}" in result.stdout
    assert result.stdout.rstrip().endswith("smoke: passed")


class BrokenStatus(http.server.BaseHTTPRequestHandler):
    """The local stack behind a proxy that answers one step wrong: the cart's
    status never shows what was added (a stream follow-up that never runs)."""

    upstream = ""
    seen: list[tuple[str, str]] = []
    cookies: list[str] = []

    def _forward(self) -> None:
        self.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "GET" and self.path == "/api/cart/status":
            payload = b'{"itemCount":0,"subtotalCents":0,"currency":"EUR","updatedAt":null}'
            status, headers = 200, {"Content-Type": "application/json"}
        else:
            forwarded = {k: v for k, v in self.headers.items()
                         if k.lower() in ("cookie", "content-type", "idempotency-key")}
            answer = requests.request(self.command, self.upstream + self.path, data=body,
                                      headers=forwarded, timeout=10)
            payload, status = answer.content, answer.status_code
            headers = {k: v for k, v in answer.headers.items()
                       if k.lower() in ("content-type", "set-cookie")}
            if "set-cookie" in {k.lower() for k in headers}:
                self.cookies.append(answer.headers["Set-Cookie"].split(";", 1)[0])
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def broken_stack(live_stack: LiveStack) -> Iterator[str]:
    BrokenStatus.upstream = live_stack.url
    BrokenStatus.seen, BrokenStatus.cookies = [], []
    server = http.server.ThreadingHTTPServer((HOST, free_port()), BrokenStatus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_smoke_suite_fails_naming_the_broken_step_and_cleans_up(
        broken_stack: str, live_stack: LiveStack) -> None:
    result = smoke(broken_stack, "--stream-deadline", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ok    add " in result.stdout
    assert "FAIL  cart-status" in result.stdout
    assert result.stdout.rstrip().endswith("smoke: FAILED at step cart-status")
    assert "display" not in result.stdout  # nothing after the failing step ran
    # its own cart is empty again: the line it added was removed
    assert [m for m, path in BrokenStatus.seen if path.startswith("/api/cart/items/")] == [
        "DELETE"]
    [cookie] = set(BrokenStatus.cookies)
    cart = requests.get(f"{live_stack.url}/api/cart", headers={"Cookie": cookie}, timeout=5)
    assert cart.json()["items"] == []
