"""`python -m deploy redrive --stage NAME`: run the dead-letter queue's batches again.

When the stream function gives up on a batch (retries spent, or the records
too old), Lambda puts an on-failure record in the stage's dead-letter queue:
not the records, only where they are (DDBStreamBatchInfo: stream, shard, first
and last sequence number). The stream keeps records for 24 hours, so within
that time the batch can be read again (GetShardIterator AT_SEQUENCE_NUMBER, on
to the last sequence number) and run through the follow-ups, which are
idempotent. A message whose batch succeeded is deleted; every other one stays
in the queue, visible again at once (the alarm on the queue keeps firing), and
is reported: trimmed past the stream's retention, failing again, or unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import followups
from chalicelib.repository import DynamoCartRepository
from devstack.streams import lambda_record

Out = Callable[[str], None]
RECOVERED = "recovered"
TRIMMED = "trimmed"
FAILING = "failing again"
UNREADABLE = "unreadable"
# While one run works on a message nobody else should see it; failures are
# made visible again at the end of the run.
VISIBILITY_SECONDS = 300
# An open shard may answer empty pages before the records it holds; the batch's
# last record is known to be there, so a few empty pages in a row mean it is gone.
MAX_EMPTY_PAGES = 5
# The stream's answers for records past its 24-hour retention (or a deleted stream).
GONE = frozenset({"TrimmedDataAccessException", "ExpiredIteratorException",
                  "ResourceNotFoundException"})


def _sequence_number(value: object) -> str:
    """A stream sequence number exactly as the stream wrote it: GetShardIterator
    looks it up as a string, so reformatting it (a zero-padded one as an int)
    would name no record. ValueError when it is not a decimal number."""
    text = str(value)
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"sequence number {text!r} is not a decimal number")
    return text


@dataclass(frozen=True)
class BatchInfo:
    """Where a failed batch's records are: Lambda's DDBStreamBatchInfo."""

    stream_arn: str
    shard_id: str
    start_sequence: str
    end_sequence: str
    batch_size: int

    @classmethod
    def from_message(cls, body: str) -> BatchInfo:
        """The batch a Lambda on-failure record names; ValueError for anything else."""
        try:
            info = json.loads(body)["DDBStreamBatchInfo"]
            return cls(
                stream_arn=str(info["streamArn"]),
                shard_id=str(info["shardId"]),
                start_sequence=_sequence_number(info["startSequenceNumber"]),
                end_sequence=_sequence_number(info["endSequenceNumber"]),
                batch_size=int(info["batchSize"]),
            )
        except (KeyError, TypeError, ValueError) as exc:  # json's errors are ValueErrors
            raise ValueError(f"not a DynamoDB stream on-failure record ({exc})") from exc


@dataclass(frozen=True)
class Outcome:
    message_id: str
    status: str
    detail: str
    records: int = 0


class RecordsGone(Exception):
    """The stream no longer holds (all of) the batch."""


def _page_through(streams: Any, info: BatchInfo) -> list[dict[str, Any]]:
    end = int(info.end_sequence)
    iterator = streams.get_shard_iterator(
        StreamArn=info.stream_arn, ShardId=info.shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=info.start_sequence,
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    empty = 0
    while iterator and empty < MAX_EMPTY_PAGES:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        empty = 0 if page["Records"] else empty + 1
        for record in page["Records"]:
            if int(record["dynamodb"]["SequenceNumber"]) > end:
                return records
            records.append(lambda_record(record, info.stream_arn))
        iterator = page.get("NextShardIterator")
    return records


def read_batch(streams: Any, info: BatchInfo) -> list[dict[str, Any]]:
    """The batch's records, Lambda-shaped, first to last; RecordsGone when trimmed."""
    try:
        records = _page_through(streams, info)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in GONE:
            raise RecordsGone(f"{code}: past the stream's 24-hour retention") from exc
        raise
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    if not sequences or sequences[0] != int(info.start_sequence):
        raise RecordsGone("the stream no longer holds the batch's first record")
    if sequences[-1] != int(info.end_sequence):
        raise RecordsGone(
            f"read {len(records)} record(s) but not the last one ({info.end_sequence})")
    return records


def redrive_message(body: str, message_id: str, streams: Any,
                    repo: DynamoCartRepository) -> Outcome:
    """Read one failed batch again and run every follow-up over it."""
    try:
        info = BatchInfo.from_message(body)
    except ValueError as exc:
        return Outcome(message_id, UNREADABLE, str(exc))
    span = f"shard {info.shard_id} {info.start_sequence}..{info.end_sequence}"
    try:
        records = read_batch(streams, info)
    except RecordsGone as exc:
        return Outcome(message_id, TRIMMED, f"{span}: {exc}")
    result = followups.process_batch(records, repo)
    failed = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
    if failed:
        return Outcome(message_id, FAILING,
                       f"{span}: fails again from record {failed[0]} (see the "
                       "stream_record_failed lines above)", len(records))
    return Outcome(message_id, RECOVERED, span, len(records))


def _messages(sqs: Any, queue_url: str) -> Iterator[dict[str, Any]]:
    """Every message in the queue once: each stays invisible while this run lasts."""
    seen: set[str] = set()
    while True:
        page = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1, VisibilityTimeout=VISIBILITY_SECONDS)
        fresh = [m for m in page.get("Messages", []) if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def redrive(sqs: Any, streams: Any, repo: DynamoCartRepository, queue_url: str,
            out: Out) -> list[Outcome]:
    """Every message in the queue: delete the recovered, put back and report the rest."""
    outcomes: list[Outcome] = []
    kept: list[str] = []
    for message in _messages(sqs, queue_url):
        outcome = redrive_message(message.get("Body", ""), message["MessageId"], streams, repo)
        outcomes.append(outcome)
        if outcome.status == RECOVERED:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            kept.append(message["ReceiptHandle"])
        out(f"  {outcome.status:<13} {outcome.message_id}  {outcome.detail}"
            + (f" ({outcome.records} records)" if outcome.records else ""))
    for handle in kept:  # visible again now: the queue's alarm goes on showing them
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle,
                                      VisibilityTimeout=0)
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    recovered = [o for o in outcomes if o.status == RECOVERED]
    line = (f"{len(recovered)} of {len(outcomes)} failed batch(es) recovered and deleted "
            f"({sum(o.records for o in recovered)} records)")
    left = [o for o in outcomes if o.status != RECOVERED]
    if left:
        counts: dict[str, int] = {}
        for outcome in left:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        line += "; left in the queue: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    return line
