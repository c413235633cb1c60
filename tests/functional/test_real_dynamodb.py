"""What real DynamoDB does and moto never does, and what the shopper gets for each.

The fault layer (tests/functional/botocore_faults.py) makes the app's client
meet in-flight transactions, stale eventually consistent reads, hot-key
throttling and the 100-action transaction limit. Every answer is the one a
user should get: retried and applied once, or a 409/503 in Chalice's error
shape, never a 500.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import app
from chalicelib import runtime, table
from chalicelib.domain import MAX_LINES
from chalicelib.store.codec import key as item_key
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import Faults
from tests.functional.conftest import request

TTL_PRINCIPAL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def body(response):
    return json.loads(response.body)


def cart_id(cookie):
    return cookie.split("=", 1)[1].split(".")[0]


def quantities(client, cookie):
    return {i["productId"]: i["quantity"]
            for i in body(request(client, "GET", "/api/cart", cookie))["items"]}


def assert_busy(response):
    assert response.status_code == 503, (response.status_code, response.body)
    assert body(response)["Code"] == "ServiceUnavailable"
    assert int(response.headers["Retry-After"]) >= 1


@pytest.fixture
def faults(client):
    with Faults(runtime.dynamodb_client()) as layer:
        yield layer


def run_inside(client, method, path, cookie, payload=None, headers=None, answers=None):
    """A hook that runs another request to completion (the held one keeps its request)."""
    def hook():
        held = app.current_request
        try:
            answers.append(request(client, method, path, cookie, payload, headers))
        finally:
            app.current_request = held
    return hook


# -- a plain write to an item inside an in-flight transaction --------------------------

def test_an_add_during_a_checkout_of_the_same_cart_is_a_503_and_lands_on_retry(
        client, cart, faults):
    answers: list = []
    faults.during("TransactWriteItems", run_inside(
        client, "POST", "/api/cart/items", cart, add_body("kettle", 1), answers=answers))
    order = request(client, "POST", "/api/cart/checkout", cart)
    assert order.status_code == 201
    assert {i["productId"]: i["quantity"] for i in body(order)["items"]} == {
        "espresso-cup": 2, "kettle": 1}
    assert_busy(answers[0])
    again = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    assert (again.status_code, body(again)["quantity"]) == (201, 1)
    assert quantities(client, cart) == {"kettle": 1}


def test_a_set_and_a_remove_during_a_checkout_are_503_not_500(client, cart, faults):
    answers: list = []
    faults.during("TransactWriteItems", run_inside(
        client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 5}, answers=answers))
    faults.during("TransactWriteItems", run_inside(
        client, "DELETE", "/api/cart/items/espresso-cup", cart, answers=answers))
    assert request(client, "POST", "/api/cart/checkout", cart).status_code == 201
    for answer in answers:
        assert_busy(answer)


# -- the 100-action transaction limit: a cart holds at most MAX_LINES lines ------------

def fill(client, cookie, count, start=0):
    for i in range(start, start + count):
        response = request(client, "POST", "/api/cart/items", cookie,
                           add_body(f"p{i:03d}", 1))
        assert response.status_code == 201, (i, response.body)


@pytest.fixture
def big_catalog(repo):
    from tests.factories import SEED
    base = SEED[0]
    import dataclasses
    repo.seed_products([dataclasses.replace(base, id=f"p{i:03d}", name=f"Product {i:03d}")
                        for i in range(MAX_LINES + 5)])
    runtime.reset()


def test_a_cart_holds_at_most_max_lines_and_a_409_says_so(client, big_catalog, faults):
    first = request(client, "POST", "/api/cart/items", body=add_body("p000", 1))
    cookie = cookie_from(first)
    fill(client, cookie, MAX_LINES - 1, start=1)
    over = request(client, "POST", "/api/cart/items", cookie, add_body(f"p{MAX_LINES:03d}", 1))
    assert over.status_code == 409
    assert body(over) == {"Code": "ConflictError",
                          "Message": f"a cart holds at most {MAX_LINES} different products; "
                                     "remove one to add another"}
    # More of a product already in the cart is still fine.
    assert request(client, "POST", "/api/cart/items", cookie, add_body("p000", 1)).status_code \
        == 201
    assert len(quantities(client, cookie)) == MAX_LINES


def test_a_keyed_add_past_the_cap_is_a_409_too(client, big_catalog, faults):
    cookie = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("p000", 1)))
    fill(client, cookie, MAX_LINES - 1, start=1)
    over = request(client, "POST", "/api/cart/items", cookie,
                   add_body(f"p{MAX_LINES:03d}", 1), {"Idempotency-Key": "k"})
    assert over.status_code == 409
    assert len(quantities(client, cookie)) == MAX_LINES


def test_a_full_cart_checks_out_in_one_transaction_with_its_key(client, big_catalog, faults):
    cookie = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("p000", 1)))
    fill(client, cookie, MAX_LINES - 1, start=1)
    order = request(client, "POST", "/api/cart/checkout", cookie,
                    headers={"Idempotency-Key": "once"})
    assert order.status_code == 201, order.body
    assert len(body(order)["items"]) == MAX_LINES
    assert ("TransactWriteItems", "transaction-limit") not in faults.injected


def test_a_cart_too_big_for_one_transaction_is_a_409_not_a_500(client, cart, dynamodb, faults):
    # Written before the cap existed (or by hand): more lines than a transaction holds.
    record = dynamodb.get_item(TableName=TABLE_NAME, Key=item_key(
        table.cart_pk(cart_id(cart)), table.line_sk("kettle")))["Item"]
    for i in range(120):
        dynamodb.put_item(TableName=TABLE_NAME, Item={
            **record, "sk": {"S": table.line_sk(f"legacy-{i:03d}")},
            "productId": {"S": f"legacy-{i:03d}"}})
    response = request(client, "POST", "/api/cart/checkout", cart)
    assert response.status_code == 409, response.body
    assert str(MAX_LINES) in body(response)["Message"]
    assert len(quantities(client, cart)) == 122


# -- stale eventually consistent reads -------------------------------------------------

def test_the_order_is_found_right_after_checkout_though_replicas_lag(client, cart, faults):
    faults.stale()
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    api = request(client, "GET", f"/api/orders/{order['orderId']}", cart)
    assert (api.status_code, body(api)["orderId"]) == (200, order["orderId"])
    page = request(client, "GET", f"/orders/{order['orderId']}", cart)
    assert page.status_code == 200
    assert ("GetItem", "stale-read") not in faults.injected


def test_the_cart_and_its_status_read_consistently_though_replicas_lag(
        client, cart, faults, stream):
    faults.stale()
    request(client, "POST", "/api/cart/items", cart, add_body("grinder", 1))
    stream.drain()
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 1, "grinder": 1}
    status = body(request(client, "GET", "/api/cart/status", cart))
    assert status["itemCount"] == 4


# -- keyed adds that collide on one line -------------------------------------------------

def test_a_keyed_add_that_keeps_colliding_is_retried_inside_the_request(client, cart, faults):
    answers: list = []
    for i in range(8):  # another keyed add lands between each read and write
        faults.before("TransactWriteItems", run_inside(
            client, "POST", "/api/cart/items", cart, add_body("kettle", 1),
            {"Idempotency-Key": f"other-{i}"}, answers))
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1),
                       {"Idempotency-Key": "mine"})
    assert response.status_code == 201, response.body
    assert all(a.status_code == 201 for a in answers)
    assert quantities(client, cart)["kettle"] == 1 + len(answers) + 1


def test_concurrent_keyed_adds_on_one_line_all_apply(client, cart, faults):
    # Requests really interleave between their calls: moto is serialized, not the app.
    # (40 adds: each moto transaction copies the table, so 98 take minutes here.)
    faults.serialize()
    service = runtime.cart_service()
    cid = cart_id(cart)

    def add(i):
        return service.add_to_cart(cid, json.loads(add_body("kettle", 1)), f"key-{i}").quantity

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(add, range(40)))
    print(f"\n40 keyed adds, 8 threads: {time.perf_counter() - started:.1f} s, "
          f"{faults.attempts.count('TransactWriteItems')} transactions")
    # Each add answers the line as read right after its transaction: adds that
    # landed meanwhile show in it, so answers may repeat, never go past the sum.
    assert all(2 <= answer <= 41 for answer in answers) and max(answers) == 41
    assert quantities(client, cart)["kettle"] == 41
    assert threading.active_count() >= 1


# -- a hot key throttled ---------------------------------------------------------------

def test_a_throttled_counter_shard_moves_to_another_and_counts_exactly(client, stream, faults):
    cookies = []
    for _ in range(3):
        cookies.append(cookie_from(request(client, "POST", "/api/cart/items",
                                           body=add_body("kettle", 1))))
    faults.throttle(table.COUNTER_PREFIX, times=2)
    records = stream.read()
    assert stream.deliver(records)["process_stream"] == {"batchItemFailures": []}
    products = body(request(client, "GET", "/api/products"))["products"]
    assert {p["id"]: p["inCarts"] for p in products if p["inCarts"]} == {"kettle": 3}
    assert [k for _, k in faults.injected] == [f"hot-key {table.COUNTER_PREFIX}"] * 2


def test_a_hot_cart_key_throttled_a_few_times_is_retried_inside_the_request(
        client, cart, faults):
    # A transaction cancelled as throttled applied nothing: the request tries again.
    faults.throttle(table.cart_pk(cart_id(cart)), times=3)
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    assert (response.status_code, body(response)["quantity"]) == (201, 2)
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 2}


def test_a_hot_cart_key_throttled_past_the_deadline_is_a_503_and_changes_nothing(
        client, cart, faults):
    faults.throttle(table.cart_pk(cart_id(cart)), times=10_000)
    assert_busy(request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1)))
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 1}
