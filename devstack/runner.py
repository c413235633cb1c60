"""The stream runner: the app's own `on_dynamodb_record` handlers, fed from the table's stream.

It finds the handlers on the Chalice app object (no list kept here), gives
each the batch size, starting position and batching window of its decorator,
the deployed mapping's filter patterns (chalicelib.followups
.STREAM_FILTER_PATTERNS) and its own position in the stream (a queue of
records it has not done yet, so one handler retrying never holds up
another), and invokes it with a Lambda-shaped event (see devstack.dispatch
for the retry, bisect and parking rules). Handlers that start at the same
place share one reader: moto serves one request at a time, and every poll
it answers delays the app's requests. Each handler's position is saved
(`Checkpoint`), so a restarted runner resumes where it left off.
"""

from __future__ import annotations

import contextlib
import datetime
import faulthandler
import importlib
import json
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from devstack.dispatch import (
    WHOLE_BATCH,
    Batch,
    BatchDispatcher,
    OnBatch,
    Parked,
    Record,
    first_failure,
    sequence_number,
)
from devstack.environment import PROJECT_DIR, stage_variables
from devstack.filters import matches_any
from devstack.streams import StreamReader

PLACEHOLDER = "placeholder"


@dataclass
class Feed:
    """One reader of a stream and the handlers it feeds."""

    reader: StreamReader
    dispatchers: list[BatchDispatcher]
    # Each handler's event-filter patterns (Lambda's FilterCriteria); none: all records.
    patterns: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)


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


def filter_patterns() -> tuple[dict[str, Any], ...]:
    """The patterns the deployed mapping filters with (one stream function)."""
    from chalicelib.followups import STREAM_FILTER_PATTERNS

    return tuple(STREAM_FILTER_PATTERNS)


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


def batch_line(batch: Batch) -> None:
    """The verbose per-batch line: handler, records, outcome, milliseconds."""
    print(f"devstack streams: {batch.handler} {batch.records} record"
          f"{'' if batch.records == 1 else 's'} {batch.outcome} {batch.milliseconds:.0f} ms",
          flush=True)


class Checkpoint:
    """Each handler's last record done, per shard, saved so a restarted runner resumes.

    Written after every batch that moved a handler on (a small file, replaced
    atomically). A checkpoint of another stream (the table was re-created)
    is ignored. What was delivered after the last write is delivered again
    after a crash: at least once, as Lambda's mapping is.

    `start` is where every handler begins that has done nothing yet: the
    supervisor sets it to the end of a freshly bootstrapped table's stream
    (`mark_start`), so the records of the restore and the catalog seed are
    never taken for shoppers' writes, even by a runner restarted before its
    first batch.
    """

    def __init__(self, path: Path | None, stream_arn: str) -> None:
        self.path = path
        self.stream_arn = stream_arn
        self.done: dict[str, dict[str, str]] = {}
        self.start: dict[str, str] = {}
        if path is not None:
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                saved = {}
            if saved.get("streamArn") == stream_arn:
                self.done = {str(k): dict(v) for k, v in saved.get("handlers", {}).items()}
                self.start = dict(saved.get("start", {}))

    def _of(self, handler: str) -> dict[str, str]:
        return {**self.start, **self.done.get(handler, {})}

    def start_after(self, handlers: list[str]) -> dict[str, str] | None:
        """Per shard, where a reader for these handlers starts; None: nothing saved."""
        positions = [self._of(name) for name in handlers]
        if not positions or not all(positions):
            return None
        shards = set.intersection(*(set(position) for position in positions))
        return {shard: min((position[shard] for position in positions), key=int)
                for shard in shards}

    def already_done(self, handler: str, shard: str, sequence: str) -> bool:
        last = self._of(handler).get(shard)
        return last is not None and int(sequence) <= int(last)

    def advance(self, handler: str, shard: str, sequence: str) -> None:
        self.done.setdefault(handler, {})[shard] = sequence

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps({"streamArn": self.stream_arn, "start": self.start,
                                         "handlers": self.done}), encoding="utf-8")
        os.replace(temporary, self.path)


