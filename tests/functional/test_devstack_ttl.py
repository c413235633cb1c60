"""Local TTL expiry (devstack/ttl.py): the moto server deletes what DynamoDB's TTL would.

moto itself never expires an item. These tests run the sweeper in this process
over moto and feed the records it leaves to the app's follow-ups, as the local
stack's stream runner does.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from chalicelib import table
from devstack import ttl
from tests.factories import TABLE_NAME
from tests.functional.conftest import request


def status(client: Any, cookie: str) -> dict[str, Any]:
    return dict(json.loads(request(client, "GET", "/api/cart/status", cookie).body))


def in_carts(client: Any, product_id: str) -> int:
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    return int(next(p["inCarts"] for p in products if p["id"] == product_id))


def put(dynamodb: Any, sk: str, expires: Any) -> None:
    dynamodb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": "T"}, "sk": {"S": sk}, table.TTL_ATTRIBUTE: expires})


def keys(dynamodb: Any) -> set[str]:
    items = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return {item["sk"]["S"] for item in items if item["pk"]["S"] == "T"}


def test_only_items_whose_expiry_is_past_are_deleted_as_aws_would(
        dynamodb: Any, stream_arn: str) -> None:
    now = time.time()
    put(dynamodb, "past", {"N": str(int(now) - 1)})
    put(dynamodb, "future", {"N": str(int(now) + 3600)})
    put(dynamodb, "not-a-number", {"S": str(int(now) - 1)})
    put(dynamodb, "six-years-ago", {"N": str(int(now) - 6 * 365 * 24 * 3600)})

    deleted, _ = ttl.sweep(now)

    assert deleted == 1
    assert keys(dynamodb) == {"future", "not-a-number", "six-years-ago"}


def test_an_expiry_reaches_the_follow_ups_as_a_removal_by_the_ttl_service(
        client: Any, cart: str, stream: Any, dynamodb: Any) -> None:
    stream.drain()
    assert in_carts(client, "kettle") == 1 and status(client, cart)["itemCount"] == 3
    line = next(i for i in dynamodb.scan(TableName=TABLE_NAME)["Items"]
                if i["sk"]["S"] == "LINE#kettle")
    now = int(time.time())
    # The kettle line's 30 days are up (and nothing else's).
    dynamodb.update_item(TableName=TABLE_NAME, Key={"pk": line["pk"], "sk": line["sk"]},
                         UpdateExpression="SET expiresAt = :past",
                         ExpressionAttributeValues={":past": {"N": str(now - 1)}})
    stream.drain()

    deleted, _ = ttl.sweep(now)
    records = stream.read()

    assert deleted == 1
    assert [r["userIdentity"] for r in records] == [
        {"type": "Service", "principalId": "dynamodb.amazonaws.com"}]
    stream.deliver(records)
    stream.drain()
    assert in_carts(client, "kettle") == 0  # the expired line no longer holds it
    assert status(client, cart)["itemCount"] == 2


def test_the_sweeper_expires_items_on_its_own_every_interval(
        dynamodb: Any, stream_arn: str) -> None:
    sweeper = ttl.Sweeper(threading.Lock(), interval=0.05)
    put(dynamodb, "due", {"N": str(int(time.time()) + 1)})
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while "due" in keys(dynamodb) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sweeper.stop()
    assert "due" not in keys(dynamodb)


def test_getrecords_identity_is_spelled_as_lambda_spells_it() -> None:
    from devstack.streams import lambda_record

    identity = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    record = {"eventID": "1", "eventName": "REMOVE", "dynamodb": {}, "userIdentity": identity}
    assert lambda_record(record, "arn")["userIdentity"] == {
        "type": "Service", "principalId": "dynamodb.amazonaws.com"}
