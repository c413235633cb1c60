"""The moto server's patches that keep a day-long local session flat (devstack/moto_memory.py).

Each test applies the patch in this process (undone after it) and drives moto
through boto3, as the local stack's clients do. The live figure (RSS over a
shopping session) is tests/e2e/test_laptop_day.py and `make bench`.
"""

from __future__ import annotations

import datetime
import tracemalloc
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack import moto_memory
from devstack.streams import StreamReader
from tests.factories import TABLE_NAME


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every patch the moto server applies, for one test, undone after it."""
    from moto.core.common_models import BaseModel
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    monkeypatch.setattr(Table, "query", Table.query)
    monkeypatch.setattr(BaseModel, "__new__", BaseModel.__dict__["__new__"])
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                        DynamoDBBackend.transact_write_items)
    monkeypatch.setattr(ShardIterator, "__init__", ShardIterator.__init__)
    monkeypatch.setattr(DynamoDBStreamsBackend, "get_records",
                        DynamoDBStreamsBackend.get_records)
    assert moto_memory.bound_memory() == []


def item(sk: str, **attributes: Any) -> dict[str, Any]:
    return {"pk": {"S": "T"}, "sk": {"S": sk},
            **{name: {"N": str(value)} for name, value in attributes.items()}}


def get(dynamodb: Any, sk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = dynamodb.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": "T"}, "sk": {"S": sk}}).get("Item")
    return found


def cancelled(dynamodb: Any) -> None:
    """Update an item, put a new one, then fail a condition: nothing may stay."""
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE_NAME, "Key": {"pk": {"S": "T"}, "sk": {"S": "kept"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": TABLE_NAME, "Item": item("new", n=1)}},
            {"Delete": {"TableName": TABLE_NAME, "Key": {"pk": {"S": "T"}, "sk": {"S": "gone"}}}},
            {"ConditionCheck": {"TableName": TABLE_NAME,
                                "Key": {"pk": {"S": "T"}, "sk": {"S": "guard"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])


def test_a_cancelled_transaction_leaves_every_item_and_the_stream_as_they_were(
        patched: None, dynamodb: Any, stream_arn: str) -> None:
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("kept", n=1))
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("gone", n=7))
    reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn)
    reader.read()

    cancelled(dynamodb)
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("after"))

    assert get(dynamodb, "kept") == item("kept", n=1)  # the update was undone
    assert get(dynamodb, "new") is None  # the put was undone
    assert get(dynamodb, "gone") == item("gone", n=7)  # the delete was undone
    # The undone writes left no record, and a reader from before still reads on.
    assert [r["dynamodb"]["Keys"]["sk"]["S"] for r in reader.read()] == ["after"]


def test_a_transaction_that_succeeds_applies_every_action(
        patched: None, dynamodb: Any, stream_arn: str) -> None:
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("kept", n=1))
    dynamodb.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE_NAME, "Key": {"pk": {"S": "T"}, "sk": {"S": "kept"}},
                    "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": TABLE_NAME, "Item": item("new", n=1)}},
    ])
    assert get(dynamodb, "kept") == item("kept", n=2)
    assert get(dynamodb, "new") == item("new", n=1)


def transaction_peak_bytes(dynamodb: Any, sk: str) -> int:
    tracemalloc.start()
    try:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE_NAME, "Item": item(sk, n=1)}}])
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_transaction_copies_only_its_own_items_not_the_table(
        patched: None, dynamodb: Any, stream_arn: str) -> None:
    transaction_peak_bytes(dynamodb, "warm-up")
    small = transaction_peak_bytes(dynamodb, "small")
    for start in range(0, 3000, 25):  # a table 100 times bigger
        dynamodb.batch_write_item(RequestItems={TABLE_NAME: [
            {"PutRequest": {"Item": item(f"filler-{n}", n=n, m=n * 2, k=n * 3)}}
            for n in range(start, start + 25)]})
    big = transaction_peak_bytes(dynamodb, "big")
    # moto's own copy of 3,000 items would allocate megabytes; ours stays flat.
    assert big < small * 2 + 200_000, (small, big)


def test_moto_keeps_no_registry_of_every_item_it_ever_made(
        patched: None, dynamodb: Any, stream_arn: str) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    before = len(Item.instances_tracked)  # type: ignore[attr-defined]
    for n in range(50):
        dynamodb.put_item(TableName=TABLE_NAME, Item=item("same", n=n))
        cancelled_or_not = n % 5 == 0
        if cancelled_or_not:
            dynamodb.put_item(TableName=TABLE_NAME, Item=item("kept", n=1))
            cancelled(dynamodb)
    assert len(Item.instances_tracked) == before  # type: ignore[attr-defined]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_shard_iterator_expires_after_fifteen_minutes_as_on_aws(
        dynamodb: Any, stream_arn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    monkeypatch.setattr(ShardIterator, "__init__", ShardIterator.__init__)
    monkeypatch.setattr(DynamoDBStreamsBackend, "get_records",
                        DynamoDBStreamsBackend.get_records)
    clock = Clock()
    assert moto_memory.expire_iterators(clock=clock)
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]

    def iterator() -> str:
        return str(streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="LATEST")["ShardIterator"])

    old = iterator()
    clock.now += 14 * 60
    fresh = streams.get_records(ShardIterator=old)["NextShardIterator"]  # still good
    clock.now += 2 * 60
    with pytest.raises(ClientError, match="ExpiredIteratorException"):
        streams.get_records(ShardIterator=old)
    streams.get_records(ShardIterator=fresh)  # issued 2 minutes ago: good


def test_stream_records_past_24_hours_are_trimmed_and_sequence_numbers_go_on(
        dynamodb: Any, stream_arn: str) -> None:
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE_NAME]
    for n in range(3):
        dynamodb.put_item(TableName=TABLE_NAME, Item=item(f"old-{n}"))
    records = len(table.stream_shard.items)
    last = table.stream_shard.starting_sequence_number + records - 1
    a_day_later = datetime.datetime.now(datetime.UTC).timestamp() + 24 * 3600 + 60

    assert moto_memory.trim_stream(table, a_day_later) == records
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("new"))

    read = StreamReader(boto3.client("dynamodbstreams"), stream_arn).read()
    assert [r["dynamodb"]["Keys"]["sk"]["S"] for r in read] == ["new"]
    assert int(read[0]["dynamodb"]["SequenceNumber"]) == last + 1


def test_the_snapshot_mirror_follows_the_stream_and_reads_the_table_once(
        patched: None, dynamodb: Any, stream_arn: str) -> None:
    from moto.dynamodb.models import dynamodb_backends

    from devstack.table_mirror import TableMirror

    table = dynamodb_backends["123456789012"]["us-east-1"].tables[TABLE_NAME]
    mirror = TableMirror()

    def scanned() -> list[dict[str, Any]]:
        return sorted(dynamodb.scan(TableName=TABLE_NAME)["Items"], key=str)

    assert sorted(mirror.items(table), key=str) == scanned()
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("kept", n=1))
    dynamodb.put_item(TableName=TABLE_NAME, Item=item("gone", n=7))
    dynamodb.update_item(TableName=TABLE_NAME, Key={"pk": {"S": "T"}, "sk": {"S": "kept"}},
                         UpdateExpression="SET n = n + :one",
                         ExpressionAttributeValues={":one": {"N": "1"}})
    dynamodb.update_item(TableName=TABLE_NAME, Key={"pk": {"S": "T"}, "sk": {"S": "made"}},
                         UpdateExpression="SET n = :one",
                         ExpressionAttributeValues={":one": {"N": "1"}})
    cancelled(dynamodb)
    dynamodb.delete_item(TableName=TABLE_NAME, Key={"pk": {"S": "T"}, "sk": {"S": "gone"}})

    assert sorted(mirror.items(table), key=str) == scanned()
    assert mirror.full_reads == 1  # the changes came from the stream


def test_a_query_reads_its_partition_only_and_answers_as_before(
        patched: None, dynamodb: Any, stream_arn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import Table

    for n in range(30):
        dynamodb.put_item(TableName=TABLE_NAME, Item={
            "pk": {"S": f"P{n % 3}"}, "sk": {"S": f"{n:03d}"}, "n": {"N": str(n)}})

    def whole_table(table: Any) -> Any:
        raise AssertionError("a Query walked the whole table")

    monkeypatch.setattr(Table, "all_items", whole_table)
    pages, start = [], None
    while True:
        page = dynamodb.query(TableName=TABLE_NAME, KeyConditionExpression="pk = :p AND sk > :s",
                              ExpressionAttributeValues={":p": {"S": "P1"}, ":s": {"S": "005"}},
                              ScanIndexForward=False, Limit=4,
                              **({"ExclusiveStartKey": start} if start else {}))
        pages.append([item["sk"]["S"] for item in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert [sk for page in pages for sk in page] == [
        f"{n:03d}" for n in reversed(range(30)) if n % 3 == 1 and n > 5]
    assert dynamodb.query(TableName=TABLE_NAME, KeyConditionExpression="pk = :p",
                          ExpressionAttributeValues={":p": {"S": "none"}})["Items"] == []