def mark_start(path: Path, streams_client: Any, stream_arn: str) -> int:
    """Start every handler after what the stream holds now; the records skipped."""
    reader = StreamReader(streams_client, stream_arn)
    start: dict[str, str] = {}
    records = reader.read_shards()
    for shard, record in records:
        start[shard] = sequence_number(record)
    checkpoint = Checkpoint(None, stream_arn)
    checkpoint.path, checkpoint.start = path, start
    checkpoint.save()
    return len(records)


def subscribe(module: ModuleType, streams_client: Any, stage: str, *,
              park: Callable[[Parked], None], max_attempts: int,
              rediscover_seconds: float, reanchor_after: int,
              on_batch: OnBatch | None = None,
              checkpoint: Checkpoint | None = None) -> list[Feed]:
    groups: dict[tuple[str, str], list[BatchDispatcher]] = {}
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
            on_batch=on_batch,
        )
        groups.setdefault((source.stream_arn, source.starting_position), []).append(dispatcher)
    feeds = []
    for (stream_arn, starting_position), dispatchers in groups.items():
        names = [d.name for d in dispatchers]
        after = checkpoint.start_after(names) if checkpoint is not None else None
        reader = StreamReader(streams_client, stream_arn, starting_position,
                              rediscover_seconds=rediscover_seconds,
                              reanchor_after=reanchor_after, after=after)
        feeds.append(Feed(reader, dispatchers, {name: filter_patterns() for name in names}))
    return feeds


