"""The stream runner: the app's own `on_dynamodb_record` handlers, fed from the table's stream.

It finds the handlers on the Chalice app object (no list kept here), gives
each the batch size, starting position and batching window of its decorator
and its own position in the stream (a queue of records it has not done yet,
so one handler retrying never holds up another), and invokes it with a
Lambda-shaped event (see devstack.dispatch for the retry and parking rules).
Handlers that start at the same place share one reader: moto serves one
request at a time, and every poll it answers delays the app's requests.
"""

from __future__ import annotations

import datetime
import faulthandler
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from devstack.dispatch import WHOLE_BATCH, BatchDispatcher, Parked, Record, first_failure
from devstack.environment import PROJECT_DIR, stage_variables
from devstack.streams import StreamReader

PLACEHOLDER = "placeholder"


@dataclass
class Feed:
    """One reader of a stream and the handlers it feeds."""

    reader: StreamReader
    dispatchers: list[BatchDispatcher]


def stream_handlers(module: ModuleType) -> list[Any]:
    """The app's DynamoDB stream event sources, in declaration order."""
    from chalice.app import DynamoDBEventConfig

    return [source for source in module.app.event_sources
            if isinstance(source, DynamoDBEventConfig)]


def load_app(stream_arn: str) -> ModuleType:
    """Import app.py the way Lambda would see it, with the real stream ARN set."""
    os.environ["TABLE_STREAM_ARN"] = stream_arn
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    return importlib.import_module("app")


def lambda_invoker(handler: Callable[..., Any],
                   function_name: str) -> Callable[[list[Record]], Any]:
    """Call a Chalice event handler with a Lambda event and context, as Lambda does."""
    from chalice.local import LambdaContext

    def invoke(records: list[Record]) -> Any:
        event = {"Records": records}
        return handler(event, LambdaContext(function_name, memory_size=128,
                                            max_runtime_ms=60_000))
    return invoke


