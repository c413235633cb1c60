"""Accounts as a real shop's are attacked (issue 19): shared browsers, sign-out, e-mail, mail quota.

Browsers are cookie jars (test_accounts.Browser); Cognito and the table are moto's,
with devstack.cognito_gaps giving moto's Cognito RevokeToken and email_verified.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from chalice.test import Client

from chalicelib import runtime, table
from chalicelib.accounts import account_cart_id
from chalicelib.domain import MAX_LINES, Product, expiry_after
from chalicelib.repository import DynamoCartRepository
from tests.factories import TABLE_NAME
from tests.functional.test_accounts import PASSWORD, Browser, _moto_pool, error, sign_up

FILLER = [Product(f"filler-{i:02d}", f"Filler {i}", "fills a cart", 100, "kettle.svg")
          for i in range(MAX_LINES)]


@pytest.fixture
def shop(client: Client, user_pool: tuple[str, str]) -> Client:
    return client


@pytest.fixture
def ada(shop: Client) -> str:
    sign_up(shop, "ada@example.com")
    return "ada@example.com"


@pytest.fixture
def bob(shop: Client) -> str:
    sign_up(shop, "bob@example.com")
    return "bob@example.com"


def order_ids(browser: Browser) -> list[str]:
    return [order["orderId"] for order in browser.send("GET", "/api/orders").json_body["orders"]]


# -- 2. a shared browser: one account per anonymous cart, ever -------------------------

def fill_account_cart(shop: Client, email: str) -> None:
    """The account's cart at the distinct-line cap (written straight to the table:
    fifty adds over HTTP would be most of this module's time)."""
    DynamoCartRepository(boto3.client("dynamodb"), TABLE_NAME).seed_products(FILLER)
    elsewhere = Browser(shop)
    assert elsewhere.sign_in(email).status_code == 200
    cart = account_cart_id(_claim(elsewhere.jar["session"], "sub"))
    now = int(time.time())
    puts = [{"PutRequest": {"Item": {
        "pk": {"S": table.cart_pk(cart)}, "sk": {"S": table.line_sk(product.id)},
        "productId": {"S": product.id}, "name": {"S": product.name},
        "unitPriceCents": {"N": str(product.price_cents)}, "quantity": {"N": "1"},
        "updatedAt": {"S": "2026-01-01T00:00:00.000Z"},
        table.TTL_ATTRIBUTE: {"N": str(expiry_after(now))}}}} for product in FILLER]
    dynamodb = boto3.client("dynamodb")
    for start in range(0, len(puts), 25):
        dynamodb.batch_write_item(RequestItems={TABLE_NAME: puts[start:start + 25]})
    assert len(elsewhere.lines()) == MAX_LINES


@pytest.mark.parametrize("signs_out_between", [False, True])
def test_a_second_account_on_a_shared_browser_adopts_nothing_the_first_adopted(
        shop: Client, ada: str, bob: str, signs_out_between: bool) -> None:
    fill_account_cart(shop, ada)
    shared = Browser(shop)
    shared.add("tote", 1)
    order_id = shared.send("POST", "/api/cart/checkout").json_body["orderId"]
    shared.add("kettle", 1)  # no room in Ada's cart: left behind
    copied = dict(shared.jar)  # what an earlier look at this browser's cookies saw

    merged = shared.sign_in(ada).json_body["merged"]
    assert merged["leftBehind"] == ["kettle"]
    assert order_id in order_ids(shared)
    if signs_out_between:
        assert shared.send("POST", "/api/account/signout").status_code == 204
        shared.jar = copied  # the anonymous cart's cookie, kept or restored
    response = shared.sign_in(bob)
    assert response.status_code == 200
    assert response.json_body["merged"] == {"movedLines": 0, "excess": [], "leftBehind": []}
    assert "cart" not in shared.jar  # Bob's sign-in forgets Ada's anonymous cart
    assert shared.send("GET", f"/api/orders/{order_id}").status_code == 404
    assert order_ids(shared) == []
    assert shared.lines() == []
    # Ada keeps the order, from any browser.
    again = Browser(shop)
    again.sign_in(ada)
    assert order_ids(again) == [order_id]


