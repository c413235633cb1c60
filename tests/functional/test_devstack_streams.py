"""The stream runner's reading and parking against moto's real stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.followups import STREAM_FILTER_PATTERNS
from devstack.bootstrap import SnapshotError, bootstrap, ensure_table, restore
from devstack.dispatch import BatchDispatcher, Parked
from devstack.moto_memory import undo_by_item
from devstack.motoserver import Snapshotter
from devstack.runner import Checkpoint, Feed, Runner, mark_start, parking_lot
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

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                        DynamoDBBackend.transact_write_items)
    assert undo_by_item()


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


# -- 6. local data survives a restart: snapshot, restore, start after it ------------

def scan(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def test_a_snapshot_is_saved_when_the_table_changed_and_only_once_armed(
        dynamodb: Any, stream_arn: str, tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path / "table.json", TABLE_NAME)

    assert snapshotter.save() is None  # not armed: a new empty table must not win
    assert not snapshotter.path.exists()
    saved = snapshotter.save(force=True)  # what the supervisor's POST /_devstack/snapshot does
    assert saved == len(scan(dynamodb))
    assert snapshotter.save() is None  # nothing changed: no write
    put(dynamodb, "new")
    assert snapshotter.save() == saved + 1


def test_a_restored_table_holds_every_item_and_the_runner_starts_after_the_restore(
        dynamodb: Any, stream_arn: str, tmp_path: Path) -> None:
    client = boto3.client("dynamodbstreams")
    dynamodb.put_item(TableName=TABLE_NAME, Item={
        "pk": {"S": "CART#c1"}, "sk": {"S": "LINE#kettle"}, "quantity": {"N": "2"},
        "tags": {"SS": ["a", "b"]}, "meta": {"M": {"n": {"N": "1.5"}, "l": {"L": [
            {"S": "x"}, {"NULL": True}, {"BOOL": False}]}}}})
    before = scan(dynamodb)
    snapshotter = Snapshotter(tmp_path / "table.json", TABLE_NAME)
    snapshotter.save(force=True)
    dynamodb.delete_table(TableName=TABLE_NAME)

    arn, created = ensure_table(dynamodb, TABLE_NAME)
    assert created and restore(dynamodb, TABLE_NAME, snapshotter.path) == len(before)
    bootstrap(dynamodb, TABLE_NAME)  # the catalog seed, after the restore
    assert scan(dynamodb) == before
    skipped = mark_start(tmp_path / "position.json", client, arn)

    delivered: list[str] = []
    checkpoint = Checkpoint(tmp_path / "position.json", arn)
    reader = StreamReader(client, arn, after=checkpoint.start_after(["h"]))
    feed = Feed(reader, [BatchDispatcher("h", lambda rs: delivered.extend(keys(rs)),
                                         lambda parked: None, batch_size=10)],
                {"h": STREAM_FILTER_PATTERNS})
    runner = Runner([feed], 0.0, checkpoint=checkpoint)
    runner.offer(feed, reader.read_shards())
    runner.run_once()
    assert skipped >= len(before) and delivered == []  # the restore is not a shopper's write

    dynamodb.put_item(TableName=TABLE_NAME, Item={"pk": {"S": "CATALOG"},
                                                  "sk": {"S": "PRODUCT#new"}})
    dynamodb.put_item(TableName=TABLE_NAME, Item={"pk": {"S": "CART#c2"},
                                                  "sk": {"S": "LINE#grinder"}})
    runner.run_once()
    assert delivered == ["LINE#grinder"]  # the catalog write is filtered out, as deployed


def test_a_snapshot_of_another_table_is_refused_with_a_way_out(
        dynamodb: Any, stream_arn: str, tmp_path: Path) -> None:
    other = tmp_path / "table.json"
    other.write_text(json.dumps({"table": "someone-else", "items": []}))

    with pytest.raises(SnapshotError, match="holds table 'someone-else'.*make reset"):
        restore(dynamodb, TABLE_NAME, other)
    other.write_text("{not json")
    with pytest.raises(SnapshotError, match="cannot read the saved data"):
        restore(dynamodb, TABLE_NAME, other)
    assert restore(dynamodb, TABLE_NAME, tmp_path / "absent.json") is None


def test_a_restarted_runner_resumes_after_its_last_batch(
        dynamodb: Any, stream_arn: str, tmp_path: Path) -> None:
    client = boto3.client("dynamodbstreams")
    position = tmp_path / "position.json"
    mark_start(position, client, stream_arn)

    def runner_delivering_to(seen: list[str]) -> Runner:
        checkpoint = Checkpoint(position, stream_arn)
        reader = StreamReader(client, stream_arn, after=checkpoint.start_after(["h"]))
        feed = Feed(reader, [BatchDispatcher("h", lambda rs: seen.extend(keys(rs)),
                                             lambda parked: None, batch_size=10)])
        return Runner([feed], 0.0, checkpoint=checkpoint)

    first: list[str] = []
    runner = runner_delivering_to(first)
    put(dynamodb, "a")
    runner.run_once()
    put(dynamodb, "b")  # written while no runner runs

    second: list[str] = []
    runner_delivering_to(second).run_once()

    assert first == ["a"] and second == ["b"]


def test_a_restarted_moto_numbers_its_stream_after_the_saved_one(
        dynamodb: Any, stream_arn: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.table import StreamShard

    monkeypatch.setattr(StreamShard, "__init__", StreamShard.__init__)
    put(dynamodb, "before")
    saved = Snapshotter(tmp_path / "table.json", TABLE_NAME)
    saved.save(force=True)
    last = int(json.loads(saved.path.read_text())["lastSequenceNumber"])
    dynamodb.delete_table(TableName=TABLE_NAME)

    restarted = Snapshotter(saved.path, TABLE_NAME)  # what a new moto server does first
    assert restarted.continue_sequence_numbers() == last + 1
    arn, _ = ensure_table(dynamodb, TABLE_NAME)
    put(dynamodb, "after")

    records = StreamReader(boto3.client("dynamodbstreams"), arn).read()
    assert [int(r["dynamodb"]["SequenceNumber"]) > last for r in records] == [True]
