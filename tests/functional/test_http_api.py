"""The app behind an HTTP API: every route, fed payload format 1.0 events.

A shopper's journey, each request made into the event an HTTP API with the
deploy's routes (deploy/httpapi.py, derived from the app's own route table)
sends the function, and each answer turned into what the HTTP API sends back
(devstack/http_api_v1.py, after AWS's documentation and captured events). The
journey touches every route the HTTP API has, and asserts what the shopper
sees: status, body, and each Set-Cookie line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app import app
from chalicelib import cookies
from deploy import httpapi
from devstack import http_api_v1
from tests.factories import ESPRESSO, KETTLE, add_body

STAGE = "api"  # the stage's name leads every URL, as on the REST stage
ROUTE_KEYS = httpapi.route_keys(
    [(method, path) for path, methods in app.routes.items() for method in methods]
)
PASSWORD = "Pour-0ver-please"
STATIC = Path(__file__).resolve().parents[2] / "static"


class _Context:
    """The parts of Lambda's context object the app reads."""

    aws_request_id = "http-api-test"
    function_name = "chalice-cart-test-api_handler"
    memory_limit_in_bytes = 256

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 15_000


@dataclass
class Answer:
    status: int
    lines: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.lines if k.lower() == name.lower()]
        return found[-1] if found else None

    @property
    def set_cookies(self) -> list[str]:
        return [v for k, v in self.lines if k.lower() == "set-cookie"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpApiBrowser:
    """A browser's cookie jar in front of an HTTP API in front of the app."""

    jar: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)

    def send(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Answer:
        route = http_api_v1.select_route(ROUTE_KEYS, method, path)
        assert route is not None, f"the HTTP API has no route for {method} {path}"
        key, params = route
        self.used.add(key)
        sent = {"Content-Type": "application/json", "User-Agent": "pytest",
                "X-Forwarded-Proto": "https", **(headers or {})}
        if self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        raw = (body if isinstance(body, str) else json.dumps(body)).encode() \
            if body is not None else b""
        event = http_api_v1.event(method, path, key, params, stage=STAGE,
                                  headers=sent.items(), body=raw)
        answer = Answer(*http_api_v1.response(app(event, _Context())))
        for value in answer.set_cookies:
            name, _, rest = value.partition("=")
            if "Max-Age=0" in value:
                self.jar.pop(name, None)
            else:
                self.jar[name] = rest.split(";", 1)[0]
        return answer


@pytest.fixture
def browser(stream_arn: str, user_pool: tuple[str, str]) -> HttpApiBrowser:
    return HttpApiBrowser()


def _names(set_cookies: list[str]) -> list[str]:
    return sorted(value.split("=", 1)[0] for value in set_cookies)


def test_the_http_api_has_a_route_for_each_of_chalices_and_catch_alls() -> None:
    declared = {f"{m} {p}" for p, methods in app.routes.items() for m in methods
                if not p.endswith("+}")}
    assert declared <= set(ROUTE_KEYS)
    assert {"ANY /{proxy+}", "ANY /"} <= set(ROUTE_KEYS)
    assert len(ROUTE_KEYS) == len(declared) + 2


def test_a_shopper_journey_through_every_http_api_route(browser: HttpApiBrowser) -> None:
    products = browser.send("GET", "/api/products")
    assert products.status == 200
    assert ESPRESSO.id in {p["id"] for p in products.json()["products"]}
    # The stage leads the URLs the app makes, as on the REST stage.
    assert products.json()["products"][0]["imageUrl"].startswith(f"/{STAGE}/static/img/")
    assert browser.send("GET", "/api/openapi.json").json()["openapi"].startswith("3.")

    added = browser.send("POST", "/api/cart/items", add_body(ESPRESSO.id, 2))
    assert added.status == 201
    [cart_cookie] = added.set_cookies
    assert cart_cookie.startswith(f"{cookies.COOKIE_NAME}=") and "Secure" in cart_cookie
    assert browser.send("POST", "/api/cart/items", add_body(KETTLE.id, 1)).status == 201
    changed = browser.send("PUT", f"/api/cart/items/{ESPRESSO.id}", {"quantity": 3})
    assert changed.status == 200, changed.body
    assert browser.send("DELETE", f"/api/cart/items/{KETTLE.id}").status in (200, 204)
    cart = browser.send("GET", "/api/cart")
    assert [(i["productId"], i["quantity"]) for i in cart.json()["items"]] == [(ESPRESSO.id, 3)]
    assert browser.send("GET", "/api/cart/status").status == 200

    for page in ("/", "/cart", "/account"):
        shown = browser.send("GET", page)
        assert shown.status == 200 and b"<html" in shown.body, page
        assert (shown.header("Content-Type") or "").startswith("text/html")
    css = browser.send("GET", "/static/app.css")
    assert css.status == 200 and css.body == (STATIC / "app.css").read_bytes()
    image = browser.send("GET", "/static/img/beans.svg")
    assert image.status == 200 and image.body == (STATIC / "img" / "beans.svg").read_bytes()

    email = "http-api@example.com"
    account = {"email": email, "password": PASSWORD}
    assert browser.send("POST", "/api/account/signup", account).status == 201
    confirmed = browser.send("POST", "/api/account/confirm", {"email": email, "code": "1"})
    assert confirmed.status == 204
    signed_in = browser.send("POST", "/api/account/signin", account)
    assert signed_in.status == 200, signed_in.body
    # Three Set-Cookie lines, each its own: the session, the refresh token, and
    # the merged anonymous cart's cookie cleared.
    assert _names(signed_in.set_cookies) == sorted(
        ["session", "refresh", cookies.COOKIE_NAME])
    assert browser.send("GET", "/api/account").json() == {"email": email}

    placed = browser.send("POST", "/api/cart/checkout")
    assert placed.status == 201, placed.body
    order_id = placed.json()["orderId"]
    assert order_id in [o["orderId"] for o in browser.send("GET", "/api/orders").json()["orders"]]
    assert browser.send("GET", f"/api/orders/{order_id}").json()["orderId"] == order_id
    for page in ("/orders", f"/orders/{order_id}"):
        assert browser.send("GET", page).status == 200, page
    # Every page and GET route answers HEAD: its GET's status and headers, no body.
    named = {"{order_id}": order_id, "{name}": "app.css"}
    for key in ROUTE_KEYS:
        method, _, path = key.partition(" ")
        if method == "HEAD":
            for param, value in named.items():
                path = path.replace(param, value)
            path = path.replace("/img/app.css", "/img/beans.svg")
            head = browser.send("HEAD", path)
            assert head.status == 200 and not head.body, (path, head.status)

    signed_out = browser.send("POST", "/api/account/signout")
    assert signed_out.status == 204
    assert len(signed_out.set_cookies) >= 2
    assert all("Max-Age=0" in value for value in signed_out.set_cookies)
    assert browser.send("GET", "/api/account").status == 401

    # What no route of the app's names still reaches the app, in its error shape.
    missing = browser.send("GET", "/api/no-such-thing")
    assert (missing.status, missing.json()["Code"]) == (404, "NotFoundError")
    wrong_method = browser.send("DELETE", "/api/cart")
    assert (wrong_method.status, wrong_method.json()["Code"]) == (404, "NotFoundError")
    page = browser.send("GET", "/no/such/page")
    assert page.status == 404 and b"Page not found" in page.body
    root = browser.send("POST", "/")
    assert (root.status, root.json()["Code"]) == (405, "MethodNotAllowedError")

    assert browser.used == set(ROUTE_KEYS)


def test_a_request_no_route_takes_is_the_http_apis_own_404() -> None:
    """What the HTTP API would answer itself: nothing, with the catch-alls in place."""
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        for path in ("/", "/x", "/api/cart", "/a/b/c"):
            assert http_api_v1.select_route(ROUTE_KEYS, method, path) is not None
    assert http_api_v1.select_route(["GET /a"], "GET", "/b") is None


def test_the_stand_in_selects_routes_and_merges_headers_as_aws_documents() -> None:
    keys = ["GET /a/{id}", "GET /a/b", "ANY /a/b", "ANY /{proxy+}", "GET /"]
    assert http_api_v1.select_route(keys, "GET", "/a/b") == ("GET /a/b", {})
    assert http_api_v1.select_route(keys, "POST", "/a/b") == ("ANY /a/b", {})
    assert http_api_v1.select_route(keys, "GET", "/a/c") == ("GET /a/{id}", {"id": "c"})
    assert http_api_v1.select_route(keys, "GET", "/a/c/d") == (
        "ANY /{proxy+}", {"proxy": "a/c/d"})
    assert http_api_v1.select_route(keys, "POST", "/") is None  # a greedy never takes /
    status, lines, body = http_api_v1.response({
        "statusCode": 201, "headers": {"Content-Type": "text/plain", "X-A": "single"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-A": ["multi"]},
        "body": "aGk=", "isBase64Encoded": True})
    assert (status, body) == (201, b"hi")
    assert lines == [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"),
                     ("Set-Cookie", "b=2"), ("X-A", "multi")]
