"""Stream follow-ups fed real records read back from moto's stream."""

from __future__ import annotations

import copy
import json

from chalicelib import runtime, table
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import CONFLICTED, Faults
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

    def put(params, **_):
        if params["Item"]["sk"]["S"] == table.SUMMARY_SK:
            writes.append(params["Item"]["pk"]["S"])

    def transact(params, **_):
        for action in params["TransactItems"]:
            if "Put" in action:
                put(action["Put"])

    events = runtime.dynamodb_client().meta.events
    events.register("provide-client-params.dynamodb.PutItem", put)
    events.register("provide-client-params.dynamodb.TransactWriteItems", transact)
    stream.deliver(records, ("cart_summary",))
    assert sorted(writes) == sorted(set(writes)) and len(writes) == 3
    assert all(status(client, c)["itemCount"] == 3 for c in cookies)


def summary_item(dynamodb, cookie):
    return dynamodb.get_item(TableName=TABLE_NAME, Key={
        "pk": {"S": cart_pk(cookie)}, "sk": {"S": table.SUMMARY_SK}})["Item"]


def cart_pk(cookie):
    return table.cart_pk(cookie.split("=", 1)[1].split(".")[0])


def test_the_summary_counts_what_the_cart_holds_and_expires_only_once_it_holds_nothing(
        client, cart, stream, dynamodb):
    stream.drain()
    item = summary_item(dynamodb, cart)
    assert set(item["holds"]["M"]) == {"espresso-cup", "kettle"}
    assert "expiresAt" not in item and "cartExpiresAt" in item
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    request(client, "DELETE", "/api/cart/items/espresso-cup", cart)
    stream.drain()
    item = summary_item(dynamodb, cart)
    assert item["holds"] == {"M": {}} and "expiresAt" in item
    assert (in_carts(client, "kettle"), in_carts(client, "espresso-cup")) == (0, 0)
    assert not [i for i in dynamodb.scan(TableName=TABLE_NAME)["Items"]
                if i["sk"]["S"].startswith(table.HOLDER_PREFIX)]


def test_a_batch_whose_counts_could_not_be_written_is_exact_when_delivered_again(
        client, cart, stream):
    records = stream.read()
    with Faults(runtime.dynamodb_client()) as faults:
        faults.always("TransactWriteItems", CONFLICTED)
        results = stream.deliver(records)
    line_records = sorted((r["dynamodb"]["SequenceNumber"] for r in records
                           if r["dynamodb"]["Keys"]["sk"]["S"].startswith("LINE#")), key=int)
    assert results["process_stream"] == {"batchItemFailures": [
        {"itemIdentifier": line_records[0]}]}
    assert (in_carts(client, "kettle"), status(client, cart)["itemCount"]) == (0, 0)
    stream.deliver(records)
    stream.deliver(records)
    assert (in_carts(client, "kettle"), in_carts(client, "espresso-cup")) == (1, 1)
    assert status(client, cart)["itemCount"] == 3


def test_two_invocations_racing_on_one_cart_count_it_once(client, cart, stream):
    first = stream.read()
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    second = stream.read()
    ran = []

    def the_other_lands_first():
        # The second invocation reads and writes between the first's reads and its write.
        ran.append(stream.deliver(first + second, ("cart_summary",)))

    with Faults(runtime.dynamodb_client()) as faults:
        faults.before("TransactWriteItems", the_other_lands_first)
        assert stream.deliver(first, ("cart_summary",))["cart_summary"] == {
            "batchItemFailures": []}
    assert ran == [{"cart_summary": {"batchItemFailures": []}}]
    stream.deliver(first + second)
    assert (in_carts(client, "kettle"), in_carts(client, "espresso-cup")) == (0, 1)
    assert status(client, cart)["itemCount"] == 2


