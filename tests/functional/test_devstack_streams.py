"""The stream runner's reading and parking against moto's real stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from devstack.dispatch import BatchDispatcher, Parked
from devstack.motoserver import share_stream_shards
from devstack.runner import Feed, Runner, parking_lot
from devstack.streams import StreamReader
from tests.factories import TABLE_NAME


def put(dynamodb: Any, sk: str) -> None:
    dynamodb.put_item(TableName=TABLE_NAME, Item={"pk": {"S": "T"}, "sk": {"S": sk}})


def failed_transaction(dynamodb: Any) -> None:
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=[{"Put": {
            "TableName": TABLE_NAME,
            "Item": {"pk": {"S": "T"}, "sk": {"S": "never"}},
            "ConditionExpression": "attribute_exists(pk)",
        }}])


def keys(records: list[dict[str, Any]]) -> list[str]:
    return [record["dynamodb"]["Keys"]["sk"]["S"] for record in records]


def test_a_reanchoring_reader_keeps_up_after_moto_restores_a_table(
        dynamodb: Any, stream_arn: str) -> None:
    reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn, reanchor_after=1)
    reader.read()
    put(dynamodb, "before")
    assert keys(reader.read()) == ["before"]
    assert reader.read() == []

    failed_transaction(dynamodb)  # moto puts back a copy of the table, stream shard too
    put(dynamodb, "after")

    assert keys(reader.read() or reader.read()) == ["after"]


def test_handlers_sharing_a_reader_each_keep_their_own_position(
        dynamodb: Any, stream_arn: str) -> None:
    done: dict[str, list[str]] = {"steady": [], "stuck": []}

    def steady(records: list[dict[str, Any]]) -> None:
        done["steady"].extend(keys(records))

    def stuck(records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}

    parked: list[Parked] = []
    reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn, reanchor_after=5)
    reader.read()  # past the catalog seed
    feed = Feed(reader, [
        BatchDispatcher("steady", steady, parked.append, batch_size=10),
        BatchDispatcher("stuck", stuck, parked.append, batch_size=10, max_attempts=1000,
                        retry_delay=0.0),
    ])
    runner = Runner([feed], poll_interval=0.0)
    for sk in ("a", "b", "c"):
        put(dynamodb, sk)

    for _ in range(10):
        runner.run_once()

    assert done["steady"] == ["a", "b", "c"]
    assert feed.dispatchers[1].pending == 3
    assert parked == []


def test_a_parked_record_goes_to_the_file_and_to_stderr_as_one_json_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lot = tmp_path / "build" / "parked.jsonl"
    record = {"eventID": "e1", "dynamodb": {
        "SequenceNumber": "42", "Keys": {"pk": {"S": "CART#c"}, "sk": {"S": "LINE#kettle"}},
        "NewImage": {"quantity": {"S": "two"}}}}

    parking_lot(lot)(Parked("cart_summary", record, 3, "the handler reported it"))

    stored = json.loads(lot.read_text())
    assert stored["record"] == record
    assert stored["handler"] == "cart_summary" and stored["attempts"] == 3
    reported = capsys.readouterr().err.strip().splitlines()
    assert len(reported) == 1
    assert json.loads(reported[0])["event"] == "stream_record_parked"
    assert json.loads(reported[0])["sequenceNumber"] == "42"


class FlakyStreams:
    """The real (moto) Streams client, whose next `failures` GetRecords calls fail."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failures = 0

    def get_records(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return self._client.get_records(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_read_error_loses_and_repeats_nothing(dynamodb: Any, stream_arn: str) -> None:
    client = FlakyStreams(boto3.client("dynamodbstreams"))
    seen: list[str] = []
    reader = StreamReader(client, stream_arn)
    reader.read()
    runner = Runner([Feed(reader, [BatchDispatcher(
        "steady", lambda records: seen.extend(keys(records)), lambda parked: None,
        batch_size=10)])], poll_interval=0.0)
    put(dynamodb, "a")
    runner.run_once()

    client.failures = 1
    put(dynamodb, "b")
    runner.run_once()  # reports the error once, and retries with a fresh iterator
    put(dynamodb, "c")
    runner.run_once()

    assert seen == ["a", "b", "c"]


@pytest.fixture
def shared_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """The moto server's patch, in this process for one test and undone after it."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                        DynamoDBBackend.transact_write_items)
    monkeypatch.setattr(StreamShard, "__deepcopy__", None, raising=False)
    assert share_stream_shards()


def test_with_shared_shards_a_failed_transaction_leaves_old_readers_working_and_no_records(
        shared_shards: None, dynamodb: Any, stream_arn: str) -> None:
    reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn)  # never reanchors
    reader.read()
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE_NAME, "Item": {"pk": {"S": "T"}, "sk": {"S": "undone"}}}},
            {"Put": {"TableName": TABLE_NAME, "Item": {"pk": {"S": "T"}, "sk": {"S": "never"}},
                     "ConditionExpression": "attribute_exists(pk)"}},
        ])
    put(dynamodb, "after")

    assert keys(reader.read()) == ["after"]
    assert "Item" not in dynamodb.get_item(TableName=TABLE_NAME,
                                           Key={"pk": {"S": "T"}, "sk": {"S": "undone"}})
