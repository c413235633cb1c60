"""Expired items are invisible, and each cart operation is one DynamoDB request."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib import runtime, table
from chalicelib.store.popularity import COUNTER_SHARDS
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.conftest import request


def expire_everything_in(dynamodb, cart_cookie_owner_pk):
    items = dynamodb.query(
        TableName=TABLE_NAME, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": cart_cookie_owner_pk}})["Items"]
    for item in items:
        dynamodb.update_item(
            TableName=TABLE_NAME, Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression="SET expiresAt = :past",
            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})


def only_cart_pk(dynamodb):
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    return next(i["pk"]["S"] for i in items if i["pk"]["S"].startswith(table.CART_PREFIX))


def test_reads_ignore_items_whose_ttl_has_passed(client, cart, stream, dynamodb):
    stream.drain()
    expire_everything_in(dynamodb, only_cart_pk(dynamodb))
    shown = json.loads(request(client, "GET", "/api/cart", cart).body)
    assert (shown["items"], shown["itemCount"]) == ([], 0)
    assert json.loads(request(client, "GET", "/api/cart/status", cart).body)["itemCount"] == 0
    assert request(client, "POST", "/api/cart/checkout", cart).status_code == 409
    assert request(client, "PUT", "/api/cart/items/kettle", cart,
                   {"quantity": 2}).status_code == 404


def test_adding_to_an_expired_line_starts_it_afresh(client, cart, dynamodb):
    expire_everything_in(dynamodb, only_cart_pk(dynamodb))
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 4))
    assert response.status_code == 201
    assert json.loads(response.body)["quantity"] == 4


@pytest.fixture
def calls(client, cart):
    """The DynamoDB operations the app makes, recorded as they happen."""
    made: list[str] = []
    request(client, "POST", "/api/cart/items", cart, add_body())  # warm the catalog cache

    def record(model, **_):
        made.append(model.name)

    runtime.dynamodb_client().meta.events.register("before-call.dynamodb", record)
    return made


@pytest.mark.parametrize("method, path, payload, expected", [
    # A write is one transaction (at most once: its ClientRequestToken); an add
    # reads its line first to pick that write, an add or a set reads the line it
    # answers with (store/carts.py).
    ("POST", "/api/cart/items", add_body("kettle", 1),
     ["GetItem", "TransactWriteItems", "GetItem"]),
    ("PUT", "/api/cart/items/kettle", {"quantity": 3}, ["TransactWriteItems", "GetItem"]),
    ("PUT", "/api/cart/items/kettle", {"quantity": 0}, ["TransactWriteItems"]),
    ("DELETE", "/api/cart/items/kettle", None, ["TransactWriteItems"]),
    # The lines, then their products and stock at today's prices (catalog.py).
    ("GET", "/api/cart", None, ["Query", "BatchGetItem"]),
    ("GET", "/api/cart/status", None, ["GetItem"]),
    # The catalog was cached by the add; the first reader of the fleet finds no
    # counts snapshot: it takes the lease, sums the shards, writes the snapshot.
    ("GET", "/api/products", None,
     ["Query", "UpdateItem", *["Query"] * COUNTER_SHARDS, "PutItem"]),
    ("POST", "/api/cart/checkout", None, ["Query", "TransactWriteItems"]),
])
def test_each_cart_operation_makes_the_requests_its_store_documents(
        client, cart, calls, method, path, payload, expected):
    response = request(client, method, path, cart, payload)
    assert response.status_code < 300
    assert calls == expected


def test_the_shop_page_and_the_product_list_never_query_the_catalog_when_warm(client, cart):
    request(client, "GET", "/api/products")
    keys: list[str] = []

    def record(params, **_):
        keys.append(params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", ""))

    runtime.dynamodb_client().meta.events.register("provide-client-params.dynamodb.Query",
                                                    record)
    for path in ("/api/products", "/", "/api/products"):
        assert request(client, "GET", path, cart).status_code == 200
    # Names and prices come from the process's cache (a minute); the counts at
    # most once a second, so a slow box may see one round of counter Queries.
    assert table.CATALOG_PK not in keys
    assert {k for k in keys if not k.startswith(table.CART_PREFIX)} <= {
        table.COUNTS_PK, *(table.counter_pk(n) for n in range(COUNTER_SHARDS))}


def test_reading_an_order_is_one_get_item(client, cart, calls):
    order_id = json.loads(request(client, "POST", "/api/cart/checkout", cart).body)["orderId"]
    calls.clear()
    assert request(client, "GET", f"/api/orders/{order_id}", cart).status_code == 200
    assert calls == ["GetItem"]


def test_a_new_visitor_costs_no_request_for_an_empty_cart(client, calls):
    for path in ("/api/cart", "/api/cart/status"):
        assert request(client, "GET", path).status_code == 200
    assert calls == []


def test_the_first_add_creates_a_cart_with_a_fresh_id(client, cart):
    other = cookie_from(request(client, "POST", "/api/cart/items", body=add_body()))
    assert other.split(".")[0] != cart.split(".")[0]


def test_a_write_to_any_line_keeps_the_whole_cart_alive(client, cart, stream, dynamodb):
    stream.drain()
    pk = only_cart_pk(dynamodb)
    twenty_days_ago_expiry = int(time.time()) + 10 * 24 * 3600
    dynamodb.update_item(
        TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": "LINE#espresso-cup"}},
        UpdateExpression="SET expiresAt = :e",
        ExpressionAttributeValues={":e": {"N": str(twenty_days_ago_expiry)}})
    request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    stream.drain()
    # The summary counts products: no TTL, but it shows for as long as the cart lives.
    items = {i["sk"]["S"]: int(i.get("cartExpiresAt", i.get("expiresAt"))["N"])
             for i in dynamodb.query(
                 TableName=TABLE_NAME, KeyConditionExpression="pk = :pk",
                 ExpressionAttributeValues={":pk": {"S": pk}})["Items"]}
    assert items["LINE#espresso-cup"] == items["LINE#kettle"] == items["SUMMARY"]
    assert items["LINE#kettle"] > time.time() + 29 * 24 * 3600


def test_a_removal_restarts_the_carts_30_days(client, cart, stream, dynamodb):
    stream.drain()
    pk = only_cart_pk(dynamodb)
    dynamodb.update_item(
        TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": "LINE#espresso-cup"}},
        UpdateExpression="SET expiresAt = :e",
        ExpressionAttributeValues={":e": {"N": str(int(time.time()) + 10 * 24 * 3600)}})
    stream.read()  # as if the line was last written 20 days ago: no follow-up sees it
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    stream.drain()
    line = dynamodb.get_item(TableName=TABLE_NAME,
                             Key={"pk": {"S": pk}, "sk": {"S": "LINE#espresso-cup"}})["Item"]
    assert int(line["expiresAt"]["N"]) > time.time() + 29 * 24 * 3600