def as_the_earlier_code_left_it(dynamodb, cart: str, marks: dict[str, bool]) -> None:
    """A summary without `holds`, and a holder mark per product (held or let go)."""
    pk = cart_pk(cart)
    dynamodb.update_item(TableName=TABLE_NAME,
                         Key={"pk": {"S": pk}, "sk": {"S": table.SUMMARY_SK}},
                         UpdateExpression="REMOVE holds")
    for product_id, holds in marks.items():
        dynamodb.put_item(TableName=TABLE_NAME, Item={
            "pk": {"S": pk}, "sk": {"S": table.HOLDER_PREFIX + product_id},
            "holds": {"BOOL": holds}, "seq": {"S": "0" * 40}})


def test_a_cart_counted_by_holder_marks_moves_to_its_summary_and_counts_nothing_twice(
        client, cart, stream, dynamodb):
    stream.drain()
    # As the earlier code left it, the counts carrying the marks that hold.
    as_the_earlier_code_left_it(dynamodb, cart,
                                {"espresso-cup": True, "kettle": True, "grinder": False})
    request(client, "DELETE", "/api/cart/items/kettle", cart)
    request(client, "POST", "/api/cart/items", cart, add_body("grinder", 1))
    stream.drain()
    assert (in_carts(client, "kettle"), in_carts(client, "espresso-cup"),
            in_carts(client, "grinder")) == (0, 1, 1)
    assert set(summary_item(dynamodb, cart)["holds"]["M"]) == {"espresso-cup", "grinder"}
    marks = {i["sk"]["S"] for i in dynamodb.scan(TableName=TABLE_NAME)["Items"]
             if i["sk"]["S"].startswith(table.HOLDER_PREFIX)}
    assert marks == {table.HOLDER_PREFIX + "grinder"}  # let go: its TTL takes it
    request(client, "POST", "/api/cart/items", cart, add_body("grinder", 1))
    stream.drain()
    assert in_carts(client, "grinder") == 1


def test_a_migrated_cart_whose_holdings_did_not_change_still_drops_its_marks(
        client, cart, stream, dynamodb):
    stream.drain()
    as_the_earlier_code_left_it(dynamodb, cart, {"espresso-cup": True, "kettle": True})
    request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    stream.drain()
    assert (in_carts(client, "kettle"), in_carts(client, "espresso-cup")) == (1, 1)
    assert not [i for i in dynamodb.scan(TableName=TABLE_NAME)["Items"]
                if i["sk"]["S"].startswith(table.HOLDER_PREFIX)]


def test_a_summary_that_would_not_change_is_not_written(client, cart, stream, dynamodb):
    # The stream renews a line that lags its cart's expiry (an UpdateItem of expiresAt
    # alone): the cart's totals, stamp and expiry stay as they were, so neither that
    # change nor the renewal's own record rewrites the summary.
    stream.drain()
    before = summary_item(dynamodb, cart)
    line_key = {"pk": {"S": cart_pk(cart)}, "sk": {"S": table.line_sk("kettle")}}
    lagging = int(before["cartExpiresAt"]["N"]) - 7200
    dynamodb.update_item(TableName=TABLE_NAME, Key=line_key,
                         UpdateExpression="SET expiresAt = :e",
                         ExpressionAttributeValues={":e": {"N": str(lagging)}})
    summary_puts = []

    def put(params, **_):
        if params["Item"]["sk"]["S"] == table.SUMMARY_SK:
            summary_puts.append(params["Item"])

    events = runtime.dynamodb_client().meta.events
    events.register("provide-client-params.dynamodb.PutItem", put)
    try:
        delivered = stream.drain()
    finally:
        events.unregister("provide-client-params.dynamodb.PutItem", put)
    assert delivered  # the lagging line's record, then the renewal's
    renewed = dynamodb.get_item(TableName=TABLE_NAME, Key=line_key)["Item"]
    assert renewed["expiresAt"] == before["cartExpiresAt"]
    assert summary_puts == []
    assert summary_item(dynamodb, cart) == before
    assert status(client, cart)["itemCount"] == 3
