"""The cross-origin check's rules, with no IO (chalicelib/request_guard.py)."""

from __future__ import annotations

import pytest

from chalicelib import request_guard as guard

GATEWAY = {"host": "abc.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"}


@pytest.mark.parametrize(("method", "headers", "configured", "refused"), [
    ("GET", {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}, None, False),
    ("HEAD", {"origin": "null"}, None, False),
    ("OPTIONS", {"sec-fetch-site": "same-site"}, None, False),
    ("POST", {}, None, False),
    ("POST", {"sec-fetch-site": "cross-site"}, None, True),
    ("DELETE", {"sec-fetch-site": "Same-Site"}, None, True),
    ("PUT", {"origin": "null"}, None, True),
    ("POST", {**GATEWAY, "origin": "https://abc.execute-api.us-east-1.amazonaws.com/"}, None,
     False),
    ("POST", {**GATEWAY, "origin": "HTTPS://ABC.execute-api.us-east-1.amazonaws.com"}, None,
     False),
    ("POST", {**GATEWAY, "origin": "http://abc.execute-api.us-east-1.amazonaws.com"}, None,
     True),
    ("POST", {**GATEWAY, "x-forwarded-proto": "https, http",
              "origin": "https://abc.execute-api.us-east-1.amazonaws.com"}, None, False),
    ("POST", {**GATEWAY, "origin": "https://abc.execute-api.us-east-1.amazonaws.com"},
     "https://shop.example.com", True),
    ("POST", {**GATEWAY, "origin": "https://shop.example.com"}, "https://shop.example.com",
     False),
    ("POST", {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8001"}, None, True),
    ("POST", {"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000",
              "sec-fetch-site": "same-origin"}, None, False),
    ("POST", {"origin": "http://anything"}, None, True),  # no Host: nothing is our own
])
def test_a_write_is_refused_only_when_another_origin_sent_it(
        method: str, headers: dict[str, str], configured: str | None, refused: bool) -> None:
    problem = guard.cross_origin_problem(method, headers, configured)
    assert (problem is not None) is refused


def test_https_is_what_the_proxy_says() -> None:
    assert guard.is_secure({"x-forwarded-proto": "https"})
    assert guard.is_secure({"x-forwarded-proto": "HTTPS, http"})
    assert not guard.is_secure({"x-forwarded-proto": "http"})
    assert not guard.is_secure({})