def test_the_account_that_left_lines_behind_can_claim_them_again(
        shop: Client, ada: str) -> None:
    fill_account_cart(shop, ada)
    shared = Browser(shop)
    shared.add("kettle", 2)
    assert shared.sign_in(ada).json_body["merged"]["leftBehind"] == ["kettle"]
    assert "cart" in shared.jar  # kept for Ada alone: the claim names her account
    assert shared.send("DELETE", "/api/cart/items/filler-00").status_code == 204
    # Signing in again (a new session on this browser) moves what now fits.
    assert shared.sign_in(ada).json_body["merged"]["movedLines"] == 1
    assert ("kettle", 2) in shared.lines()
    assert "cart" not in shared.jar


# -- 3. sign-out ends the session, not just the cookies ---------------------------------

def test_copies_of_the_session_and_refresh_cookies_are_refused_after_sign_out(
        shop: Client, ada: str, user_pool: tuple[str, str]) -> None:
    browser = Browser(shop)
    browser.sign_in(ada)
    browser.add("grinder", 1)
    other_device = Browser(shop)
    other_device.sign_in(ada)
    copy = dict(browser.jar)
    assert Browser(shop).send("GET", "/api/account", headers={
        "Cookie": f"session={copy['session']}; refresh={copy['refresh']}"}).status_code == 200

    assert browser.send("POST", "/api/account/signout").status_code == 204

    thief = Browser(shop)
    thief.jar = dict(copy)
    assert error(thief.send("GET", "/api/account")) == (401, "not signed in")
    assert thief.lines() == []  # not the account's cart
    # The refresh token buys nothing, from the app or from Cognito directly.
    pool = _moto_pool(user_pool[0])
    claims = {"origin_jti": _claim(copy["session"], "origin_jti"), "email_verified": "true"}
    expired, _ = pool.create_jwt(user_pool[1], ada, "id", expires_in=-3600, extra_data=claims)
    thief.jar = {"session": expired, "refresh": copy["refresh"]}
    assert thief.send("GET", "/api/account").status_code == 401
    with pytest.raises(boto3.client("cognito-idp").exceptions.NotAuthorizedException):
        boto3.client("cognito-idp").initiate_auth(
            ClientId=user_pool[1], AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": copy["refresh"]})
    # Another device's session is its own: it goes on; signing in again works.
    assert other_device.send("GET", "/api/account").json_body == {"email": ada}
    assert browser.sign_in(ada).status_code == 200
    assert browser.lines() == [("grinder", 1)]


def _claim(token: str, name: str) -> Any:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})[name]


# -- 4. only a verified e-mail is shown -------------------------------------------------

def test_an_unverified_email_is_never_shown(shop: Client, user_pool: tuple[str, str]) -> None:
    sign_up(shop, "mallory@example.com")
    boto3.client("cognito-idp").admin_update_user_attributes(
        UserPoolId=user_pool[0], Username="mallory@example.com",
        UserAttributes=[{"Name": "email_verified", "Value": "false"}])
    browser = Browser(shop)
    response = browser.sign_in("mallory@example.com")
    assert response.status_code == 200 and response.json_body["email"] is None
    assert browser.send("GET", "/api/account").json_body == {"email": None}
    page = browser.send("GET", "/account", headers={"Accept": "text/html"}).body.decode()
    assert "mallory@example.com" not in page
    assert "not verified" in page


def test_a_confirmed_email_is_verified_and_shown(shop: Client, ada: str) -> None:
    browser = Browser(shop)
    assert browser.sign_in(ada).json_body["email"] == ada
    assert browser.send("GET", "/api/account").json_body == {"email": ada}


# -- 8. the pool's mail quota is a 503, not "too many attempts" ---------------------------

@pytest.mark.parametrize("code", ["LimitExceededException", "CodeDeliveryFailureException"])
def test_a_spent_mail_quota_at_sign_up_is_a_503_that_says_so(shop: Client, code: str) -> None:
    runtime.account_service()
    with Stubber(runtime.cognito_client()) as stub:
        stub.add_client_error("sign_up", service_error_code=code, http_status_code=400,
                              service_message="Exceeded daily email limit for the operation "
                                              "or the account.")
        response = Browser(shop).send("POST", "/api/account/signup",
                                      {"email": "new@example.com", "password": PASSWORD})
    assert error(response) == (503, "mail cannot be sent right now; try again later")


def test_too_many_sign_in_attempts_is_still_a_429(shop: Client) -> None:
    runtime.account_service()
    with Stubber(runtime.cognito_client()) as stub:
        stub.add_client_error("initiate_auth", service_error_code="LimitExceededException",
                              http_status_code=400, service_message="Attempt limit exceeded")
        response = Browser(shop).sign_in("ada@example.com")
    assert error(response) == (429, "too many attempts; wait a minute and try again")
