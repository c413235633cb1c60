"""The six findings of issue 16, one test each: every one failed on the code before.

1. the line cap is a condition DynamoDB evaluates with the line's creation;
2. an unkeyed add stalled past the SDK's timeout lands exactly once;
3. a keyed add meeting conflicts is retried inside the request, never 409;
4. a checkout whose response was lost answers its order, never 409;
5. a checkout racing adds takes them in (or answers 503), never 409;
6. the history, its references and adopted orders read consistently.

Faults come through botocore's event hooks (tests/functional/botocore_faults.py).
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import app
from chalicelib import runtime, table
from chalicelib.domain import MAX_LINES
from tests.factories import SEED, TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import CONFLICTED, Faults
from tests.functional.conftest import request
from tests.functional.test_accounts import Browser, sign_up


def body(response):
    return json.loads(response.body)


def quantities(client, cookie):
    return {i["productId"]: i["quantity"]
            for i in body(request(client, "GET", "/api/cart", cookie))["items"]}


def cart_pk(cookie):
    return table.cart_pk(cookie.split("=", 1)[1].split(".")[0])


def stored(dynamodb, cookie, prefix):
    return dynamodb.query(
        TableName=TABLE_NAME, ConsistentRead=True,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": cart_pk(cookie)}, ":p": {"S": prefix}},
    )["Items"]


def run_inside(client, answers, method, path, cookie, payload=None, headers=None):
    """A hook that runs another request to completion (the held one keeps its request)."""
    def hook():
        held = app.current_request
        try:
            answers.append(request(client, method, path, cookie, payload, headers))
        finally:
            app.current_request = held
    return hook


@pytest.fixture
def faults(client):
    with Faults(runtime.dynamodb_client()) as layer:
        yield layer


@pytest.fixture
def big_catalog(repo):
    repo.seed_products([dataclasses.replace(SEED[0], id=f"p{i:03d}", name=f"Product {i:03d}")
                        for i in range(MAX_LINES + 20)])  # p060-p062 stay out of a full cart
    runtime.reset()


def fill(client, dynamodb, count):
    """A cart of `count` lines: the first added through the API, the rest written as
    the adds would have written them (the API takes ~1 s per new line on moto)."""
    cookie = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("p000", 1)))
    pk = {"S": cart_pk(cookie)}
    [line] = stored(dynamodb, cookie, table.line_sk("p000"))
    for i in range(1, count):
        dynamodb.put_item(TableName=TABLE_NAME, Item={
            **line, "pk": pk, "sk": {"S": table.line_sk(f"p{i:03d}")},
            "productId": {"S": f"p{i:03d}"}})
    dynamodb.update_item(TableName=TABLE_NAME, Key={"pk": pk, "sk": {"S": table.LINES_SK}},
                         UpdateExpression="SET lineCount = :n",
                         ExpressionAttributeValues={":n": {"N": str(count)}})
    return cookie


def race_new_lines(faults, cookie, first, count):
    """`count` adds of new products (p<first>...) racing on the cart from 8 threads,
    every other one keyed; each one's outcome: "added" or the refusal's name."""
    faults.serialize()  # moto is not thread-safe; the requests still interleave
    service = runtime.cart_service()
    cart_id = cookie.split("=", 1)[1].split(".")[0]

    def add(i):
        try:
            service.add_to_cart(cart_id, {"productId": f"p{first + i:03d}", "quantity": 1},
                                f"key-{i}" if i % 2 else None)
        except Exception as exc:  # noqa: BLE001 - the outcome is what is counted
            return type(exc).__name__
        return "added"

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(add, range(count)))


# -- 1. the line cap ---------------------------------------------------------------------

@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "last-line"}])
def test_an_add_creating_a_line_while_another_took_the_last_slot_is_refused(
        client, big_catalog, faults, dynamodb, headers):
    cookie = fill(client, dynamodb, MAX_LINES - 1)
    answers: list = []
    # Between the held add's first look and its write, another new line takes the last slot.
    faults.before("TransactWriteItems", run_inside(
        client, answers, "POST", "/api/cart/items", cookie, add_body("p060", 1)))
    held = request(client, "POST", "/api/cart/items", cookie, add_body("p061", 1), headers)
    assert answers[0].status_code == 201
    assert held.status_code == 409, held.body
    assert len(quantities(client, cookie)) == MAX_LINES


def test_concurrent_adds_of_new_products_fill_the_cart_exactly(
        client, big_catalog, faults, dynamodb):
    cookie = fill(client, dynamodb, MAX_LINES - 4)
    outcomes = race_new_lines(faults, cookie, first=50, count=12)
    # Never above the cap, and never refused with room: four fit, eight are refused.
    assert sorted(outcomes) == ["TooManyLines"] * 8 + ["added"] * 4
    assert len(quantities(client, cookie)) == MAX_LINES
    [header] = stored(dynamodb, cookie, table.LINES_SK)
    assert header["lineCount"] == {"N": str(MAX_LINES)}


def test_removing_a_line_makes_room_for_another(client, big_catalog, dynamodb):
    cookie = fill(client, dynamodb, MAX_LINES)
    assert request(client, "POST", "/api/cart/items", cookie,
                   add_body("p060", 1)).status_code == 409
    assert request(client, "DELETE", "/api/cart/items/p003", cookie).status_code == 204
    assert request(client, "PUT", "/api/cart/items/p004", cookie,
                   {"quantity": 0}).status_code == 204
    for product in ("p060", "p061"):
        assert request(client, "POST", "/api/cart/items", cookie,
                       add_body(product, 1)).status_code == 201
    assert request(client, "POST", "/api/cart/items", cookie,
                   add_body("p062", 1)).status_code == 409


def test_a_checkout_leaves_the_count_high_and_the_next_add_corrects_it(
        client, big_catalog, dynamodb):
    # The header counts up exactly and down lazily: a checkout writes one item fewer.
    cookie = fill(client, dynamodb, MAX_LINES)
    assert request(client, "POST", "/api/cart/checkout", cookie, {}).status_code == 201
    [header] = stored(dynamodb, cookie, table.LINES_SK)
    assert header["lineCount"] == {"N": str(MAX_LINES)}
    # An add that finds it at the cap counts the live lines (none) and corrects it.
    for product in ("p060", "p061"):
        assert request(client, "POST", "/api/cart/items", cookie,
                       add_body(product, 1)).status_code == 201
    [header] = stored(dynamodb, cookie, table.LINES_SK)
    assert header["lineCount"] == {"N": "2"}


def test_concurrent_adds_after_removals_fill_the_cart_exactly(
        client, big_catalog, faults, dynamodb):
    # Four removals leave the count four high; of twelve racing new lines four fit.
    cookie = fill(client, dynamodb, MAX_LINES)
    for product in ("p001", "p002", "p003", "p004"):
        assert request(client, "DELETE", f"/api/cart/items/{product}",
                       cookie).status_code == 204
    outcomes = race_new_lines(faults, cookie, first=48, count=12)
    assert sorted(outcomes) == ["TooManyLines"] * 8 + ["added"] * 4
    assert len(quantities(client, cookie)) == MAX_LINES


def test_a_cart_without_a_header_is_counted_before_its_first_new_line(
        client, big_catalog, dynamodb):
    # A cart from before the header (or whose header expired): its lines are counted.
    cookie = fill(client, dynamodb, MAX_LINES)
    dynamodb.delete_item(TableName=TABLE_NAME,
                         Key={"pk": {"S": cart_pk(cookie)}, "sk": {"S": table.LINES_SK}})
    assert request(client, "POST", "/api/cart/items", cookie,
                   add_body("p060", 1)).status_code == 409
    assert request(client, "DELETE", "/api/cart/items/p000", cookie).status_code == 204
    assert request(client, "POST", "/api/cart/items", cookie,
                   add_body("p060", 1)).status_code == 201
    assert len(quantities(client, cookie)) == MAX_LINES


def test_a_header_counting_expired_lines_is_corrected_before_an_add_is_refused(
        client, big_catalog, dynamodb):
    cookie = fill(client, dynamodb, MAX_LINES)
    # Two lines expired (DynamoDB has not deleted them yet): the header still counts them.
    for product in ("p001", "p002"):
        dynamodb.update_item(
            TableName=TABLE_NAME, Key={"pk": {"S": cart_pk(cookie)},
                                       "sk": {"S": table.line_sk(product)}},
            UpdateExpression="SET expiresAt = :past", ExpressionAttributeValues={
                ":past": {"N": "1000"}})
    for product in ("p060", "p061"):
        assert request(client, "POST", "/api/cart/items", cookie,
                       add_body(product, 1)).status_code == 201
    assert request(client, "POST", "/api/cart/items", cookie,
                   add_body("p062", 1)).status_code == 409
    assert len(quantities(client, cookie)) == MAX_LINES


# -- 2. at most once without a key ------------------------------------------------------

def test_an_unkeyed_add_stalled_past_the_sdk_timeout_lands_exactly_once(client, cart, faults):
    # Every attempt times out for botocore and lands 0.3 s later all the same,
    # as when the store is stalled (SIGSTOP) and resumes.
    for operation in ("UpdateItem", "TransactWriteItems"):
        faults.always(operation, "late")
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    assert response.status_code == 503
    assert "Idempotency-Key" not in body(response)["Message"]  # shopper words
    faults.heal()
    faults.settle()  # all three attempts have landed now
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 2}


def test_an_unkeyed_add_whose_retry_races_its_late_first_attempt_applies_once(
        client, cart, faults):
    for operation in ("UpdateItem", "TransactWriteItems"):
        faults.fail(operation, "late", times=2)
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 3))
    faults.settle()
    assert response.status_code == 201, response.body
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 4}


def test_a_set_stalled_past_the_sdk_timeout_never_lands_again_over_a_later_add(
        client, cart, faults):
    faults.late_seconds = 4.0  # the stalled attempts land after the next request
    for operation in ("UpdateItem", "TransactWriteItems"):
        faults.fail(operation, "late", times=2)
    assert request(client, "PUT", "/api/cart/items/kettle", cart,
                   {"quantity": 5}).status_code == 200
    assert request(client, "POST", "/api/cart/items", cart,
                   add_body("kettle", 1)).status_code == 201
    faults.settle()
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 6}


def test_a_keyed_retry_refused_while_its_first_try_is_in_flight_stays_refused(
        client, cart, faults):
    # The first try's three attempts time out for botocore and land 2 s later, all
    # the same. The retry is refused (the line is full by then): it fences its key
    # before answering 409, so none of the first try's attempts lands after it.
    faults.late_seconds = 2.0
    faults.fail("TransactWriteItems", "late", times=3)
    key = {"Idempotency-Key": "in-flight"}
    assert request(client, "POST", "/api/cart/items", cart, add_body("kettle", 5),
                   key).status_code == 503
    assert request(client, "PUT", "/api/cart/items/kettle", cart,
                   {"quantity": 98}).status_code == 200
    retry = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 5), key)
    assert retry.status_code == 409, retry.body
    faults.settle()
    assert quantities(client, cart)["kettle"] == 98  # the 409 was definite
    # A try after the refusal is a try of its own: it may apply, once.
    assert request(client, "PUT", "/api/cart/items/kettle", cart,
                   {"quantity": 90}).status_code == 200
    again = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 5), key)
    assert (again.status_code, body(again)["quantity"]) == (201, 95)
    assert body(request(client, "POST", "/api/cart/items", cart, add_body("kettle", 5),
                        key))["quantity"] == 95


def test_an_unkeyed_add_refused_after_a_re_send_is_a_503_not_a_409(client, cart, faults):
    # The first attempt lands 2 s late; botocore's re-send is refused (the line is
    # full). Only a success registers a token, so the late attempt is not stopped by
    # it: once the line has room again, it lands. A 409 would have been a lie.
    assert request(client, "PUT", "/api/cart/items/kettle", cart,
                   {"quantity": 97}).status_code == 200
    faults.late_seconds = 2.0
    faults.fail("TransactWriteItems", "late")
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 5))
    assert response.status_code == 503, response.body  # may or may not have applied
    assert request(client, "PUT", "/api/cart/items/kettle", cart,
                   {"quantity": 10}).status_code == 200
    faults.settle()
    assert quantities(client, cart)["kettle"] == 15  # it did, late


# -- 3. keyed adds on a hot line ----------------------------------------------------------

def test_a_keyed_add_meeting_transaction_conflicts_is_retried_inside_the_request(
        client, cart, faults):
    faults.fail("TransactWriteItems", CONFLICTED, times=5)
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1),
                       {"Idempotency-Key": "hot"})
    assert (response.status_code, body(response)["quantity"]) == (201, 2)


def test_a_conflict_that_outlasts_the_deadline_is_a_503_with_retry_after(
        client, cart, faults):
    faults.always("TransactWriteItems", CONFLICTED)
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1),
                       {"Idempotency-Key": "hot"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    faults.heal()
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 1}


def test_keyed_adds_racing_on_one_line_retry_at_most_once(client, cart, faults):
    answers: list = []
    for i in range(8):
        faults.before("TransactWriteItems", run_inside(
            client, answers, "POST", "/api/cart/items", cart, add_body("kettle", 1),
            {"Idempotency-Key": f"other-{i}"}))
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1),
                       {"Idempotency-Key": "mine"})
    assert response.status_code == 201
    assert [a.status_code for a in answers] == [201] * 8
    assert quantities(client, cart)["kettle"] == 10
    # One transaction per add, however many race, and one more for mine: its first, on
    # the quantity it read, is cancelled by the 8 that landed since; its second adds on
    # top of whatever is there (no optimistic loop).
    assert faults.attempts.count("TransactWriteItems") == 10


# -- 4. a checkout's lost response ---------------------------------------------------------

def test_an_unkeyed_checkout_whose_response_was_lost_answers_its_order(
        client, cart, faults, dynamodb):
    faults.fail("TransactWriteItems", "response-lost")
    response = request(client, "POST", "/api/cart/checkout", cart)
    assert response.status_code == 201, response.body
    assert {i["productId"]: i["quantity"] for i in body(response)["items"]} == {
        "espresso-cup": 2, "kettle": 1}
    [order] = stored(dynamodb, cart, table.ORDER_PREFIX)
    assert order["orderId"]["S"] == body(response)["orderId"]
    assert quantities(client, cart) == {}


# -- 5. checkout racing adds ------------------------------------------------------------------

def test_a_checkout_racing_adds_takes_them_in_and_never_answers_409(client, cart, faults):
    answers: list = []
    # An add lands between each of the checkout's reads and its transaction, four times.
    for _ in range(4):
        faults.before("TransactWriteItems", run_inside(
            client, answers, "POST", "/api/cart/items", cart, add_body("kettle", 1)))
    response = request(client, "POST", "/api/cart/checkout", cart)
    assert [a.status_code for a in answers] == [201] * 4
    assert response.status_code == 201, response.body
    assert {i["productId"]: i["quantity"] for i in body(response)["items"]} == {
        "espresso-cup": 2, "kettle": 5}
    assert quantities(client, cart) == {}


def test_a_checkout_whose_cart_never_holds_still_is_a_503_and_the_adds_all_land(
        client, cart, faults, dynamodb):
    faults.always("TransactWriteItems", CONFLICTED)  # every transaction meets another
    response = request(client, "POST", "/api/cart/checkout", cart)
    assert response.status_code == 503
    assert stored(dynamodb, cart, table.ORDER_PREFIX) == []


# -- 6. consistent reads where a shopper reads what they just wrote ------------------------

def test_the_order_history_shows_the_order_just_placed_though_replicas_lag(
        client, cart, faults):
    faults.stale()
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    history = body(request(client, "GET", "/api/orders", cart))["orders"]
    assert [o["orderId"] for o in history] == [order["orderId"]]
    assert order["orderId"] in request(client, "GET", "/orders", cart).body.decode()
    assert not [i for i in faults.injected if i[1] == "stale-read"]


def test_an_order_adopted_at_sign_in_is_found_right_after_though_replicas_lag(
        client, user_pool, faults):
    sign_up(client, "ada@example.com")
    browser = Browser(client)
    browser.add("tote", 1)
    order_id = browser.send("POST", "/api/cart/checkout").json_body["orderId"]
    faults.stale()  # from now on, eventually consistent reads miss what is written
    assert browser.sign_in("ada@example.com").status_code == 200
    elsewhere = Browser(client)
    elsewhere.sign_in("ada@example.com")
    assert elsewhere.send("GET", f"/api/orders/{order_id}").status_code == 200
    assert [o["orderId"] for o in elsewhere.send("GET", "/api/orders").json_body["orders"]] \
        == [order_id]
    assert not [i for i in faults.injected if i[1] == "stale-read"]


def test_the_fault_layer_serves_stale_batch_reads_of_batch_writes(client, dynamodb, faults):
    # What the tests above rely on: BatchWriteItem's items are fresh, BatchGetItem misses them.
    faults.stale()
    client_ = runtime.dynamodb_client()
    keys = [{"pk": {"S": "CART#x"}, "sk": {"S": f"ORDERREF#{i}"}} for i in range(2)]
    client_.batch_write_item(RequestItems={TABLE_NAME: [
        {"PutRequest": {"Item": {**k, "orderId": {"S": "o"}}}} for k in keys]})
    stale = client_.batch_get_item(RequestItems={TABLE_NAME: {"Keys": keys}})
    fresh = client_.batch_get_item(RequestItems={TABLE_NAME: {"Keys": keys,
                                                              "ConsistentRead": True}})
    assert stale["Responses"][TABLE_NAME] == []
    assert len(fresh["Responses"][TABLE_NAME]) == 2
