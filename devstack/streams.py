"""Read a DynamoDB stream and shape its records the way Lambda delivers them."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as it appears in a Lambda event's `Records`."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
        **({"userIdentity": record["userIdentity"]} if "userIdentity" in record else {}),
    }


class StreamReader:
    """Tail every shard of a stream from a starting position, in order."""

    def __init__(self, client: Any, stream_arn: str,
                 starting_position: str = "TRIM_HORIZON",
                 rediscover_seconds: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 reanchor_after: int = 0) -> None:
        self._client = client
        self.stream_arn = stream_arn
        self._start = starting_position
        self._iterators: dict[str, str | None] = {}
        # DescribeStream is rate-limited in AWS (10/s per account): a tailing
        # reader looks for new shards every `rediscover_seconds` at most.
        self._rediscover = rediscover_seconds
        self._clock = clock
        self._discovered_at: float | None = None
        # moto answers a failed TransactWriteItems by putting back a deep copy
        # of the table, stream shard included: iterators taken before then
        # read an orphaned shard and see nothing new, ever. With
        # `reanchor_after=n`, n empty reads in a row of a shard are followed
        # by a fresh iterator after the last record seen.
        self._reanchor_after = reanchor_after
        self._last_sequence: dict[str, str] = {}
        self._empty_reads: dict[str, int] = {}
        self._resume = False

    def resume(self) -> None:
        """Read on with fresh iterators: after an error, an iterator may be expired."""
        self._resume = True

    def _discover(self) -> None:
        now = self._clock()
        first = self._discovered_at is None
        if not first and now - (self._discovered_at or 0.0) < self._rediscover:
            return
        self._discovered_at = now
        description = self._client.describe_stream(StreamArn=self.stream_arn)
        for shard in description["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                # A shard that appears later (a split) is read from its start:
                # LATEST there would skip its first records.
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType=self._start if first else "TRIM_HORIZON",
                )["ShardIterator"]

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every record that arrived since the last read, Lambda-shaped."""
        self._discover()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in list(self._iterators.items()):
            if iterator and (self._resume or self._due_for_reanchor(shard_id)):
                iterator = self._fresh_iterator(shard_id)
            while iterator:
                try:
                    page = self._client.get_records(ShardIterator=iterator, Limit=limit)
                except Exception:
                    if records:  # hand over what was read; the next read meets the error
                        return records
                    raise
                iterator = page.get("NextShardIterator")
                self._iterators[shard_id] = iterator
                if not page["Records"]:
                    self._empty_reads[shard_id] = self._empty_reads.get(shard_id, 0) + 1
                    break
                self._empty_reads[shard_id] = 0
                self._last_sequence[shard_id] = page["Records"][-1]["dynamodb"]["SequenceNumber"]
                records.extend(lambda_record(r, self.stream_arn) for r in page["Records"])
        self._resume = False
        return records

    def _fresh_iterator(self, shard_id: str) -> str:
        if shard_id in self._last_sequence:
            position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                        "SequenceNumber": self._last_sequence[shard_id]}
        else:
            position = {"ShardIteratorType": self._start}
        return str(self._client.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, **position)["ShardIterator"])

    def _due_for_reanchor(self, shard_id: str) -> bool:
        if not self._reanchor_after or shard_id not in self._last_sequence:
            return False
        empty = self._empty_reads.get(shard_id, 0)
        return empty > 0 and empty % self._reanchor_after == 0
