"""Accounts through the app, as a shopper's browser drives them: moto's Cognito and table.

Each "browser" is a cookie jar: the anonymous cart cookie and, once signed
in, the session cookies. Tokens are Cognito's (moto's) own; a forged one is
signed with a key of the test's, an expired one by moto's pool key.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import boto3
import jwt
import pytest
from chalice.test import Client
from cryptography.hazmat.primitives.asymmetric import rsa

from app import app
from chalicelib import logging_setup, runtime, tokens
from chalicelib import user_pool as pool_spec
from tests.factories import add_body
from tests.functional.botocore_faults import Faults
from tests.functional.conftest import Stream, request

PASSWORD = "Pour-0ver-please"
ITEMS = "/api/cart/items"


class Browser:
    """One browser's cookie jar against the app."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.jar: dict[str, str] = {}

    @property
    def cookie(self) -> str | None:
        return "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None

    def send(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Any:
        response = request(self.client, method, path, self.cookie, body, headers)
        self.keep(response)
        return response

    def keep(self, response: Any) -> None:
        values = response.headers.get("Set-Cookie") or []
        for value in [values] if isinstance(values, str) else values:
            name, _, rest = value.partition("=")
            content = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                self.jar.pop(name, None)
            else:
                self.jar[name] = content

    def add(self, product_id: str, quantity: int) -> None:
        response = self.send("POST", ITEMS, add_body(product_id, quantity))
        assert response.status_code == 201, response.body

    def lines(self) -> list[tuple[str, int]]:
        items = self.send("GET", "/api/cart").json_body["items"]
        return sorted((item["productId"], item["quantity"]) for item in items)

    def sign_in(self, email: str, password: str = PASSWORD) -> Any:
        return self.send("POST", "/api/account/signin", {"email": email, "password": password})


def sign_up(client: Client, email: str, password: str = PASSWORD, confirm: bool = True) -> None:
    response = request(client, "POST", "/api/account/signup",
                       body={"email": email, "password": password})
    assert response.status_code == 201, response.body
    assert response.json_body == {"email": email}
    if confirm:
        response = request(client, "POST", "/api/account/confirm",
                           body={"email": email, "code": "123456"})
        assert response.status_code == 204, response.body


@pytest.fixture
def shop(client: Client, user_pool: tuple[str, str]) -> Client:
    return client


@pytest.fixture
def shopper(shop: Client) -> str:
    """A confirmed account's e-mail."""
    sign_up(shop, "ada@example.com")
    return "ada@example.com"


def error(response: Any) -> tuple[int, str]:
    assert set(response.json_body) == {"Code", "Message"}, response.body
    return response.status_code, response.json_body["Message"]


# -- sign-up, confirmation, sign-in ---------------------------------------------------

def test_a_shopper_signs_up_confirms_signs_in_and_keeps_the_anonymous_cart(shop: Client) -> None:
    browser = Browser(shop)
    browser.add("espresso-cup", 2)
    browser.add("kettle", 1)
    anonymous = dict(browser.jar)
    sign_up(shop, "Grace@Example.com".lower())

    response = browser.sign_in("grace@example.com")
    assert response.status_code == 200, response.body
    assert response.json_body == {"email": "grace@example.com", "merged": {
        "movedLines": 2, "excess": [], "leftBehind": []}}
    set_cookies = response.headers["Set-Cookie"]
    assert {value.split("=", 1)[0] for value in set_cookies} == {"session", "refresh", "cart"}
    for value in set_cookies:
        assert "HttpOnly" in value and "SameSite=Lax" in value and "Path=/" in value
        assert "Secure" not in value  # plain http: chalice local
    assert set(browser.jar) == {"session", "refresh"}  # the merged cart is forgotten
    assert browser.send("GET", "/api/account").json_body == {"email": "grace@example.com"}
    assert browser.lines() == [("espresso-cup", 2), ("kettle", 1)]
    # The anonymous cart is empty now: its lines moved, they were not copied.
    assert Browser(shop).send("GET", "/api/cart", headers={
        "Cookie": f"cart={anonymous['cart']}"}).json_body["items"] == []


def test_cookies_are_secure_behind_https(shop: Client, shopper: str) -> None:
    response = Browser(shop).send("POST", "/api/account/signin",
                                  {"email": shopper, "password": PASSWORD},
                                  headers={"X-Forwarded-Proto": "https"})
    assert all("Secure" in value for value in response.headers["Set-Cookie"])


def test_signing_up_twice_with_one_email_is_a_409(shop: Client, shopper: str) -> None:
    response = request(shop, "POST", "/api/account/signup",
                       body={"email": shopper.upper(), "password": PASSWORD})
    assert error(response) == (409, "an account with this e-mail already exists; sign in")


@pytest.mark.parametrize(("password", "reason"), [
    ("Sh0rt", "the password needs at least 8 characters"),
    ("alllowercase1", "the password needs an uppercase letter"),
    ("NoDigitsHere", "the password needs a digit"),
    ("12345678", "the password needs an uppercase letter, a lowercase letter"),
])
def test_a_weak_password_is_a_400_that_says_what_is_missing(
        shop: Client, password: str, reason: str) -> None:
    response = request(shop, "POST", "/api/account/signup",
                       body={"email": "weak@example.com", "password": password})
    assert error(response) == (400, reason)


@pytest.mark.parametrize("body", [
    {"email": "not-an-email", "password": PASSWORD},
    {"email": "a@example.com"},
    {"email": "a@example.com", "password": PASSWORD, "admin": True},
    {"email": 7, "password": PASSWORD},
    ["a@example.com", PASSWORD],
])
def test_malformed_sign_up_and_sign_in_bodies_are_400s(shop: Client, body: Any) -> None:
    for path in ("/api/account/signup", "/api/account/signin"):
        assert request(shop, "POST", path, body=body).status_code == 400


def test_a_wrong_password_or_an_unknown_email_is_a_401_alike(shop: Client, shopper: str) -> None:
    wrong = Browser(shop).sign_in(shopper, "Wrong-password-1")
    unknown = Browser(shop).sign_in("nobody@example.com")
    assert error(wrong) == error(unknown) == (401, "wrong e-mail or password")
    assert "Set-Cookie" not in wrong.headers


def test_signing_in_before_confirming_is_a_403(shop: Client) -> None:
    sign_up(shop, "later@example.com", confirm=False)
    status, message = error(Browser(shop).sign_in("later@example.com"))
    assert status == 403 and "confirm" in message


def test_a_confirmation_of_an_unknown_email_is_a_400(shop: Client) -> None:
    response = request(shop, "POST", "/api/account/confirm",
                       body={"email": "ghost@example.com", "code": "123456"})
    assert error(response) == (400, "that confirmation code is wrong or has expired")


def test_get_account_signed_out_is_a_401(shop: Client) -> None:
    assert error(Browser(shop).send("GET", "/api/account")) == (401, "not signed in")


# -- the merge --------------------------------------------------------------------------

def test_a_retried_sign_in_moves_each_line_once(shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.add("kettle", 2)
    first = browser.sign_in(shopper)
    again = browser.sign_in(shopper)
    assert first.json_body["merged"]["movedLines"] == 1
    assert again.json_body["merged"]["movedLines"] == 0
    assert browser.lines() == [("kettle", 2)]


def test_quantities_add_up_to_99_and_the_excess_is_reported(shop: Client, shopper: str) -> None:
    signed_in = Browser(shop)
    signed_in.sign_in(shopper)
    signed_in.add("grinder", 60)
    anonymous = Browser(shop)
    anonymous.add("grinder", 50)
    anonymous.add("tote", 1)
    merged = anonymous.sign_in(shopper).json_body["merged"]
    assert merged == {"movedLines": 2, "excess": [{"productId": "grinder", "quantity": 11}],
                      "leftBehind": []}
    assert anonymous.lines() == signed_in.lines() == [("grinder", 99), ("tote", 1)]


def test_an_add_racing_the_merge_is_moved_too_never_lost(shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.add("filters", 1)
    racing = Browser(shop)
    racing.jar = dict(browser.jar)  # the same browser's add, on another connection
    with Faults(runtime.dynamodb_client()) as faults:
        # Between the merge's read and its transaction, the anonymous line grows.
        faults.before("TransactWriteItems", lambda: racing.add("filters", 3))
        response = browser.sign_in(shopper)
    assert response.status_code == 200, response.body
    # The merge cancelled once, the racing add (a transaction too), the merge again.
    assert faults.attempts.count("TransactWriteItems") == 3
    assert browser.lines() == [("filters", 4)]


def test_two_sign_ins_at_once_never_count_a_line_twice(shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.add("beans-house", 3)
    other_tab = Browser(shop)
    other_tab.jar = dict(browser.jar)
    outcome: list[Any] = []
    with Faults(runtime.dynamodb_client()) as faults:
        # The second sign-in runs to the end inside the first one's move.
        faults.before("TransactWriteItems", lambda: outcome.append(other_tab.sign_in(shopper)))
        first = browser.sign_in(shopper)
    assert first.status_code == outcome[0].status_code == 200
    assert browser.lines() == other_tab.lines() == [("beans-house", 3)]


def test_two_browsers_share_one_account_cart_and_its_orders(shop: Client, shopper: str) -> None:
    laptop, phone = Browser(shop), Browser(shop)
    laptop.add("espresso-cup", 1)
    laptop.sign_in(shopper)
    phone.add("kettle", 1)
    phone.sign_in(shopper)
    assert laptop.lines() == phone.lines() == [("espresso-cup", 1), ("kettle", 1)]

    order = phone.send("POST", "/api/cart/checkout")
    assert order.status_code == 201, order.body
    order_id = order.json_body["orderId"]
    assert laptop.lines() == []
    assert laptop.send("GET", f"/api/orders/{order_id}").json_body["itemCount"] == 2
    [row] = laptop.send("GET", "/api/orders").json_body["orders"]
    assert row["orderId"] == order_id and row["subtotalCents"] == 1200 + 5900


def test_orders_placed_before_signing_in_join_the_account_history(
        shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.add("tote", 1)
    first = browser.send("POST", "/api/cart/checkout").json_body["orderId"]
    browser.add("kettle", 1)
    second = browser.send("POST", "/api/cart/checkout").json_body["orderId"]
    anonymous = browser.send("GET", "/api/orders").json_body["orders"]
    assert [o["orderId"] for o in anonymous] == [second, first]

    browser.sign_in(shopper)
    elsewhere = Browser(shop)
    elsewhere.sign_in(shopper)
    elsewhere.add("filters", 2)
    third = elsewhere.send("POST", "/api/cart/checkout").json_body["orderId"]
    history = elsewhere.send("GET", "/api/orders").json_body["orders"]
    assert [o["orderId"] for o in history] == [third, second, first]
    assert set(history[0]) == {"orderId", "status", "placedAt", "itemCount",
                               "subtotalCents", "currency"}
    assert elsewhere.send("GET", f"/api/orders/{first}").json_body["items"][0]["productId"] \
        == "tote"
    assert elsewhere.send("GET", f"/orders/{first}").status_code == 200
    # A stranger's anonymous cart sees none of them.
    stranger = Browser(shop)
    stranger.add("tote", 1)
    assert stranger.send("GET", "/api/orders").json_body == {"orders": []}
    assert stranger.send("GET", f"/api/orders/{first}").status_code == 404


def test_another_account_signing_in_on_the_same_browser_adopts_nothing_of_the_first(
        shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.add("tote", 1)
    order_id = browser.send("POST", "/api/cart/checkout").json_body["orderId"]
    browser.add("kettle", 1)
    browser.sign_in(shopper)
    sign_up(shop, "bob@example.com")
    bob = browser.sign_in("bob@example.com")  # no sign-out in between
    assert bob.json_body["merged"]["movedLines"] == 0
    assert browser.lines() == []
    assert browser.send("GET", "/api/orders").json_body == {"orders": []}
    assert browser.send("GET", f"/api/orders/{order_id}").status_code == 404
    browser.send("POST", "/api/account/signout")
    assert Browser(shop).sign_in(shopper).status_code == 200
    ada = Browser(shop)
    ada.sign_in(shopper)
    assert ada.lines() == [("kettle", 1)]
    assert [o["orderId"] for o in ada.send("GET", "/api/orders").json_body["orders"]] \
        == [order_id]


def test_summary_and_popularity_stay_exact_through_a_merge(
        shop: Client, shopper: str, stream: Stream, repo: Any) -> None:
    account = Browser(shop)
    account.sign_in(shopper)
    account.add("grinder", 1)
    browser = Browser(shop)
    browser.add("grinder", 2)
    browser.add("pour-over", 1)
    stream.drain()
    in_carts = {p.id: p.in_carts for p in repo.list_products()}
    assert (in_carts["grinder"], in_carts["pour-over"]) == (2, 1)

    browser.sign_in(shopper)
    stream.drain()
    in_carts = {p.id: p.in_carts for p in repo.list_products()}
    assert (in_carts["grinder"], in_carts["pour-over"]) == (1, 1)
    status = browser.send("GET", "/api/cart/status").json_body
    assert (status["itemCount"], status["subtotalCents"]) == (4, 3 * 8900 + 2450)


# -- sessions ---------------------------------------------------------------------------

def test_sign_out_clears_the_session_and_starts_a_new_anonymous_cart(
        shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.add("tote", 1)
    browser.sign_in(shopper)
    response = browser.send("POST", "/api/account/signout")
    assert response.status_code == 204
    cleared = {value.split("=", 1)[0] for value in response.headers["Set-Cookie"]
               if "Max-Age=0" in value}
    assert cleared == {"session", "refresh", "cart"}
    assert browser.jar == {}
    assert browser.send("GET", "/api/account").status_code == 401
    assert browser.lines() == []
    browser.add("kettle", 1)
    assert browser.lines() == [("kettle", 1)]
    # The account's cart is still the account's.
    assert Browser(shop).sign_in(shopper).status_code == 200


def test_signed_in_writes_never_put_the_account_cart_in_the_cart_cookie(
        shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    browser.sign_in(shopper)
    response = browser.send("POST", ITEMS, add_body("tote", 1))
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers
    assert "cart" not in browser.jar


def _moto_pool(pool_id: str) -> Any:
    from moto.cognitoidp.models import cognitoidp_backends

    return cognitoidp_backends["123456789012"]["us-east-1"].user_pools[pool_id]


def _signed_out(browser: Browser) -> None:
    assert browser.send("GET", "/api/account").status_code == 401
    assert browser.lines() == []  # the anonymous cart (none), not the account's
    page = browser.send("GET", "/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'data-testid="sign-in-link"' in page.body.decode()


def _forge(claims: dict[str, Any]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


def test_forged_tampered_or_foreign_tokens_read_as_signed_out(
        shop: Client, shopper: str, user_pool: tuple[str, str]) -> None:
    genuine = Browser(shop)
    genuine.add("grinder", 1)
    genuine.sign_in(shopper)
    id_token = genuine.jar["session"]
    claims = jwt.decode(id_token, options={"verify_signature": False})

    header, payload, signature = id_token.split(".")
    other = dict(claims, sub="someone-else", email="mallory@example.com")
    tampered = ".".join([header, base64.urlsafe_b64encode(
        json.dumps(other).encode()).decode().rstrip("="), signature])

    pools = boto3.client("cognito-idp")
    foreign_pool, foreign_client, _ = pool_spec.ensure_user_pool(pools, "another", "another")
    pools.sign_up(ClientId=foreign_client, Username=shopper, Password=PASSWORD)
    pools.confirm_sign_up(ClientId=foreign_client, Username=shopper, ConfirmationCode="1")
    foreign = pools.initiate_auth(
        ClientId=foreign_client, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": shopper, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]
    pool = _moto_pool(user_pool[0])
    access, _ = pool.create_jwt(user_pool[1], shopper, "access")

    for token in (_forge(claims), tampered, foreign, access, "not.a.jwt-at-all",
                  jwt.encode(claims, "a-shared-secret-that-is-32-bytes!", algorithm="HS256")):
        browser = Browser(shop)
        browser.jar = {"session": token, "refresh": genuine.jar["refresh"]}
        _signed_out(browser)
    assert genuine.lines() == [("grinder", 1)]


def test_an_expired_token_is_refreshed_and_without_a_refresh_token_signs_out(
        shop: Client, shopper: str, user_pool: tuple[str, str]) -> None:
    browser = Browser(shop)
    browser.add("kettle", 1)
    browser.sign_in(shopper)
    expired, _ = _moto_pool(user_pool[0]).create_jwt(user_pool[1], shopper, "id",
                                                     expires_in=-3600)
    with pytest.raises(tokens.ExpiredToken):
        runtime.token_verifier().verify(expired)

    browser.jar["session"] = expired
    response = browser.send("GET", "/api/account")
    assert response.json_body == {"email": shopper}
    [renewed] = [value for value in [response.headers["Set-Cookie"]]]
    assert renewed.startswith("session=") and "HttpOnly" in renewed
    assert browser.jar["session"] != expired
    assert browser.lines() == [("kettle", 1)]

    no_refresh = Browser(shop)
    no_refresh.jar = {"session": expired}
    _signed_out(no_refresh)
    revoked = Browser(shop)
    revoked.jar = {"session": expired, "refresh": "x" * 40}
    _signed_out(revoked)


# -- logs ---------------------------------------------------------------------------------

class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging_setup.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_logs_never_carry_passwords_codes_or_tokens(shop: Client) -> None:
    collect = Collect()
    loggers = [logging.getLogger(), logging.getLogger(logging_setup.ACCESS_LOGGER), app.log]
    for logger in loggers:
        logger.addHandler(collect)
    try:
        code = "918273"
        request(shop, "POST", "/api/account/signup",
                body={"email": "log@example.com", "password": PASSWORD})
        request(shop, "POST", "/api/account/signup",
                body={"email": "log@example.com", "password": PASSWORD})
        request(shop, "POST", "/api/account/signup",
                body={"email": "weak@example.com", "password": "weakpass"})
        request(shop, "POST", "/api/account/confirm",
                body={"email": "log@example.com", "code": code})
        browser = Browser(shop)
        browser.sign_in("log@example.com", "Wrong-Password-9")
        response = browser.sign_in("log@example.com")
        browser.send("GET", "/api/account")
        browser.send("POST", "/api/account/signout")
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    text = "\n".join(collect.lines)
    assert response.status_code == 200 and len(collect.lines) >= 8
    secrets = [PASSWORD, "Wrong-Password-9", "weakpass", code,
               *[v.split("=", 1)[1].split(";")[0] for v in response.headers["Set-Cookie"]]]
    for secret in secrets:
        assert secret not in text


# -- pages ---------------------------------------------------------------------------------

def page(browser: Browser, path: str) -> str:
    response = browser.send("GET", path, headers={"Accept": "text/html"})
    assert response.status_code == 200, response.body
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    return str(response.body.decode())


def test_the_account_page_offers_sign_up_confirm_and_sign_in_then_sign_out(
        shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    html = page(browser, "/account")
    for form in ("signup-form", "confirm-form", "signin-form"):
        assert f'data-testid="{form}"' in html
    for label in (">Email</label>", ">Password</label>", ">Confirmation code</label>"):
        assert label in html
    assert "/static/account.js?v=" in html

    browser.sign_in(shopper)
    html = page(browser, "/account")
    assert 'data-testid="account-email">ada@example.com<' in html
    assert 'data-testid="sign-out"' in html and 'data-testid="signup-form"' not in html
    assert 'data-testid="signed-in-as"' in page(browser, "/cart")


def test_the_orders_page_lists_the_history_with_links(shop: Client, shopper: str) -> None:
    browser = Browser(shop)
    assert "No orders yet." in page(browser, "/orders")
    browser.add("kettle", 1)
    order_id = browser.send("POST", "/api/cart/checkout").json_body["orderId"]
    html = page(browser, "/orders")
    assert f'href="/orders/{order_id}"' in html and "$59.00" in html
    browser.sign_in(shopper)
    assert f'data-order-id="{order_id}"' in page(browser, "/orders")


def test_without_a_user_pool_sessions_read_as_signed_out_and_sign_in_is_a_503(
        client: Client) -> None:
    browser = Browser(client)
    browser.jar = {"session": "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl"}
    assert 'data-testid="sign-in-link"' in page(browser, "/orders")
    assert browser.send("GET", "/api/account").status_code == 401
    response = browser.sign_in("ada@example.com")
    assert error(response) == (503, "accounts are not set up on this stage")


def test_signed_in_a_malformed_or_foreign_order_id_is_a_404(shop: Client, shopper: str) -> None:
    stranger = Browser(shop)
    stranger.add("tote", 1)
    theirs = stranger.send("POST", "/api/cart/checkout").json_body["orderId"]
    browser = Browser(shop)
    browser.sign_in(shopper)
    for order_id in (theirs, "not-an-order", "f" * 32, "x" * 2000):
        response = browser.send("GET", f"/api/orders/{order_id}")
        assert error(response) == (404, "no such order"), order_id
        assert browser.send("GET", f"/orders/{order_id}",
                            headers={"Accept": "text/html"}).status_code == 404
