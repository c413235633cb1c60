"""Idempotency-Key on add-to-cart and checkout: a retry applies once and answers alike."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib import idempotency, runtime, table
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import Faults
from tests.functional.conftest import request


def body(response):
    return json.loads(response.body)


def keyed(key):
    return {idempotency.HEADER: key}


def add(client, cookie, key, product="kettle", quantity=1):
    return request(client, "POST", "/api/cart/items", cookie, add_body(product, quantity),
                   keyed(key) if key is not None else None)


def checkout(client, cookie, key):
    return request(client, "POST", "/api/cart/checkout", cookie, headers=keyed(key))


def quantities(client, cookie):
    shown = body(request(client, "GET", "/api/cart", cookie))
    return {item["productId"]: item["quantity"] for item in shown["items"]}


def cart_id(cookie):
    return cookie.split("=", 1)[1].split(".")[0]


def partition(dynamodb, cookie):
    return dynamodb.query(
        TableName=TABLE_NAME, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": table.cart_pk(cart_id(cookie))}})["Items"]


def orders(dynamodb, cookie):
    return [i for i in partition(dynamodb, cookie) if i["sk"]["S"].startswith("ORDER#")]


def test_a_retried_add_applies_once_and_answers_with_the_first_response(client, cart):
    first = add(client, cart, "add-1", "kettle", 2)
    assert first.status_code == 201
    request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))  # unkeyed, between
    retry = add(client, cart, "add-1", "kettle", 2)
    assert (retry.status_code, body(retry)) == (201, body(first)) == (201, {
        "productId": "kettle", "name": "Gooseneck kettle", "unitPriceCents": 5900,
        "quantity": 3, "lineTotalCents": 17700})
    assert cart_id(cookie_from(retry)) == cart_id(cookie_from(first)) == cart_id(cart)
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 4}


def test_the_same_key_with_a_different_body_is_a_422_and_changes_nothing(client, cart):
    assert add(client, cart, "k", "kettle", 1).status_code == 201
    for product, quantity in (("kettle", 2), ("grinder", 1)):
        response = add(client, cart, "k", product, quantity)
        assert response.status_code == 422
        assert body(response) == {
            "Code": "UnprocessableEntityError",
            "Message": "this Idempotency-Key was already used for a different request"}
    assert checkout(client, cart, "k").status_code == 422
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 2}


def test_the_body_is_compared_by_meaning_not_by_bytes(client, cart):
    assert add(client, cart, "k", "kettle", 1).status_code == 201
    reordered = json.dumps({"quantity": 1, "productId": "kettle"}, indent=2)
    retry = request(client, "POST", "/api/cart/items", cart, reordered, keyed("k"))
    assert retry.status_code == 201
    assert quantities(client, cart)["kettle"] == 2


def test_the_same_key_on_another_cart_is_another_request(client, cart):
    other = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("kettle", 1)))
    assert add(client, cart, "shared", "kettle", 1).status_code == 201
    assert add(client, other, "shared", "kettle", 1).status_code == 201
    assert quantities(client, cart)["kettle"] == 2
    assert quantities(client, other)["kettle"] == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 129, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_a_400_before_anything_is_written(client, cart, key):
    for response in (add(client, cart, key), checkout(client, cart, key)):
        assert response.status_code == 400
        assert body(response)["Code"] == "BadRequestError"
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 1}


@pytest.mark.parametrize("key", ["a", "x" * 128, "9f1c-2b!~ {}", "order 42"])
def test_any_printable_key_up_to_128_characters_works(client, cart, key):
    assert add(client, cart, key).status_code == 201
    assert add(client, cart, key).status_code == 201
    assert quantities(client, cart)["kettle"] == 2


def test_a_retry_of_an_add_that_filled_the_line_replays_instead_of_409(client, cart):
    assert add(client, cart, "fill", "kettle", 98).json_body["quantity"] == 99
    retry = add(client, cart, "fill", "kettle", 98)
    assert (retry.status_code, body(retry)["quantity"]) == (201, 99)
    assert add(client, cart, "more", "kettle", 1).status_code == 409


def test_a_failed_add_is_not_remembered(client, cart):
    assert add(client, cart, "k", "kettle", 99).status_code == 409
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    assert add(client, cart, "k", "kettle", 99).status_code == 201
    assert quantities(client, cart)["kettle"] == 99


def test_the_key_record_lives_under_the_cart_for_a_day_and_holds_a_hash(
        client, cart, dynamodb):
    before = int(time.time())
    add(client, cart, "remember-me", "kettle", 1)
    record = next(i for i in partition(dynamodb, cart)
                  if i["sk"]["S"] == "IDEMPOTENCY#remember-me")
    expires = int(record["expiresAt"]["N"])
    assert before + idempotency.TTL_SECONDS <= expires <= time.time() + idempotency.TTL_SECONDS
    assert record["requestHash"]["S"] == idempotency.request_hash(
        "add_to_cart", {"productId": "kettle", "quantity": 1})
    assert record["response"]["M"]["quantity"] == {"N": "2"}


def test_an_expired_key_record_is_forgotten(client, cart, dynamodb):
    add(client, cart, "old", "kettle", 1)
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": table.cart_pk(cart_id(cart))}, "sk": {"S": "IDEMPOTENCY#old"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})
    assert add(client, cart, "old", "kettle", 1).status_code == 201
    assert quantities(client, cart)["kettle"] == 3


def test_a_cookieless_retry_of_a_first_add_lands_in_a_fresh_cart(client):
    # Keys are per cart and a key never leads to a cart (anyone can send any
    # key), so the retry that lacks the first answer's cookie starts a cart.
    first = add(client, None, "first", "kettle", 1)
    retry = add(client, None, "first", "kettle", 1)
    assert cart_id(cookie_from(first)) != cart_id(cookie_from(retry))
    assert quantities(client, cookie_from(retry)) == {"kettle": 1}
    with_cookie = add(client, cookie_from(first), "first", "kettle", 1)
    assert body(with_cookie)["quantity"] == 1
    assert quantities(client, cookie_from(first)) == {"kettle": 1}


def test_a_retried_checkout_answers_with_the_first_order(client, cart, stream, dynamodb):
    first = checkout(client, cart, "pay-1")
    assert first.status_code == 201
    stream.drain()  # the order is CONFIRMED now; the retry still answers as the first did
    order_id = body(first)["orderId"]
    assert body(request(client, "GET", f"/api/orders/{order_id}", cart))["status"] == "CONFIRMED"
    retry = checkout(client, cart, "pay-1")
    assert (retry.status_code, body(retry)) == (201, body(first))
    assert body(first)["status"] == "PLACED"
    assert len(orders(dynamodb, cart)) == 1


def test_a_checkout_retry_after_new_adds_leaves_them_in_the_cart(client, cart, dynamodb):
    first = checkout(client, cart, "pay-1")
    request(client, "POST", "/api/cart/items", cart, add_body("grinder", 1))
    retry = checkout(client, cart, "pay-1")
    assert body(retry) == body(first)
    assert quantities(client, cart) == {"grinder": 1}
    assert len(orders(dynamodb, cart)) == 1
    assert checkout(client, cart, "pay-2").status_code == 201
    assert len(orders(dynamodb, cart)) == 2


def test_a_keyed_checkout_of_an_empty_cart_is_still_409(client, cart):
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    request(client, "DELETE", "/api/cart/items/espresso-cup", cart)
    assert checkout(client, cart, "pay-1").status_code == 409


@pytest.fixture
def calls(client, cart):
    made: list[str] = []
    add(client, cart, None)  # warm the catalog cache

    def record(model, **_):
        made.append(model.name)

    runtime.dynamodb_client().meta.events.register("before-call.dynamodb", record)
    return made


def test_a_keyed_add_to_a_line_costs_a_read_one_transaction_a_read_and_its_answer(
        client, cart, calls):
    # The first read picks the write (the line is there: add on top), the
    # transaction adds, the second read answers, the record remembers the answer.
    assert add(client, cart, "k").status_code == 201
    assert calls == ["GetItem", "TransactWriteItems", "GetItem", "UpdateItem"]


def test_an_unkeyed_add_to_a_line_costs_a_read_one_transaction_and_a_read(client, cart, calls):
    assert add(client, cart, None).status_code == 201
    assert calls == ["GetItem", "TransactWriteItems", "GetItem"]


def test_an_add_of_a_new_line_costs_a_read_and_one_transaction(client, cart, calls):
    for key in ("k", None):
        calls.clear()
        response = add(client, cart, key, "grinder" if key else "scale")
        assert response.status_code == 201, response.body
        # No cancelled first attempt: the read found no line, the one transaction made it.
        assert calls == ["GetItem", "TransactWriteItems"]


def test_a_keyed_checkout_costs_no_extra_request(client, cart, calls):
    assert checkout(client, cart, "k").status_code == 201
    assert calls == ["Query", "TransactWriteItems"]


# -- write succeeded, response lost -------------------------------------------------

def test_an_add_whose_response_was_lost_applies_once_on_retry(client, cart):
    with Faults(runtime.dynamodb_client()) as faults:
        faults.always("TransactWriteItems", "response-lost")
        lost = add(client, cart, "k", "kettle", 2)
        assert lost.status_code == 503 and lost.headers["Retry-After"]
        # botocore retried twice; the first attempt wrote, the retries met the key.
        assert faults.injected == [("TransactWriteItems", "response-lost")] * 3
        faults.heal()
        retry = add(client, cart, "k", "kettle", 2)
    assert (retry.status_code, body(retry)["quantity"]) == (201, 3)
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 3}


def test_a_checkout_whose_response_was_lost_places_one_order(client, cart, dynamodb):
    with Faults(runtime.dynamodb_client()) as faults:
        faults.fail("TransactWriteItems", "response-lost")
        first = checkout(client, cart, "pay")
        # botocore's own retry met the key record and got the order back.
        assert first.status_code == 201
        assert faults.injected == [("TransactWriteItems", "response-lost")]
        retry = checkout(client, cart, "pay")
    assert body(retry) == body(first)
    assert len(orders(dynamodb, cart)) == 1
    assert quantities(client, cart) == {}


def test_without_a_key_a_lost_response_applies_an_add_once(client, cart):
    # botocore re-sends a timed-out write; the token the API minted for the
    # request is taken by the first attempt, so the re-send applies nothing.
    with Faults(runtime.dynamodb_client()) as faults:
        faults.fail("TransactWriteItems", "response-lost")
        response = add(client, cart, None, "kettle", 1)
    assert (response.status_code, body(response)["quantity"]) == (201, 2)
    assert quantities(client, cart)["kettle"] == 2
