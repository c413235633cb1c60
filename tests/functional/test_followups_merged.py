"""The stream merges a batch's counted writes: the carts whose holdings changed go in
as few transactions as fit, with one counter ADD per product of their net change.

Real records read back from moto's stream, delivered to the follow-up
(tests/functional/conftest.py); the counts are judged against the summaries.
"""

from __future__ import annotations

import json

from chalicelib import runtime, table
from chalicelib.store.codec import TRANSACTION_ACTIONS
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import Faults
from tests.functional.conftest import request


def new_cart(client, *products):
    cookie = None
    for product_id in products:
        response = request(client, "POST", "/api/cart/items", cookie, add_body(product_id, 1))
        assert response.status_code in (200, 201)
        cookie = cookie or cookie_from(response)
    return cookie


def counters(dynamodb):
    """Each product's count summed over its shards, straight from the table."""
    found: dict[str, int] = {}
    for item in dynamodb.scan(TableName=TABLE_NAME)["Items"]:
        if item["pk"]["S"].startswith("POPULARITY#"):
            product_id = item["sk"]["S"].removeprefix(table.PRODUCT_PREFIX)
            found[product_id] = found.get(product_id, 0) + int(item["inCarts"]["N"])
    return {product_id: count for product_id, count in found.items() if count}


def holders(dynamodb):
    """How many summaries hold each product: what the counts must equal."""
    found: dict[str, int] = {}
    for item in dynamodb.scan(TableName=TABLE_NAME)["Items"]:
        if item["sk"]["S"] == table.SUMMARY_SK:
            for product_id in item.get("holds", {}).get("M", {}):
                found[product_id] = found.get(product_id, 0) + 1
    return found


def transactions(client_):
    """The actions of each TransactWriteItems the app sends: (kind, pk, sk)."""
    seen: list[list[tuple[str, str, str]]] = []

    def record(params, **_):
        calls = []
        for action in params["TransactItems"]:
            kind, body = next(iter(action.items()))
            item = body.get("Key") or body.get("Item")
            calls.append((kind, item["pk"]["S"], item["sk"]["S"]))
        seen.append(calls)

    client_.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", record)
    return seen


def adds(calls):
    return sorted(sk for kind, pk, sk in calls if pk.startswith("POPULARITY#"))


def test_a_batch_of_carts_sharing_products_adds_once_per_product_and_replays_as_nothing(
        client, stream, dynamodb):
    leaving = new_cart(client, "espresso-cup")
    stream.drain()
    for _ in range(4):
        new_cart(client, "kettle", "grinder")
    new_cart(client, "kettle")
    new_cart(client, "espresso-cup")  # one cart takes it up ...
    request(client, "DELETE", "/api/cart/items/espresso-cup", leaving)  # ... one lets it go
    records = stream.read()
    sent = transactions(runtime.dynamodb_client())
    assert stream.deliver(records, ("cart_summary",))["cart_summary"] == {
        "batchItemFailures": []}
    assert counters(dynamodb) == holders(dynamodb) == {"kettle": 5, "grinder": 4,
                                                       "espresso-cup": 1}
    # Seven summaries, one ADD each for kettle (+5) and grinder (+4); espresso-cup's
    # +1 and -1 cancel out.
    assert len(sent) == 1
    assert sum(kind == "Put" for kind, _, _ in sent[0]) == 7
    assert adds(sent[0]) == ["PRODUCT#grinder", "PRODUCT#kettle"]
    assert len(sent[0]) == 9
    sent.clear()
    assert stream.deliver(records, ("cart_summary",))["cart_summary"] == {
        "batchItemFailures": []}
    assert sent == []
    assert counters(dynamodb) == holders(dynamodb)


def test_a_batch_with_more_carts_than_a_transaction_holds_uses_as_few_as_fit(
        client, stream, dynamodb):
    for _ in range(TRANSACTION_ACTIONS + 5):
        new_cart(client, "kettle")
    sent = transactions(runtime.dynamodb_client())
    stream.drain()
    assert [len(calls) for calls in sent] == [TRANSACTION_ACTIONS, 7]
    assert [adds(calls) for calls in sent] == [["PRODUCT#kettle"]] * 2
    assert counters(dynamodb) == {"kettle": TRANSACTION_ACTIONS + 5}


