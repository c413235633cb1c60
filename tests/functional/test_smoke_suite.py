"""The smoke suite's verdicts without a stack: a shop that fails, a deploy that runs it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from deploy import account as acct
from deploy import cli
from devstack.ports import HOST, free_port
from smoke import journey


class Unavailable(http.server.BaseHTTPRequestHandler):
    """A stage whose API answers every request 503 in Chalice's error shape."""

    def do_GET(self) -> None:
        body = b'{"Code":"ServiceUnavailable","Message":"down"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def down_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((HOST, free_port()), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}/api/"
    server.shutdown()
    server.server_close()


def test_a_shop_that_is_down_fails_at_the_first_step(down_url: str) -> None:
    lines: list[str] = []
    assert journey.run(down_url, out=lines.append) == 1
    assert lines[-1] == "smoke: FAILED at step products"
    assert "expected 200, got 503" in lines[-2]


def test_nothing_answering_is_a_failed_step_not_a_traceback() -> None:
    lines: list[str] = []
    assert journey.run(f"http://{HOST}:{free_port()}", out=lines.append) == 1
    assert "no answer (ConnectionError" in lines[-2]


def test_a_deploy_ends_with_the_smoke_suite_and_fails_when_it_fails(down_url: str) -> None:
    account = acct.Account(boto3.session.Session(), "us-east-1", "123456789012")
    assert account.stand_in is None  # AWS's own endpoints: the suite runs
    lines: list[str] = []
    assert cli.smoke_deployed({"EndpointURL": down_url}, account, lines.append) is False
    assert f"==> smoke suite against {down_url} (SMOKE=0 skips it)" in lines
    assert "smoke: FAILED at step products" in lines
    assert lines[-1].endswith(f"make smoke BASE_URL={down_url}")


def test_a_stand_in_deploy_skips_the_smoke_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{HOST}:{free_port()}")
    account = acct.Account(boto3.session.Session(), "us-east-1", "123456789012")
    ran: list[str] = []
    lines: list[str] = []
    assert cli.smoke_deployed({"EndpointURL": "https://x"}, account, lines.append,
                              run=lambda url, out: ran.append(url) or 0) is True
    assert ran == [] and "skipped" in lines[0]
