"""Deliver one handler's stream records the way Lambda's event source mapping does.

No IO here: the runner gives a dispatcher an `invoke` callable (the handler)
and a `park` callable (where a hopeless record goes), and feeds it records in
stream order. The rules, from Lambda's DynamoDB stream semantics:

- records go out in order, at most `batch_size` at a time, after waiting up
  to `window_seconds` for a fuller batch;
- a batch succeeds when the handler returns nothing, an empty or missing
  `batchItemFailures`, or no failures;
- a partial-batch response retries from the first failed record: the records
  before it are done, nothing after it is skipped;
- an exception, or a failure whose `itemIdentifier` is empty or not in the
  batch, fails the whole batch; the retry halves the batch (bisect) so a bad
  record ends up alone;
- a record that is still first to fail after `max_attempts` tries is parked
  (handed to `park`, never dropped) and delivery goes on after it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
Invoke = Callable[[list[Record]], Any]


@dataclass(frozen=True)
class Parked:
    """A record given up on, and why."""

    handler: str
    record: Record
    attempts: int
    error: str


Park = Callable[[Parked], None]
WHOLE_BATCH = -1


@dataclass(frozen=True)
class Batch:
    """What one invocation did: for the runner's per-batch log line."""

    handler: str
    records: int
    outcome: str  # "ok", "retry from <seq>", "bisect to <n>", "parked <seq>"
    milliseconds: float


OnBatch = Callable[[Batch], None]


def sequence_number(record: Record) -> str:
    return str(record.get("dynamodb", {}).get("SequenceNumber", ""))


def first_failure(batch: list[Record], response: Any) -> int | None:
    """Index of the first failed record; None for success, WHOLE_BATCH if unusable."""
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    positions = {sequence_number(record): index for index, record in enumerate(batch)}
    indexes = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or str(identifier) not in positions:
            return WHOLE_BATCH
        indexes.append(positions[str(identifier)])
    return min(indexes)


class BatchDispatcher:
    """One handler's position in the stream: pending records and retry state."""

    def __init__(self, name: str, invoke: Invoke, park: Park, *, batch_size: int,
                 window_seconds: float = 0.0, max_attempts: int = 3,
                 retry_delay: float = 0.1,
                 clock: Callable[[], float] = time.monotonic,
                 on_batch: OnBatch | None = None,
                 on_done: Callable[[list[Record]], None] | None = None) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")
        self.name = name
        self.batch_size = batch_size
        self._invoke = invoke
        self._park = park
        self._window = window_seconds
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._clock = clock
        self._pending: deque[Record] = deque()
        self._limit = batch_size
        self._attempts = 0  # failures so far with the current head record first to fail
        self._last_error = ""
        self._not_before = 0.0
        self._first_seen = 0.0
        self._on_batch = on_batch
        self.on_done = on_done
        self.delivered = 0
        self.parked = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def oldest(self) -> Record | None:
        """The first record not done yet (the handler's position), if any."""
        return self._pending[0] if self._pending else None

    def wants_records(self) -> bool:
        """Read more only while a batch is not yet full: the reader is the position."""
        return len(self._pending) < self.batch_size

    def offer(self, records: Iterable[Record]) -> None:
        if not self._pending:
            self._first_seen = self._clock()
        self._pending.extend(records)

    def due(self) -> bool:
        if not self._pending:
            return False
        now = self._clock()
        if now < self._not_before:
            return False
        if self._attempts or self._limit < self.batch_size:
            return True  # a retry does not wait for the window again
        full = len(self._pending) >= self.batch_size
        return full or now - self._first_seen >= self._window

    def step(self) -> bool:
        """Deliver one batch if one is due; True when something was delivered."""
        if not self.due():
            return False
        batch = [self._pending[i] for i in range(min(self._limit, len(self._pending)))]
        started = time.perf_counter()
        try:
            failed = first_failure(batch, self._invoke(batch))
            error = "the handler reported it in batchItemFailures"
        except Exception as exc:  # a handler error fails the whole batch, as in Lambda
            failed = WHOLE_BATCH
            error = f"{type(exc).__name__}: {exc}"
        milliseconds = (time.perf_counter() - started) * 1000
        if failed is None:
            self._done(len(batch))
            self._limit = self.batch_size
            self._attempts = 0
            outcome = "ok"
        elif failed == WHOLE_BATCH and len(batch) > 1:
            self._limit = max(1, len(batch) // 2)
            outcome = f"failed ({error[:120]}); bisect to {self._limit}"
            self._retry_later(error, counted=False)
        else:
            failed = max(failed, 0)
            if failed:
                self._done(failed)  # the records before the first failure are done
                self._attempts = 0
            head = sequence_number(self._pending[0])
            outcome = f"failed at {head} ({error[:120]}); retry from it"
            if self._retry_later(error, counted=True):
                outcome = f"parked {head} after {self._max_attempts} attempts"
        if not self._pending:
            self._first_seen = self._clock()
        if self._on_batch is not None:
            self._on_batch(Batch(self.name, len(batch), outcome, milliseconds))
        return True

    def _done(self, count: int) -> None:
        done = [self._pending.popleft() for _ in range(count)]
        self.delivered += count
        if self.on_done is not None and done:
            self.on_done(done)

    def _retry_later(self, error: str, *, counted: bool) -> bool:
        """Schedule the retry; True when the head record was parked instead."""
        self._last_error = error
        if counted:
            self._attempts += 1
        if self._attempts >= self._max_attempts:
            record = self._pending.popleft()
            self._park(Parked(self.name, record, self._attempts, error))
            self.parked += 1
            self._attempts = 0
            self._limit = self.batch_size
            self._not_before = 0.0
            if self.on_done is not None:
                self.on_done([record])  # parked is past: a restart does not retry it
            return True
        backoff = self._retry_delay * max(1, self._attempts)
        self._not_before = self._clock() + min(backoff, 1.0)
        return False
