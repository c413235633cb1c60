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
        **({"userIdentity": lambda_identity(record["userIdentity"])}
           if "userIdentity" in record else {}),
    }


def lambda_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """GetRecords' userIdentity (Type, PrincipalId) as Lambda's event spells it."""
    return {"type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId"))}


class StreamReader:
    """Tail every shard of a stream from a starting position, in order.

    As Lambda's mapping does, a child shard (after a split) is read only
    once its parent is read to its end, so one item's records stay in order
    across the split; a parent that has already left the stream (past the
    24 h retention) no longer holds its child back.
    """

    def __init__(self, client: Any, stream_arn: str,
                 starting_position: str = "TRIM_HORIZON",
                 rediscover_seconds: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 reanchor_after: int = 0,
                 after: dict[str, str] | None = None) -> None:
        self._client = client
        self.stream_arn = stream_arn
        self._start = starting_position
        self._iterators: dict[str, str | None] = {}
        self._parents: dict[str, str | None] = {}
        # Where a restarted runner left off: shard -> last sequence done.
        self._after = dict(after or {})
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

    def shards(self) -> list[dict[str, Any]]:
        """Every shard DescribeStream lists, page after page."""
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self._client.describe_stream(**request)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request["ExclusiveStartShardId"] = last

    def _discover(self) -> None:
        now = self._clock()
        first = self._discovered_at is None
        if not first and now - (self._discovered_at or 0.0) < self._rediscover:
            return
        self._discovered_at = now
        for shard in self.shards():
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            self._parents[shard_id] = shard.get("ParentShardId")
            if shard_id in self._after:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                            "SequenceNumber": self._after[shard_id]}
                self._last_sequence[shard_id] = self._after[shard_id]
            else:
                # A shard that appears later (a split) is read from its start:
                # LATEST there would skip its first records.
                position = {"ShardIteratorType": self._start if first else "TRIM_HORIZON"}
            self._iterators[shard_id] = self._client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, **position)["ShardIterator"]

    def _in_order(self) -> list[str]:
        """Shard ids, each after its parent; a child waits while its parent is open."""
        def depth(shard_id: str) -> int:
            seen, parent, level = {shard_id}, self._parents.get(shard_id), 0
            while parent and parent in self._parents and parent not in seen:
                seen.add(parent)
                level += 1
                parent = self._parents.get(parent)
            return level

        ready = []
        for shard_id in sorted(self._iterators, key=depth):
            parent = self._parents.get(shard_id)
            if parent in self._iterators and self._iterators[parent] is not None:
                continue  # the parent still has records: the child's come after them
            ready.append(shard_id)
        return ready

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every record that arrived since the last read, Lambda-shaped."""
        return [record for _, record in self.read_shards(limit)]

    def read_shards(self, limit: int = 1000) -> list[tuple[str, dict[str, Any]]]:
        """As `read`, each record with the shard it came from."""
        self._discover()
        records: list[tuple[str, dict[str, Any]]] = []
        for shard_id in self._in_order():
            iterator = self._iterators[shard_id]
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
                records.extend((shard_id, lambda_record(r, self.stream_arn))
                               for r in page["Records"])
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
