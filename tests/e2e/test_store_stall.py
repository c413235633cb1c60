"""Issue 13, defect 1 and issue 16, finding 2, over HTTP: a stalled store and a retried add.

The stack's moto server holds every DynamoDB request while stalled and runs it
when the stall ends (devstack/faults.py), as a store that answers late does.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from tests.e2e.helpers import LiveStack, store_stall, wait_until
from tests.factories import JSON, add_body


def quantity(stack: LiveStack, cookie: str, product_id: str) -> int:
    cart = requests.get(f"{stack.url}/api/cart", headers={"Cookie": cookie}, timeout=10).json()
    return sum(i["quantity"] for i in cart["items"] if i["productId"] == product_id)


def new_cart(stack: LiveStack, product_id: str) -> str:
    response = requests.post(f"{stack.url}/api/cart/items", headers=JSON,
                             data=add_body(product_id, 1), timeout=10)
    assert response.status_code == 201
    # Names and prices are cached now: the stalled add's first call is its write.
    assert requests.get(f"{stack.url}/api/products", timeout=10).status_code == 200
    return response.headers["Set-Cookie"].split(";", 1)[0]


def post(stack: LiveStack, cookie: str, body: str, key: str | None = None) -> Any:
    headers = {**JSON, "Cookie": cookie, **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{stack.url}/api/cart/items", headers=headers, data=body, timeout=60)


def test_an_add_without_a_key_that_times_out_lands_exactly_once(live_stack: LiveStack) -> None:
    # Issue 16, finding 2: botocore's three timed-out tries all reach the store
    # when it resumes; the transaction's ClientRequestToken lets one apply. The
    # add's read of its line answers; its write is what stalls.
    cookie = new_cart(live_stack, "tote")
    with store_stall(live_stack, only="TransactWriteItems"):
        response = post(live_stack, cookie, add_body("tote", 10))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "Idempotency" not in response.json()["Message"]
    assert wait_until(lambda: quantity(live_stack, cookie, "tote") == 11, timeout=10)
    time.sleep(2)  # the later tries have run by now, and applied nothing
    assert quantity(live_stack, cookie, "tote") == 11


def test_a_keyed_add_retried_after_a_stall_applies_once(live_stack: LiveStack) -> None:
    cookie = new_cart(live_stack, "beans-house")
    body = add_body("beans-house", 10)
    with store_stall(live_stack, only="TransactWriteItems"):
        assert post(live_stack, cookie, body, "one-click").status_code == 503
    first = post(live_stack, cookie, body, "one-click")
    again = post(live_stack, cookie, body, "one-click")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {**first.json(), "quantity": 11}
    assert quantity(live_stack, cookie, "beans-house") == 11
