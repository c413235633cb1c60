"""Accounts over HTTP against the local stack: moto's Cognito server, the app's own JWKS fetch.

Every test signs up its own e-mail, so the session's stack can be shared.
"""

from __future__ import annotations

import uuid

import requests

from tests.e2e.helpers import LiveStack, wait_until
from tests.factories import JSON, add_body

PASSWORD = "Pour-0ver-please"


def new_email() -> str:
    return f"shopper-{uuid.uuid4().hex[:12]}@example.com"


def post(session: requests.Session, stack: LiveStack, path: str,
         body: object | None = None) -> requests.Response:
    return session.post(f"{stack.url}{path}", json=body, headers=JSON, timeout=10)


def confirmation_code(stack: LiveStack, email: str) -> str:
    """The code the pool e-mailed; moto accepts any (as the stack says when it starts),
    the deployed stack on MiniStack only the one in its outbox (tests/emulated)."""
    read_mail = getattr(stack, "confirmation_code", None)
    return str(read_mail(email)) if read_mail else "000000"


def signed_up(session: requests.Session, stack: LiveStack) -> str:
    email = new_email()
    assert post(session, stack, "/api/account/signup",
                {"email": email, "password": PASSWORD}).status_code == 201
    confirmed = post(session, stack, "/api/account/confirm",
                     {"email": email, "code": confirmation_code(stack, email)})
    assert confirmed.status_code == 204, confirmed.text
    return email


def test_the_stack_says_any_confirmation_code_is_accepted(live_stack: LiveStack) -> None:
    assert "ANY confirmation code" in live_stack.output()


def test_a_cart_follows_the_shopper_from_one_browser_to_another(live_stack: LiveStack) -> None:
    laptop, phone = requests.Session(), requests.Session()
    response = laptop.post(f"{live_stack.url}/api/cart/items", headers=JSON,
                           data=add_body("grinder", 2), timeout=10)
    assert response.status_code == 201
    email = signed_up(laptop, live_stack)

    signed_in = post(laptop, live_stack, "/api/account/signin",
                     {"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["merged"]["movedLines"] == 1
    assert {c.name for c in laptop.cookies} == {"session", "refresh"}
    assert all(c.has_nonstandard_attr("HttpOnly") for c in laptop.cookies
               if c.name in ("session", "refresh"))
    assert laptop.get(f"{live_stack.url}/api/account", timeout=10).json() == {"email": email}

    assert post(phone, live_stack, "/api/account/signin",
                {"email": email, "password": PASSWORD}).status_code == 200
    cart = phone.get(f"{live_stack.url}/api/cart", timeout=10).json()
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("grinder", 2)]
    order = post(phone, live_stack, "/api/cart/checkout")
    assert order.status_code == 201, order.text
    order_id = order.json()["orderId"]

    def confirmed_in_history() -> bool:
        orders = laptop.get(f"{live_stack.url}/api/orders", timeout=10).json()["orders"]
        return [(o["orderId"], o["status"]) for o in orders] == [(order_id, "CONFIRMED")]

    wait_until(confirmed_in_history, timeout=15)
    assert laptop.get(f"{live_stack.url}/api/orders/{order_id}", timeout=10).status_code == 200

    assert post(laptop, live_stack, "/api/account/signout").status_code == 204
    assert laptop.get(f"{live_stack.url}/api/account", timeout=10).status_code == 401
    assert laptop.get(f"{live_stack.url}/api/orders", timeout=10).json() == {"orders": []}


def test_wrong_password_unconfirmed_and_duplicate_over_http(live_stack: LiveStack) -> None:
    session = requests.Session()
    email = new_email()
    assert post(session, live_stack, "/api/account/signup",
                {"email": email, "password": "weak"}).status_code == 400
    assert post(session, live_stack, "/api/account/signup",
                {"email": email, "password": PASSWORD}).status_code == 201
    assert post(session, live_stack, "/api/account/signup",
                {"email": email, "password": PASSWORD}).status_code == 409
    assert post(session, live_stack, "/api/account/signin",
                {"email": email, "password": PASSWORD}).status_code == 403
    assert post(session, live_stack, "/api/account/confirm",
                {"email": email, "code": confirmation_code(live_stack, email)}).status_code == 204
    wrong = post(session, live_stack, "/api/account/signin",
                 {"email": email, "password": "Not-the-1-password"})
    assert wrong.status_code == 401 and wrong.json()["Code"] == "UnauthorizedError"
    assert "session" not in session.cookies


def test_a_forged_session_cookie_is_signed_out_not_an_error(live_stack: LiveStack) -> None:
    session = requests.Session()
    session.cookies.set("session", "eyJhbGciOiJSUzI1NiIsImtpZCI6ImR1bW15In0.e30.c2ln")
    assert session.get(f"{live_stack.url}/api/account", timeout=10).status_code == 401
    page = session.get(f"{live_stack.url}/orders", timeout=10)
    assert page.status_code == 200 and "Sign in" in page.text