def parking_lot(path: Path) -> Callable[[Parked], None]:
    """Append a parked record to `path` and report it on stderr as one JSON line."""
    def park(parked: Parked) -> None:
        dynamodb = parked.record.get("dynamodb", {})
        report = {
            "event": "stream_record_parked",
            "handler": parked.handler,
            "sequenceNumber": dynamodb.get("SequenceNumber"),
            "eventID": parked.record.get("eventID"),
            "keys": dynamodb.get("Keys"),
            "attempts": parked.attempts,
            "error": parked.error[:300],
            "parkedAt": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "parkedTo": str(path),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as lot:
            lot.write(json.dumps({**report, "record": parked.record}, default=str) + "\n")
        print(json.dumps(report, default=str), file=sys.stderr, flush=True)
    return park


def subscribe(module: ModuleType, streams_client: Any, stage: str, *,
              park: Callable[[Parked], None], max_attempts: int,
              rediscover_seconds: float, reanchor_after: int) -> list[Feed]:
    feeds: dict[tuple[str, str], Feed] = {}
    for source in stream_handlers(module):
        if PLACEHOLDER in source.stream_arn:
            raise RuntimeError(
                f"{source.name} listens to {source.stream_arn}: app.py did not take "
                "the stream ARN from TABLE_STREAM_ARN"
            )
        handler = getattr(module, source.name)
        invoke = lambda_invoker(handler, f"{module.app.app_name}-{stage}-{source.name}")
        dispatcher = BatchDispatcher(
            source.name, invoke, park,
            batch_size=source.batch_size,
            window_seconds=float(source.maximum_batching_window_in_seconds or 0),
            max_attempts=max_attempts,
        )
        key = (source.stream_arn, source.starting_position)
        if key not in feeds:
            reader = StreamReader(streams_client, source.stream_arn, source.starting_position,
                                  rediscover_seconds=rediscover_seconds,
                                  reanchor_after=reanchor_after)
            feeds[key] = Feed(reader, [])
        feeds[key].dispatchers.append(dispatcher)
    return list(feeds.values())


class Runner:
    """Poll each feed while its handlers want records; deliver their due batches."""

    def __init__(self, feeds: list[Feed], poll_interval: float) -> None:
        self.feeds = feeds
        self._poll_interval = poll_interval
        self._last_read: dict[int, float] = {}
        self._stopping = False
        self._read_failing = False

    def stop(self) -> None:
        self._stopping = True

    def run_once(self) -> bool:
        """One pass over every feed; True when it did any work."""
        busy = False
        now = time.monotonic()
        for index, feed in enumerate(self.feeds):
            due = now - self._last_read.get(index, 0.0) >= self._poll_interval
            if due and any(d.wants_records() for d in feed.dispatchers):
                self._last_read[index] = now
                records = self._read(feed.reader)
                if records:
                    for dispatcher in feed.dispatchers:
                        dispatcher.offer(records)
                    busy = True
            for dispatcher in feed.dispatchers:
                busy = dispatcher.step() or busy
        return busy

    def _read(self, reader: StreamReader) -> list[Record]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            records = reader.read(limit=1000)
        except (BotoCoreError, ClientError) as exc:
            if not self._read_failing:
                print(f"devstack streams: cannot read {reader.stream_arn}: {exc}; "
                      "retrying", file=sys.stderr, flush=True)
            self._read_failing = True
            reader.resume()
            time.sleep(0.5)
            return []
        if self._read_failing:
            print("devstack streams: reading again", file=sys.stderr, flush=True)
            self._read_failing = False
        return records

    def run(self, exit_with_parent: bool = False) -> None:
        parent = os.getppid()
        while not self._stopping:
            if exit_with_parent and os.getppid() != parent:
                return  # the supervisor is gone: do not outlive it
            if not self.run_once():
                time.sleep(min(self._poll_interval, 0.05))


def _table_stream(dynamodb: Any, table_name: str) -> str:
    description = dynamodb.describe_table(TableName=table_name)["Table"]
    arn = description.get("LatestStreamArn")
    if not arn or description.get("StreamSpecification", {}).get("StreamEnabled") is False:
        raise RuntimeError(f"table {table_name} has no stream enabled")
    return str(arn)


def _on_moto() -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS"))


def replay(stage: str, table_name: str | None, park_file: Path) -> int:
    """Deliver each parked record to its handler again; keep those that still fail."""
    import boto3

    os.environ.update(stage_variables(stage))
    if stage == "local" and not _on_moto():
        print("devstack replay: stage local needs the running stack's moto: set "
              "AWS_ENDPOINT_URL_DYNAMODB(_STREAMS) (see docs/OPERATIONS.md)", file=sys.stderr)
        return 2
    if not park_file.exists():
        print(f"devstack replay: nothing parked ({park_file} does not exist)")
        return 0
    entries = park_file.read_text(encoding="utf-8").splitlines()
    name = table_name or os.environ.get("TABLE_NAME", "")
    module = load_app(_table_stream(boto3.client("dynamodb"), name))
    failed = 0
    replayed: set[str] = set()
    for line in entries:
        entry = json.loads(line)
        invoke = lambda_invoker(getattr(module, entry["handler"]),
                                f"{module.app.app_name}-{stage}-{entry['handler']}")
        try:
            outcome = first_failure([entry["record"]], invoke([entry["record"]]))
        except Exception as exc:  # report it and keep it parked
            outcome, detail = WHOLE_BATCH, f"{type(exc).__name__}: {exc}"
        else:
            detail = "reported in batchItemFailures"
        if outcome is None:
            replayed.add(line)
            print(f"replayed  {entry['handler']} {entry['sequenceNumber']}")
        else:
            failed += 1
            print(f"still failing  {entry['handler']} {entry['sequenceNumber']}: {detail}")
    # The runner may have parked more meanwhile: keep every line not replayed.
    left = [line for line in park_file.read_text(encoding="utf-8").splitlines()
            if line not in replayed]
    park_file.write_text("".join(line + "\n" for line in left), encoding="utf-8")
    return 1 if failed else 0


def main(stage: str, table_name: str | None, park_file: Path, poll_interval: float | None,
         max_attempts: int, ready_fd: int | None) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` shows where it is stuck
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The handlers see what the deployed functions see: the stage's variables.
    os.environ.update(stage_variables(stage))
    name = table_name or os.environ.get("TABLE_NAME", "")
    if stage == "local" and not _on_moto():
        print("devstack streams: stage local needs moto: start it with `python -m devstack "
              "run`, or set AWS_ENDPOINT_URL_DYNAMODB(_STREAMS)", file=sys.stderr, flush=True)
        return 2
    try:
        stream_arn = _table_stream(boto3.client("dynamodb"), name)
        module = load_app(stream_arn)
        feeds = subscribe(
            module, boto3.client("dynamodbstreams"), stage,
            park=parking_lot(park_file), max_attempts=max_attempts,
            rediscover_seconds=1.0,
            # Only moto needs it (see StreamReader): on AWS an iterator stays
            # good. Every 4th empty poll (~0.1 s) reads moto's shard afresh.
            reanchor_after=4 if _on_moto() else 0,
        )
        for feed in feeds:  # position every handler before saying ready
            records = feed.reader.read()
            for dispatcher in feed.dispatchers:
                dispatcher.offer(records)
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        print(f"devstack streams: {exc}", file=sys.stderr, flush=True)
        return 1
    if poll_interval is None:
        # AWS allows 5 GetRecords a second per shard, for all readers together.
        poll_interval = 0.025 if _on_moto() else 0.25
    runner = Runner(feeds, poll_interval)

    def stop(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    names = ", ".join(d.name for feed in feeds for d in feed.dispatchers)
    print(f"devstack streams: tailing {stream_arn} for {names}", flush=True)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    runner.run(exit_with_parent=ready_fd is not None)
    return 0
