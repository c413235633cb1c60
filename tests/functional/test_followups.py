"""Stream follow-ups fed real records read back from moto's stream."""

from __future__ import annotations

import copy
import json

from chalicelib import runtime, table
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.conftest import request


def status(client, cookie):
    return json.loads(request(client, "GET", "/api/cart/status", cookie).body)


def in_carts(client, product_id):
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    return next(p["inCarts"] for p in products if p["id"] == product_id)


def new_cart(client, product_id="espresso-cup", quantity=1):
    response = request(client, "POST", "/api/cart/items", body=add_body(product_id, quantity))
    assert response.status_code == 201
    return cookie_from(response)


def test_popularity_counts_carts_not_quantities(client, stream):
    first = new_cart(client, "kettle", 5)
    new_cart(client, "kettle", 1)
    request(client, "POST", "/api/cart/items", first, add_body("kettle", 2))
    stream.drain()
    assert in_carts(client, "kettle") == 2
    request(client, "DELETE", "/api/cart/items/kettle", first)
    stream.drain()
    assert in_carts(client, "kettle") == 1


def test_a_replayed_batch_changes_nothing(client, cart, stream):
    records = stream.read()
    assert records
    stream.deliver(records)
    before = (status(client, cart), in_carts(client, "kettle"), in_carts(client, "espresso-cup"))
    results = stream.deliver(records)
    assert all(r == {"batchItemFailures": []} for r in results.values())
    after = (status(client, cart), in_carts(client, "kettle"), in_carts(client, "espresso-cup"))
    assert after == before
    assert before[0]["itemCount"] == 3 and before[1] == 1 and before[2] == 1


def test_a_batch_holding_a_record_twice_counts_it_once(client, cart, stream):
    records = stream.read()
    doubled = [r for record in records for r in (record, copy.deepcopy(record))]
    stream.deliver(doubled)
    stream.drain()
    assert in_carts(client, "kettle") == 1
    assert status(client, cart)["itemCount"] == 3


def test_an_old_batch_replayed_after_a_newer_one_does_not_resurrect_a_holder(
        client, cart, stream):
    old = stream.read()
    stream.deliver(old)
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    stream.drain()
    assert in_carts(client, "kettle") == 0
    stream.deliver(old)
    assert in_carts(client, "kettle") == 0


def test_a_poison_record_is_reported_alone_and_the_rest_applied(
        client, cart, stream, dynamodb):
    # A line whose quantity is not a number: no retry will ever read it.
    dynamodb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": table.cart_pk("f" * 32)}, "sk": {"S": table.line_sk("kettle")},
        "productId": {"S": "kettle"}, "quantity": {"S": "lots"},
    })
    records = stream.read()
    poison = [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == "CART#" + "f" * 32]
    assert len(poison) == 1
    results = stream.deliver(records)
    expected = {"batchItemFailures": [
        {"itemIdentifier": poison[0]["dynamodb"]["SequenceNumber"]}]}
    assert results["process_stream"] == expected
    assert status(client, cart)["itemCount"] == 3
    assert in_carts(client, "kettle") == 1


def test_a_ttl_removal_by_the_service_stops_counting_the_cart(client, cart, stream, dynamodb):
    stream.drain()
    assert in_carts(client, "kettle") == 1
    # moto never expires items: delete the line, then deliver the record the
    # way DynamoDB's TTL process signs it.
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    line = next(i for i in items if i["sk"]["S"] == "LINE#kettle")
    dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": line["pk"], "sk": line["sk"]})
    records = stream.read()
    for record in records:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    stream.deliver(records)
    assert in_carts(client, "kettle") == 0
    assert status(client, cart)["itemCount"] == 2


def test_a_stream_batch_touching_k_carts_writes_k_summaries(client, stream, dynamodb):
    cookies = [new_cart(client, "kettle") for _ in range(3)]
    for cookie in cookies:
        request(client, "POST", "/api/cart/items", cookie, add_body("grinder", 2))
    records = stream.read()
    writes = []

    def count(params, **_):
        if params["Item"]["sk"]["S"] == table.SUMMARY_SK:
            writes.append(params["Item"]["pk"]["S"])

    runtime.dynamodb_client().meta.events.register("provide-client-params.dynamodb.PutItem",
                                                    count)
    stream.deliver(records, ("cart_summary",))
    assert sorted(writes) == sorted(set(writes)) and len(writes) == 3
    assert all(status(client, c)["itemCount"] == 3 for c in cookies)


def holder(dynamodb, product_id):
    """The one holder mark of the product: it lives under the cart (CART#<id> HOLDER#<product>)."""
    items = [i for i in dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
             if i["sk"]["S"] == f"HOLDER#{product_id}"]
    assert len(items) == 1 and items[0]["pk"]["S"].startswith("CART#")
    return items[0]


def test_a_holder_mark_lives_as_long_as_the_cart_holds_the_product(client, cart, stream,
                                                                   dynamodb):
    stream.drain()
    assert holder(dynamodb, "kettle")["holds"] == {"BOOL": True}
    assert "expiresAt" not in holder(dynamodb, "kettle")
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    stream.drain()
    assert holder(dynamodb, "kettle")["holds"] == {"BOOL": False}
    assert "expiresAt" in holder(dynamodb, "kettle")
    assert in_carts(client, "kettle") == 0
