"""Races, forced: one request's DynamoDB call is held while another request completes.

`Faults.before(op, hook)` runs the hook just before the held call reaches the
table, `Faults.after(op, hook)` just after it was applied and before its
answer returns: the two windows in which a concurrent writer can land. The
hooks run the other request to completion, so each interleaving is exact
and repeatable, not a matter of thread timing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from app import app
from chalicelib import runtime, table
from tests.factories import TABLE_NAME, add_body
from tests.functional.botocore_faults import Faults
from tests.functional.conftest import request


def body(response):
    return json.loads(response.body)


def quantities(client, cookie):
    return {i["productId"]: i["quantity"]
            for i in body(request(client, "GET", "/api/cart", cookie))["items"]}


def ordered(order):
    return {i["productId"]: i["quantity"] for i in order["items"]}


def cart_pk(cookie):
    return table.cart_pk(cookie.split("=", 1)[1].split(".")[0])


def items(dynamodb, cookie, prefix):
    return [i for i in dynamodb.query(
        TableName=TABLE_NAME, KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": cart_pk(cookie)}, ":p": {"S": prefix}},
    )["Items"]]


@pytest.fixture
def race(client):
    """Hold a call of the app's client and let another request run meanwhile."""
    with Faults(runtime.dynamodb_client()) as faults:
        yield Race(client, faults)


class Race:
    def __init__(self, client, faults: Faults) -> None:
        self.client = client
        self.faults = faults
        self.answers: list = []

    def _run(self, method: str, path: str, cookie: str | None, payload=None,
             headers=None) -> Callable[[], None]:
        def hook() -> None:
            # chalice.test.Client shares one app.current_request: keep the held one's.
            held = app.current_request
            try:
                self.answers.append(request(self.client, method, path, cookie, payload, headers))
            finally:
                app.current_request = held
        return hook

    def before(self, operation: str, *other) -> None:
        self.faults.before(operation, self._run(*other))

    def after(self, operation: str, *other) -> None:
        self.faults.after(operation, self._run(*other))


# -- checkout against adds and sets -----------------------------------------------------

def test_an_add_to_an_ordered_line_during_checkout_is_ordered_too(client, cart, race):
    race.before("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("kettle", 1))
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    assert race.answers[0].status_code == 201
    assert ordered(order) == {"espresso-cup": 2, "kettle": 2}
    assert quantities(client, cart) == {}
    # The checkout's, the add's (a transaction too), the checkout's again.
    assert race.faults.attempts.count("TransactWriteItems") == 3


def test_a_new_product_added_during_checkout_stays_in_the_cart(client, cart, race):
    race.before("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("grinder", 1))
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    assert ordered(order) == {"espresso-cup": 2, "kettle": 1}
    assert quantities(client, cart) == {"grinder": 1}


def test_an_add_landing_right_after_checkout_stays_in_the_cart(client, cart, race):
    race.after("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("kettle", 1))
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    assert ordered(order) == {"espresso-cup": 2, "kettle": 1}
    assert quantities(client, cart) == {"kettle": 1}


def test_a_quantity_set_during_checkout_is_what_gets_ordered(client, cart, race):
    race.before("TransactWriteItems", "PUT", "/api/cart/items/kettle", cart, {"quantity": 5})
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    assert ordered(order) == {"espresso-cup": 2, "kettle": 5}
    assert quantities(client, cart) == {}


def test_two_racing_checkouts_place_one_order(client, cart, race, dynamodb):
    race.before("TransactWriteItems", "POST", "/api/cart/checkout", cart)
    held = request(client, "POST", "/api/cart/checkout", cart)
    assert race.answers[0].status_code == 201
    assert (held.status_code, body(held)["Code"]) == (409, "ConflictError")
    orders = items(dynamodb, cart, "ORDER#")
    assert len(orders) == 1
    assert ordered(body(race.answers[0])) == {"espresso-cup": 2, "kettle": 1}


# -- set, remove and add against each other ------------------------------------------

def test_a_remove_landing_before_a_set_makes_the_set_404_and_revives_nothing(
        client, cart, race):
    race.before("TransactWriteItems", "DELETE", "/api/cart/items/kettle", cart)
    response = request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 7})
    assert response.status_code == 404
    assert quantities(client, cart) == {"espresso-cup": 2}


def test_a_set_landing_before_a_remove_is_removed(client, cart, race):
    race.before("TransactWriteItems", "PUT", "/api/cart/items/kettle", cart, {"quantity": 7})
    assert request(client, "DELETE", "/api/cart/items/kettle", cart).status_code == 204
    assert race.answers[0].status_code == 200
    assert quantities(client, cart) == {"espresso-cup": 2}


def test_a_remove_landing_before_an_add_leaves_only_the_add(client, cart, race):
    race.before("TransactWriteItems", "DELETE", "/api/cart/items/kettle", cart)
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 3))
    assert body(response)["quantity"] == 3
    assert quantities(client, cart) == {"espresso-cup": 2, "kettle": 3}


