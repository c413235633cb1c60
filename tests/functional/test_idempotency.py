"""Idempotency-Key on add-to-cart and checkout: a retry applies once and answers alike."""

from __future__ import annotations

import json
import re
import time

import pytest

from chalicelib import idempotency, runtime, table
from chalicelib.store.orders import order_id_for
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import CONFLICTED, Faults
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


def test_a_keyed_add_to_a_line_costs_a_read_and_one_transaction_holding_its_answer(
        client, cart, calls):
    # The read picks the write (the line is there: add on top of what was read); the
    # transaction adds and its record holds the answer, known before the write.
    response = add(client, cart, "k")
    assert response.status_code == 201
    assert calls == ["GetItem", "TransactWriteItems"]
    calls.clear()
    again = add(client, cart, "k")
    assert (again.status_code, again.json_body) == (201, response.json_body)
    assert calls == ["GetItem", "TransactWriteItems"]  # cancelled by the record: its answer


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


def test_a_new_carts_first_add_costs_one_transaction_making_its_header(client, cart, calls):
    for key in ("first", None):
        calls.clear()
        response = add(client, None, key, "grinder", 2)
        assert response.status_code == 201, response.body
        # The cart's id was made for this request: no line to read, no header to
        # count; the one transaction Puts the header (absent) with the line.
        assert calls == ["TransactWriteItems"]
        made = cookie_from(response)
        assert quantities(client, made) == {"grinder": 2}
        calls.clear()
        assert add(client, made, None, "scale").status_code == 201
        assert calls == ["GetItem", "TransactWriteItems"]  # counted in that header
        if key is not None:
            again = request(client, "POST", "/api/cart/items", made, add_body("grinder", 2),
                            keyed(key))
            assert (again.status_code, body(again)) == (201, body(response))
        assert quantities(client, made) == {"grinder": 2, "scale": 1}


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
        # botocore's own retry carried the first's ClientRequestToken: applied nothing.
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


def unkeyed_checkout(client, cookie, key):
    headers = keyed(key) if key is not None else None
    return request(client, "POST", "/api/cart/checkout", cookie, headers=headers)


def forget_request_tokens(client, old_items=True):
    """Transactions without a ClientRequestToken: what a store that does not honour
    it does (or DynamoDB, 10 minutes on): a re-send is applied as a new request.
    Without `old_items`, a cancellation returns no old item (older emulators)."""
    def strip(params, model, **_):
        if model.name == "TransactWriteItems":
            params.pop("ClientRequestToken", None)
            for action in params["TransactItems"] if not old_items else ():
                next(iter(action.values())).pop("ReturnValuesOnConditionCheckFailure", None)
    client.meta.events.register_last("before-parameter-build", strip)


@pytest.mark.parametrize("old_items", [True, False])
@pytest.mark.parametrize("key", [None, "pay"])
def test_a_lost_response_whose_re_send_lands_answers_the_one_order(
        client, cart, dynamodb, repo, key, old_items):
    # The re-send is applied: the order it would place is there, so the order
    # Put cancels it (as do the line deletes), and the answer is the order: the
    # old item the cancellation returns, else a consistent read of the order.
    kettles = repo.products(["kettle"], consistent=True)["kettle"].stock
    forget_request_tokens(runtime.dynamodb_client(), old_items)
    with Faults(runtime.dynamodb_client()) as faults:
        faults.fail("TransactWriteItems", "response-lost")
        response = unkeyed_checkout(client, cart, key)
    assert response.status_code == 201, response.body
    assert faults.attempts.count("TransactWriteItems") == 2
    assert faults.attempts.count("Query") == 1  # answered from the cancelled order Put
    assert ("GetItem" in faults.attempts) is not old_items
    [order] = orders(dynamodb, cart)
    assert body(response)["orderId"] == order["orderId"]["S"]
    assert body(response)["status"] == "PLACED"
    assert {i["productId"]: i["quantity"] for i in body(response)["items"]} == {
        "espresso-cup": 2, "kettle": 1}
    assert quantities(client, cart) == {}
    assert repo.products(["kettle"], consistent=True)["kettle"].stock == kettles - 1


@pytest.mark.parametrize("key", [None, "pay"])
def test_an_attempt_landing_late_and_the_service_retry_place_one_order(
        client, cart, dynamodb, repo, key):
    # The first attempt stalls (applied later); botocore's re-send meets it in
    # flight (TransactionConflict) and the service tries again, with the same
    # order id: the late attempt lands first, and the retry is cancelled by it.
    kettles = repo.products(["kettle"], consistent=True)["kettle"].stock
    with Faults(runtime.dynamodb_client()) as faults:
        faults.late_seconds = 2.0  # after the service's second read of the lines
        faults.fail("TransactWriteItems", "late").fail("TransactWriteItems", CONFLICTED)
        # The service's own retry (the third attempt) waits for the late one to land.
        faults.before("TransactWriteItems",
                      lambda: faults.before("TransactWriteItems", faults.settle))
        response = unkeyed_checkout(client, cart, key)
    assert response.status_code == 201, response.body
    assert faults.attempts.count("TransactWriteItems") == 3
    assert faults.attempts.count("Query") == 2  # the retry's own: its cancellation answers
    [order] = orders(dynamodb, cart)
    assert body(response)["orderId"] == order["orderId"]["S"]
    assert {i["productId"]: i["quantity"] for i in body(response)["items"]} == {
        "espresso-cup": 2, "kettle": 1}
    assert quantities(client, cart) == {}
    assert repo.products(["kettle"], consistent=True)["kettle"].stock == kettles - 1