def test_a_summary_that_moved_meanwhile_is_read_again_and_the_rest_still_lands(
        client, stream, dynamodb):
    racer = new_cart(client, "kettle")
    new_cart(client, "kettle", "grinder")
    new_cart(client, "grinder")
    first = stream.read()
    request(client, "POST", "/api/cart/items", racer, add_body("grinder", 1))
    second = stream.read()
    racer_pk = table.cart_pk(racer.split("=", 1)[1].split(".")[0])
    sent = transactions(runtime.dynamodb_client())

    def the_racer_lands_first():
        # Another invocation (the racer's newer records) writes its summary between
        # this one's read and its write.
        mine = [r for r in first + second if r["dynamodb"]["Keys"]["pk"]["S"] == racer_pk]
        assert stream.deliver(mine, ("cart_summary",))["cart_summary"] == {
            "batchItemFailures": []}

    with Faults(runtime.dynamodb_client()) as faults:
        faults.before("TransactWriteItems", the_racer_lands_first)
        assert stream.deliver(first, ("cart_summary",))["cart_summary"] == {
            "batchItemFailures": []}
    # Cancelled with three carts; the racer's own write; the two others, still merged.
    # The racer, read again, was written already: nothing more.
    puts = [sorted(pk for kind, pk, _ in calls if kind == "Put") for calls in sent]
    carts = sorted({pk for r in first
                    if (pk := r["dynamodb"]["Keys"]["pk"]["S"]).startswith("CART#")})
    assert puts == [carts, [racer_pk], [pk for pk in carts if pk != racer_pk]]
    assert adds(sent[2]) == ["PRODUCT#grinder", "PRODUCT#kettle"]
    assert counters(dynamodb) == holders(dynamodb) == {"kettle": 2, "grinder": 3}
    stream.drain()
    assert counters(dynamodb) == holders(dynamodb) == {"kettle": 2, "grinder": 3}


def test_a_counter_conflict_moves_the_merged_add_to_another_shard(client, stream, dynamodb):
    for _ in range(3):
        new_cart(client, "kettle")
    records = stream.read()
    sent = transactions(runtime.dynamodb_client())
    with Faults(runtime.dynamodb_client()) as faults:
        faults.throttle("POPULARITY#", 1)
        assert stream.deliver(records, ("cart_summary",))["cart_summary"] == {
            "batchItemFailures": []}
    shards = [next(pk for kind, pk, _ in calls if pk.startswith("POPULARITY#"))
              for calls in sent]
    assert len(sent) == 2 and shards[0] != shards[1]
    assert counters(dynamodb) == {"kettle": 3}


def test_a_batch_the_store_refuses_fails_from_its_first_cart_and_lands_when_delivered_again(
        client, stream, dynamodb):
    for _ in range(3):
        new_cart(client, "kettle")
    records = stream.read()
    with Faults(runtime.dynamodb_client()) as faults:
        faults.throttle("POPULARITY#", 10)
        result = stream.deliver(records, ("cart_summary",))["cart_summary"]
    sequences = sorted((r["dynamodb"]["SequenceNumber"] for r in records
                        if r["dynamodb"]["Keys"]["sk"]["S"].startswith("LINE#")), key=int)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == sequences
    assert counters(dynamodb) == {} and holders(dynamodb) == {}
    assert stream.deliver(records, ("cart_summary",))["cart_summary"] == {
        "batchItemFailures": []}
    assert counters(dynamodb) == holders(dynamodb) == {"kettle": 3}


def test_a_cart_the_store_refuses_fails_alone_and_the_rest_of_its_transaction_lands(
        client, stream, dynamodb):
    refused = new_cart(client, "kettle", "grinder")
    for _ in range(3):
        new_cart(client, "kettle")
    records = stream.read()
    refused_pk = table.cart_pk(refused.split("=", 1)[1].split(".")[0])

    class Answer:
        status_code = 400

    def refuse(params, **_):
        # DynamoDB refusing the request itself (a ValidationException) whenever it
        # holds this cart's summary: a bug or a limit, never worth a retry.
        actions = json.loads(params["body"])["TransactItems"]
        if any(next(iter(a.values())).get("Item", {}).get("pk", {}).get("S") == refused_pk
               for a in actions):
            return Answer(), {"Error": {"Code": "ValidationException", "Message": "no"},
                              "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    events = runtime.dynamodb_client().meta.events
    events.register("before-call.dynamodb.TransactWriteItems", refuse)
    try:
        result = stream.deliver(records, ("cart_summary",))["cart_summary"]
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", refuse)
    mine = sorted((r["dynamodb"]["SequenceNumber"] for r in records
                   if r["dynamodb"]["Keys"]["pk"]["S"] == refused_pk
                   and r["dynamodb"]["Keys"]["sk"]["S"].startswith("LINE#")), key=int)
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == mine
    assert counters(dynamodb) == holders(dynamodb) == {"kettle": 3}
    stream.deliver(records, ("cart_summary",))
    assert counters(dynamodb) == holders(dynamodb) == {"kettle": 4, "grinder": 1}
