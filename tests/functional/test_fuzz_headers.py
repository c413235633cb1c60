"""Every header and cookie the app reads, fuzzed: no answer is ever a 5xx (issue 19).

What the app reads from a request: Cookie (`cart`, `session`, `refresh`),
Content-Type, Idempotency-Key, X-Forwarded-Proto, X-Forwarded-Host, Host, Origin,
Sec-Fetch-Site, If-None-Match, and the `v` query parameter of static files.
hypothesis mixes real values (a signed cart cookie, a genuine and an expired
ID token, a refresh token) with near misses (Unicode digits, tampered parts,
JWT-shaped junk) and plain garbage, on every kind of route.
"""

from __future__ import annotations

import base64
import json

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import add_body
from tests.functional.conftest import request
from tests.functional.test_accounts import Browser, _moto_pool, sign_up

ROUTES = [
    ("GET", "/", None), ("HEAD", "/cart", None), ("GET", "/account", None),
    ("GET", "/orders", None), ("GET", "/orders/" + "a" * 32, None),
    ("GET", "/api/cart", None), ("HEAD", "/api/cart/status", None),
    ("GET", "/api/orders", None), ("GET", "/api/orders/" + "b" * 32, None),
    ("GET", "/api/account", None), ("GET", "/static/app.css?v=1", None),
    ("GET", "/no-such-page", None),
    ("POST", "/api/cart/items", add_body("kettle", 1)),
    ("PUT", "/api/cart/items/kettle", json.dumps({"quantity": 2})),
    ("DELETE", "/api/cart/items/kettle", None),
    ("POST", "/api/cart/checkout", None),
    ("POST", "/api/account/signout", None),
]
# Anything a header can carry, once decoded; not the line breaks HTTP itself refuses.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n\x00"),
               max_size=40)
DIGITS = st.sampled_from(["²", "١٢٣", "１２", "0", "-1", "9" * 13, "", "1e3", " 7"])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


JWT_ISH = st.builds(
    lambda header, claims, signature: ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), signature]),
    st.fixed_dictionaries({"alg": st.sampled_from(["RS256", "none", "HS256", ""]),
                           "kid": st.one_of(st.just("dummy"), TEXT)}),
    st.dictionaries(st.sampled_from(["sub", "exp", "iat", "email", "token_use", "origin_jti"]),
                    st.one_of(TEXT, st.integers(), st.none(), st.booleans())),
    st.one_of(TEXT, st.just(_b64(b"x" * 256))),
)


@pytest.fixture
def shop(client: Client, user_pool: tuple[str, str]) -> Client:
    return client


@pytest.fixture
def genuine(shop: Client, user_pool: tuple[str, str]) -> dict[str, str]:
    """A signed-in browser's real cookies, and an expired ID token of the same account."""
    sign_up(shop, "fuzz@example.com")
    browser = Browser(shop)
    browser.add("kettle", 1)
    cart = browser.jar["cart"]
    browser.sign_in("fuzz@example.com")
    expired, _ = _moto_pool(user_pool[0]).create_jwt(user_pool[1], "fuzz@example.com", "id",
                                                     expires_in=-3600)
    return {"cart": cart, "session": browser.jar["session"],
            "refresh": browser.jar["refresh"], "expired": expired}


@given(data=st.data())
@settings(max_examples=120, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_header_or_cookie_makes_the_app_answer_5xx(
        shop: Client, genuine: dict[str, str], data: st.DataObject) -> None:
    cart_id, issued, signature = genuine["cart"].split(".")
    cart = st.one_of(
        st.just(genuine["cart"]), TEXT,
        st.builds(lambda i, d, g: f"{i}.{d}.{g}",
                  st.sampled_from([cart_id, cart_id.upper(), "a" * 32, ""]),
                  st.one_of(DIGITS, st.just(issued)), st.one_of(TEXT, st.just(signature))))
    token = st.one_of(st.sampled_from([genuine["session"], genuine["expired"],
                                       genuine["refresh"]]), JWT_ISH, TEXT)
    pairs = st.lists(st.one_of(
        st.tuples(st.just("cart"), cart), st.tuples(st.just("session"), token),
        st.tuples(st.just("refresh"), token), st.tuples(TEXT, TEXT)), max_size=4)
    cookie = st.one_of(pairs.map(lambda kv: "; ".join(f"{k}={v}" for k, v in kv)), TEXT)
    headers = data.draw(st.fixed_dictionaries({}, optional={
        "Cookie": cookie,
        "Content-Type": st.one_of(st.sampled_from(["application/json", "APPLICATION/JSON; x",
                                                   "text/plain", ""]), TEXT),
        "Idempotency-Key": TEXT,
        "X-Forwarded-Proto": st.one_of(st.sampled_from(["https", "http", "https, http"]), TEXT),
        "X-Forwarded-Host": TEXT,
        "Host": TEXT,
        "Origin": st.one_of(st.sampled_from(["null", "http://localhost", "https://evil.example"]),
                            TEXT),
        "Sec-Fetch-Site": st.one_of(st.sampled_from(["same-origin", "same-site", "cross-site",
                                                     "none"]), TEXT),
        "If-None-Match": TEXT,
        "Accept": TEXT,
    }), label="headers")
    method, path, body = data.draw(st.sampled_from(ROUTES), label="route")
    response = request(shop, method, path, body=body, headers=headers)
    assert response.status_code < 500, (method, path, headers, response.body)