class Runner:
    """Poll each feed while its handlers want records; deliver their due batches.

    Polling adapts: `poll_interval` right after a record, then twice as long
    after each empty read, up to `max_interval` (the worst-case delay before
    an idle stack sees a write). A watchdog thread warns on stderr when the
    oldest record not done, or the runner itself, is more than `lag_warning`
    seconds behind: a stalled runner is never silent.
    """

    def __init__(self, feeds: list[Feed], poll_interval: float,
                 max_interval: float | None = None, *,
                 checkpoint: Checkpoint | None = None,
                 lag_warning: float = 5.0,
                 warn: Callable[[str], None] | None = None) -> None:
        self.feeds = feeds
        self._poll_interval = poll_interval
        self._max_interval = max(poll_interval, max_interval or poll_interval)
        self.interval = poll_interval
        self._last_read: dict[int, float] = {}
        self._stopping = False
        self._read_failing = False
        self._checkpoint = checkpoint
        self._origin: dict[str, tuple[str, int]] = {}  # sequence -> (shard, handlers left)
        self._lag_warning = lag_warning
        self._warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self._lagging = False
        self.heartbeat = time.monotonic()
        self.doing = "starting"
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        for feed in feeds:
            for dispatcher in feed.dispatchers:
                dispatcher.on_done = self._done_for(dispatcher.name)

    def stop(self) -> None:
        """Stop after the current step (safe from a signal handler)."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")

    def _done_for(self, handler: str) -> Callable[[list[Record]], None]:
        def done(records: list[Record]) -> None:
            for record in records:
                sequence = sequence_number(record)
                origin = self._origin.get(sequence)
                if origin is None:
                    continue
                shard, left = origin
                if self._checkpoint is not None:
                    self._checkpoint.advance(handler, shard, sequence)
                if left <= 1:
                    del self._origin[sequence]
                else:
                    self._origin[sequence] = (shard, left - 1)
            if self._checkpoint is not None:
                self._checkpoint.save()
        return done

    def offer(self, feed: Feed, records: list[tuple[str, Record]]) -> bool:
        """Hand each handler the records its filter lets through; True if any."""
        offered = False
        for dispatcher in feed.dispatchers:
            patterns = feed.patterns.get(dispatcher.name, ())
            batch = []
            for shard, record in records:
                sequence = sequence_number(record)
                if self._checkpoint is not None and \
                        self._checkpoint.already_done(dispatcher.name, shard, sequence):
                    continue
                if not matches_any(record, patterns):
                    continue  # as Lambda's FilterCriteria: never invoked for it
                _, left = self._origin.get(sequence, (shard, 0))
                self._origin[sequence] = (shard, left + 1)
                batch.append(record)
            if batch:
                dispatcher.offer(batch)
                offered = True
        return offered

    def run_once(self) -> bool:
        """One pass over every feed; True when it did any work."""
        busy = False
        now = time.monotonic()
        for index, feed in enumerate(self.feeds):
            due = now - self._last_read.get(index, 0.0) >= self.interval
            if due and any(d.wants_records() for d in feed.dispatchers):
                self._last_read[index] = now
                self.doing = "reading the stream"
                records = self._read(feed.reader)
                if records:
                    self.offer(feed, records)
                    busy = True
            for dispatcher in feed.dispatchers:
                self.doing = f"running {dispatcher.name}"
                busy = dispatcher.step() or busy
        self.doing = "waiting"
        self.heartbeat = time.monotonic()
        if busy or any(d.pending for feed in self.feeds for d in feed.dispatchers):
            self.interval = self._poll_interval
        else:
            self.interval = min(self._max_interval, max(self.interval, 0.001) * 2)
        return busy

    def _read(self, reader: StreamReader) -> list[tuple[str, Record]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            records = reader.read_shards(limit=1000)
        except (BotoCoreError, ClientError) as exc:
            if not self._read_failing:
                print(f"devstack streams: cannot read {reader.stream_arn}: {exc}; "
                      "retrying", file=sys.stderr, flush=True)
            self._read_failing = True
            reader.resume()
            self._sleep(0.5)
            return []
        if self._read_failing:
            print("devstack streams: reading again", file=sys.stderr, flush=True)
            self._read_failing = False
        return records

    def lag(self, now_epoch: float | None = None) -> tuple[float, str]:
        """Seconds behind, and why: the oldest record not done, or a stuck step."""
        now_epoch = time.time() if now_epoch is None else now_epoch
        worst, why = 0.0, ""
        for feed in self.feeds:
            for dispatcher in feed.dispatchers:
                oldest = dispatcher.oldest()
                if oldest is None:
                    continue
                created = oldest.get("dynamodb", {}).get("ApproximateCreationDateTime")
                if isinstance(created, int | float) and now_epoch - created > worst:
                    worst = now_epoch - created
                    why = f"{dispatcher.name} has {dispatcher.pending} records waiting"
        stuck = time.monotonic() - self.heartbeat
        if stuck > worst and self.doing != "waiting":
            worst, why = stuck, f"stuck {self.doing} for {stuck:.1f} s"
        return worst, why

    def check_lag(self) -> None:
        lag, why = self.lag()
        if lag > self._lag_warning and not self._lagging:
            self._lagging = True
            self._warn(f"devstack streams: warning: stream lag {lag:.1f} s ({why}); "
                       "cart status and order confirmations are behind")
        elif lag <= self._lag_warning and self._lagging:
            self._lagging = False
            self._warn(f"devstack streams: caught up (lag {lag:.1f} s)")

    def _watch(self) -> None:
        while not self._stopping:
            time.sleep(1.0)
            with contextlib.suppress(Exception):  # the watchdog never takes the runner down
                self.check_lag()

    def _sleep(self, seconds: float) -> None:
        """Sleep, woken early by stop() (a signal's write to the wake-up pipe)."""
        if self._stopping:
            return
        select.select([self._wake_read], [], [], seconds)
        with contextlib.suppress(OSError):
            os.read(self._wake_read, 64)

    def run(self, exit_with_parent: bool = False, drain_seconds: float = 0.5) -> None:
        parent = os.getppid()
        signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="lag-watchdog", daemon=True).start()
        while not self._stopping:
            if exit_with_parent and os.getppid() != parent:
                return  # the supervisor is gone: do not outlive it
            if not self.run_once():
                self._sleep(self.interval)
        # Finish what was already read (the app is stopped first, so nothing
        # new arrives), for a bounded time: Ctrl-C stays under a second.
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline and any(
                d.pending for feed in self.feeds for d in feed.dispatchers):
            if not any(d.step() for feed in self.feeds for d in feed.dispatchers):
                time.sleep(0.01)


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