def test_two_adds_racing_for_the_last_unit_let_one_through(client, cart, race):
    request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 98})
    race.before("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("kettle", 1))
    held = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    assert race.answers[0].status_code == 201
    assert held.status_code == 409
    assert quantities(client, cart)["kettle"] == 99


# -- idempotent writes in flight ---------------------------------------------------------

def test_a_duplicate_keyed_add_in_flight_applies_once_and_both_answer_alike(
        client, cart, race):
    key = {"Idempotency-Key": "twice"}
    race.before("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("kettle", 2), key)
    held = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 2), key)
    first = race.answers[0]
    assert (held.status_code, body(held)) == (first.status_code, body(first))
    assert body(held)["quantity"] == 3
    assert quantities(client, cart)["kettle"] == 3


def test_a_keyed_add_racing_another_on_its_line_retries_once_on_top(client, cart, race):
    race.before("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("kettle", 1))
    held = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 2),
                   {"Idempotency-Key": "k"})
    assert body(held)["quantity"] == 4
    # The held add's read (the line is there, 1) and its transaction (to 3, as read),
    # held while the racing add reads, writes and reads. The held transaction is
    # cancelled (the line is 2 now), so the held add reads again and adds on top,
    # whatever is there (no retry after that), then reads the line and writes its
    # answer to its record.
    assert race.faults.attempts == [
        "GetItem", "TransactWriteItems", "GetItem", "TransactWriteItems", "GetItem",
        "GetItem", "TransactWriteItems", "GetItem", "UpdateItem"]
    assert quantities(client, cart)["kettle"] == 4
    # The record holds that answer: a retry with the key gets it, adding nothing.
    again = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 2),
                    {"Idempotency-Key": "k"})
    assert (again.status_code, body(again)["quantity"]) == (201, 4)
    assert quantities(client, cart)["kettle"] == 4


def test_a_duplicate_keyed_checkout_in_flight_places_one_order(client, cart, race, dynamodb):
    key = {"Idempotency-Key": "pay"}
    race.before("TransactWriteItems", "POST", "/api/cart/checkout", cart, None, key)
    held = request(client, "POST", "/api/cart/checkout", cart, headers=key)
    assert (held.status_code, body(held)) == (201, body(race.answers[0]))
    assert len(items(dynamodb, cart, "ORDER#")) == 1


# -- stream follow-ups against the writes they follow ------------------------------------

def test_an_add_landing_while_the_summary_is_computed_is_counted_once_its_record_arrives(
        client, cart, stream, race):
    records = stream.read()
    # The cart's first summary starts counting its products: a transaction.
    race.before("TransactWriteItems", "POST", "/api/cart/items", cart, add_body("kettle", 1))
    stream.deliver(records, ("cart_summary",))
    status = body(request(client, "GET", "/api/cart/status", cart))
    assert status["itemCount"] == 3  # the summary of the lines it read
    stream.drain()
    status = body(request(client, "GET", "/api/cart/status", cart))
    assert (status["itemCount"], status["subtotalCents"]) == (4, 14200)


def test_a_line_renewal_racing_checkout_does_not_revive_the_line(
        client, cart, stream, race, dynamodb):
    stream.drain()
    lagging = int(time.time()) + 10 * 24 * 3600
    dynamodb.update_item(
        TableName=TABLE_NAME, Key={"pk": {"S": cart_pk(cart)}, "sk": {"S": "LINE#espresso-cup"}},
        UpdateExpression="SET expiresAt = :e",
        ExpressionAttributeValues={":e": {"N": str(lagging)}})
    request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    records = stream.read()
    race.before("UpdateItem", "POST", "/api/cart/checkout", cart)  # the renewal is held
    stream.deliver(records, ("cart_summary",))
    assert race.answers[0].status_code == 201
    assert items(dynamodb, cart, "LINE#") == []
    stream.drain()
    assert body(request(client, "GET", "/api/cart/status", cart))["itemCount"] == 0


def test_every_mutating_route_is_one_transaction(client, cart, race):
    # The race tests above hold exactly these calls; nothing else writes.
    routes = [
        ("POST", "/api/cart/items", add_body("kettle", 1), None,
         ["GetItem", "TransactWriteItems", "GetItem"]),
        ("PUT", "/api/cart/items/kettle", {"quantity": 2}, None,
         ["TransactWriteItems", "GetItem"]),
        ("DELETE", "/api/cart/items/kettle", None, None, ["TransactWriteItems"]),
        # The line was just removed: the add reads none, then creates it and
        # counts it in the header (and Puts its key's record), in one transaction.
        ("POST", "/api/cart/items", add_body("kettle", 1), {"Idempotency-Key": "a"},
         ["GetItem", "TransactWriteItems"]),
        ("POST", "/api/cart/checkout", None, None, ["Query", "TransactWriteItems"]),
    ]
    for method, path, payload, headers, expected in routes:
        race.faults.attempts.clear()
        response = request(client, method, path, cart, payload, headers)
        assert response.status_code < 300, (path, response.body)
        assert race.faults.attempts == expected, path
