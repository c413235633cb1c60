"""Read a DynamoDB stream and shape its records the way Lambda delivers them."""

from __future__ import annotations

import datetime
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
                 starting_position: str = "TRIM_HORIZON") -> None:
        self._client = client
        self.stream_arn = stream_arn
        self._start = starting_position
        self._iterators: dict[str, str | None] = {}

    def _discover(self) -> None:
        description = self._client.describe_stream(StreamArn=self.stream_arn)
        for shard in description["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._client.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType=self._start,
                )["ShardIterator"]

    def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every record that arrived since the last read, Lambda-shaped."""
        self._discover()
        records: list[dict[str, Any]] = []
        for shard_id, iterator in self._iterators.items():
            while iterator:
                page = self._client.get_records(ShardIterator=iterator, Limit=limit)
                iterator = page.get("NextShardIterator")
                self._iterators[shard_id] = iterator
                if not page["Records"]:
                    break
                records.extend(lambda_record(r, self.stream_arn) for r in page["Records"])
        return records