def is_local_endpoint(url: str | None) -> bool:
    """An endpoint on this machine (the local stack's moto), not an AWS region."""
    from urllib.parse import urlsplit

    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def remote_refusal(table_name: str, endpoint: str | None, tail_remote: bool) -> str | None:
    """Why the runner will not tail this table (None: it will).

    Its follow-ups would write to that table beside the deployed ones, and a
    third reader on a shard gets throttled: only the local stack's table, or
    any table with `--tail-remote`.
    """
    if is_local_endpoint(endpoint) or tail_remote:
        return None
    return (f"devstack streams: refusing to tail table {table_name!r} at "
            f"{endpoint or 'AWS'}: it is not the local stack's; pass --tail-remote "
            "if you mean it (and stop the deployed mapping first)")


def main(stage: str, table_name: str | None, park_file: Path, poll_interval: float | None,
         max_attempts: int, ready_fd: int | None, *, verbose: bool = False,
         tail_remote: bool = False, checkpoint_file: Path | None = None,
         max_interval: float | None = None) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` shows where it is stuck
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The handlers see what the deployed functions see: the stage's variables.
    os.environ.update(stage_variables(stage))
    name = table_name or os.environ.get("TABLE_NAME", "")
    on_moto = _on_moto()
    if stage == "local" and not on_moto:
        print("devstack streams: stage local needs moto: start it with `python -m devstack "
              "run`, or set AWS_ENDPOINT_URL_DYNAMODB(_STREAMS)", file=sys.stderr, flush=True)
        return 2
    refusal = remote_refusal(name, os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS"),
                             tail_remote)
    if refusal:
        print(refusal, file=sys.stderr, flush=True)
        return 2
    try:
        stream_arn = _table_stream(boto3.client("dynamodb"), name)
        module = load_app(stream_arn)
        checkpoint = Checkpoint(checkpoint_file, stream_arn)
        feeds = subscribe(
            module, boto3.client("dynamodbstreams"), stage,
            park=parking_lot(park_file), max_attempts=max_attempts,
            # One shard on moto, never split: look for new ones rarely. On AWS
            # DescribeStream allows 10 calls a second per account.
            rediscover_seconds=10.0 if on_moto else 1.0,
            # Only moto needs it (see StreamReader): on AWS an iterator stays
            # good. Every 4th empty poll reads moto's shard afresh.
            reanchor_after=4 if on_moto else 0,
            on_batch=batch_line if verbose else None,
            checkpoint=checkpoint,
        )
        if poll_interval is None:
            # AWS allows 5 GetRecords a second per shard, for all readers together.
            poll_interval = 0.025 if on_moto else 0.25
        runner = Runner(feeds, poll_interval,
                        max_interval if max_interval is not None else 0.5,
                        checkpoint=checkpoint)
        for feed in feeds:  # position every handler before saying ready
            runner.offer(feed, feed.reader.read_shards())
    except (BotoCoreError, ClientError, RuntimeError) as exc:
        print(f"devstack streams: {exc}", file=sys.stderr, flush=True)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    names = ", ".join(d.name for feed in feeds for d in feed.dispatchers)
    resumed = " (resumed)" if checkpoint.done else ""
    print(f"devstack streams: tailing {stream_arn} for {names}{resumed}", flush=True)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    runner.run(exit_with_parent=ready_fd is not None)
    return 0
