"""Follow-ups as real DynamoDB and Lambda would run them: aggregated, exact, never poisoned.

Each test drives the shop through its API, reads the real records back from
moto's stream and delivers them to the stream function (tests/functional/conftest.py).
"""

from __future__ import annotations

import json
import time

from chalicelib import runtime, table
from chalicelib.store.popularity import COUNTER_SHARDS
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import CONFLICTED, Faults
from tests.functional.conftest import request

TTL_PRINCIPAL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def in_carts(client):
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    return {p["id"]: p["inCarts"] for p in products if p["inCarts"]}


def status(client, cookie):
    return json.loads(request(client, "GET", "/api/cart/status", cookie).body)


def new_cart(client, product_id="kettle", quantity=1):
    response = request(client, "POST", "/api/cart/items", body=add_body(product_id, quantity))
    assert response.status_code == 201
    return cookie_from(response)


def cart_pk(cookie):
    return table.cart_pk(cookie.split("=", 1)[1].split(".")[0])


def expiries(dynamodb, cookie):
    return {i["sk"]["S"]: int(i["expiresAt"]["N"]) for i in dynamodb.query(
        TableName=TABLE_NAME, KeyConditionExpression="pk = :pk AND begins_with(sk, :l)",
        ExpressionAttributeValues={":pk": {"S": cart_pk(cookie)}, ":l": {"S": "LINE#"}},
    )["Items"]}


def writes_to(client_, operation):
    """The keys each call of `operation` writes, as the app sends them."""
    seen: list[list[tuple[str, str]]] = []

    def record(params, **_):
        actions = params.get("TransactItems") or [{"Put": params}]
        keys = []
        for action in actions:
            body = next(iter(action.values()))
            item = body.get("Key") or body.get("Item")
            keys.append((item["pk"]["S"], item["sk"]["S"]))
        seen.append(keys)

    client_.meta.events.register(f"provide-client-params.dynamodb.{operation}", record)
    return seen


def test_a_ttl_removal_never_renews_the_sibling_lines(client, cart, stream, dynamodb):
    stream.drain()
    # Both lines were last written 20 days ago: ten days left.
    ten_days = int(time.time()) + 10 * 24 * 3600
    for sk in ("LINE#espresso-cup", "LINE#kettle"):
        dynamodb.update_item(
            TableName=TABLE_NAME, Key={"pk": {"S": cart_pk(cart)}, "sk": {"S": sk}},
            UpdateExpression="SET expiresAt = :e",
            ExpressionAttributeValues={":e": {"N": str(ten_days)}})
    stream.read()
    # moto never expires items: delete one, and sign its REMOVE as the TTL service does.
    dynamodb.delete_item(TableName=TABLE_NAME,
                         Key={"pk": {"S": cart_pk(cart)}, "sk": {"S": "LINE#kettle"}})
    records = stream.read()
    for record in records:
        record["userIdentity"] = TTL_PRINCIPAL
    assert stream.deliver(records)["process_stream"] == {"batchItemFailures": []}
    stream.drain()
    assert expiries(dynamodb, cart) == {"LINE#espresso-cup": ten_days}
    assert status(client, cart)["itemCount"] == 2


def test_a_withdrawn_products_records_are_no_ops_not_poison(client, cart, stream, dynamodb):
    records = stream.read()
    dynamodb.delete_item(TableName=TABLE_NAME, Key={
        "pk": {"S": table.CATALOG_PK}, "sk": {"S": table.product_sk("kettle")}})
    assert stream.deliver(records)["process_stream"] == {"batchItemFailures": []}
    stream.drain()
    assert in_carts(client) == {"espresso-cup": 1}
    assert status(client, cart)["itemCount"] == 3


def test_a_summary_from_an_older_invocation_never_overwrites_a_newer_one(
        client, cart, stream):
    older = stream.read()
    newer: list = []

    def a_newer_invocation_lands_first():
        request(client, "POST", "/api/cart/items", cart, add_body("grinder", 1))
        newer.extend(stream.read())
        # It runs alone: the held, older invocation's client is busy.
        stream.deliver(older + newer, ("cart_summary",))

    with Faults(runtime.dynamodb_client()) as faults:
        # The older invocation read the lines; the newer one runs and writes
        # before the older one's summary put reaches the table.
        faults.before("TransactWriteItems", a_newer_invocation_lands_first)
        stream.deliver(older, ("cart_summary",))
    assert newer
    assert status(client, cart)["itemCount"] == 4


def test_popularity_writes_the_carts_whose_holdings_changed_in_one_transaction(
        client, stream):
    for _ in range(5):
        new_cart(client, "kettle")
    new_cart(client, "grinder")
    records = stream.read()
    transactions = writes_to(runtime.dynamodb_client(), "TransactWriteItems")
    assert stream.deliver(records, ("cart_summary",))["cart_summary"] == {
        "batchItemFailures": []}
    # The six summaries, and one counter shard's ADD per product (+5, +1).
    assert len(transactions) == 1
    assert [sk for _, sk in transactions[0]] == [table.SUMMARY_SK] * 6 + [
        "PRODUCT#grinder", "PRODUCT#kettle"]
    assert in_carts(client) == {"kettle": 5, "grinder": 1}


def test_no_partition_key_takes_every_counter_write(client, stream):
    transactions = writes_to(runtime.dynamodb_client(), "TransactWriteItems")
    for _ in range(12):
        new_cart(client, "kettle")
        stream.drain()
    counter_keys = {pk for keys in transactions for pk, sk in keys
                    if not pk.startswith("CART#")}
    # Each batch picks the shard by its own first sequence number: spread.
    assert len(counter_keys) > COUNTER_SHARDS // 4
    assert table.CATALOG_PK not in counter_keys
    assert in_carts(client) == {"kettle": 12}


def test_two_shards_updating_one_product_at_once_apply_exactly_without_a_retry(
        client, stream):
    first, second = new_cart(client, "kettle"), None
    batch_one = stream.read()
    second = new_cart(client, "kettle")
    batch_two = stream.read()
    with Faults(runtime.dynamodb_client()) as faults:
        # The other shard's transaction holds the counter: DynamoDB cancels ours.
        faults.fail("TransactWriteItems", CONFLICTED, times=2)
        results = [stream.deliver(batch, ("cart_summary",))["cart_summary"]
                   for batch in (batch_one, batch_two)]
    assert results == [{"batchItemFailures": []}] * 2
    assert len(faults.injected) == 2
    assert in_carts(client) == {"kettle": 2}
    assert first and second