# -- the order is the request's record -------------------------------------------------

def test_a_keyed_checkout_places_the_order_its_cart_and_key_name(client, cart, dynamodb):
    first = checkout(client, cart, "pay")
    order_id = body(first)["orderId"]
    once = idempotency.idempotent_request("pay", "checkout", None, 0)
    assert order_id == order_id_for(cart_id(cart), once)
    assert re.fullmatch("[0-9a-f]{32}", order_id)  # as any order id: /orders/<id> takes it
    assert body(request(client, "GET", f"/api/orders/{order_id}", cart)) == body(first)
    assert request(client, "GET", f"/orders/{order_id}", cart).status_code == 200
    [order] = orders(dynamodb, cart)
    assert order["requestHash"]["S"] == idempotency.request_hash("checkout", None)
    # The key's record holds no answer: the order is the answer.
    [record] = [i for i in partition(dynamodb, cart) if i["sk"]["S"] == "IDEMPOTENCY#pay"]
    assert "response" not in record
    other = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("kettle", 1)))
    assert body(checkout(client, other, "pay"))["orderId"] not in (order_id, None)


def test_an_unkeyed_checkout_writes_no_request_record(client, cart, dynamodb):
    def records():
        return [i for i in partition(dynamodb, cart)
                if i["sk"]["S"].startswith((table.REQUEST_PREFIX, table.IDEMPOTENCY_PREFIX))]
    before = records()
    response = unkeyed_checkout(client, cart, None)
    assert response.status_code == 201
    assert records() == before
    assert [o["orderId"]["S"] for o in orders(dynamodb, cart)] == [body(response)["orderId"]]
    assert "requestHash" not in orders(dynamodb, cart)[0]


def test_a_keyed_retry_after_the_cart_emptied_reads_the_order(client, cart, calls, stream):
    first = checkout(client, cart, "pay")
    assert first.status_code == 201
    stream.drain()  # CONFIRMED now: the retry answers as the first did, PLACED
    calls.clear()
    retry = checkout(client, cart, "pay")
    assert (retry.status_code, body(retry)) == (201, body(first))
    assert calls == ["Query", "GetItem"]  # the lines (none), then the order


def test_a_key_used_for_a_checkout_is_refused_for_an_add(client, cart):
    assert checkout(client, cart, "k").status_code == 201
    response = add(client, cart, "k")
    assert response.status_code == 422
    assert quantities(client, cart) == {}


def test_an_order_placed_for_another_request_refuses_the_key(client, cart, dynamodb):
    order_id = body(checkout(client, cart, "pay"))["orderId"]
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": table.cart_pk(cart_id(cart))}, "sk": {"S": f"ORDER#{order_id}"}},
        UpdateExpression="SET requestHash = :other",
        ExpressionAttributeValues={":other": {"S": "another request"}})
    assert checkout(client, cart, "pay").status_code == 422  # the cart is empty: read
    add(client, cart, None)
    assert checkout(client, cart, "pay").status_code == 422  # the transaction: cancelled
    assert quantities(client, cart) == {"kettle": 1}


def test_a_keyed_retry_after_the_key_record_expired_still_answers_its_order(
        client, cart, dynamodb):
    # The key's promise is 24 h; the order, its answer, lives on and answers longer.
    first = checkout(client, cart, "pay")
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": table.cart_pk(cart_id(cart))}, "sk": {"S": "IDEMPOTENCY#pay"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})
    add(client, cart, None, "grinder", 1)
    retry = checkout(client, cart, "pay")
    assert (retry.status_code, body(retry)) == (201, body(first))
    assert quantities(client, cart) == {"grinder": 1}
    assert len(orders(dynamodb, cart)) == 1


def test_a_keyed_checkout_from_before_the_order_was_its_record_still_answers(
        client, cart, dynamodb):
    # Before issue 20 the key's record held the order, whose id was random.
    first = body(checkout(client, cart, "pay"))
    pk = {"S": table.cart_pk(cart_id(cart))}
    [order] = orders(dynamodb, cart)
    dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": pk, "sk": order["sk"]})
    old_id = "0" * 32
    old = {**order, "sk": {"S": f"ORDER#{old_id}"}, "orderId": {"S": old_id}}
    del old["requestHash"]
    dynamodb.put_item(TableName=TABLE_NAME, Item=old)
    dynamodb.update_item(
        TableName=TABLE_NAME, Key={"pk": pk, "sk": {"S": "IDEMPOTENCY#pay"}},
        UpdateExpression="SET #r = :r", ExpressionAttributeNames={"#r": "response"},
        ExpressionAttributeValues={":r": {"M": {k: v for k, v in old.items()
                                                if k not in ("pk", "sk")}}})
    expected = {**first, "orderId": old_id}
    retry = checkout(client, cart, "pay")  # the cart is empty: read
    assert (retry.status_code, body(retry)) == (201, expected)
    add(client, cart, None, "grinder", 1)
    retry = checkout(client, cart, "pay")  # the transaction, cancelled by the record
    assert (retry.status_code, body(retry)) == (201, expected)
    assert quantities(client, cart) == {"grinder": 1}
    assert len(orders(dynamodb, cart)) == 1
