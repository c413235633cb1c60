"""Retries inside one API request, bounded by an explicit deadline.

A conflict DynamoDB answered quickly (a transaction cancelled because
another writer held an item, or a cart that changed between a checkout's read
and its write) applied nothing, so it is retried here, never answered 409.
The deadline leaves room for one more call at botocore's worst (3 attempts x
(1 s connect + 2 s read) + backoff, under 12 s: runtime.py) inside the API
function's 15 s timeout; past it the answer is a 503 with Retry-After.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain import StoreUnavailable
from chalicelib.store import errors

DEADLINE_SECONDS = 2.5
FIRST_PAUSE_SECONDS = 0.005
MAX_PAUSE_SECONDS = 0.1


class Deadline:
    """Pause between attempts with full jitter; StoreUnavailable once past the deadline."""

    def __init__(self, seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._end = clock() + (DEADLINE_SECONDS if seconds is None else seconds)
        self.attempts = 0

    def pause(self, why: str = "the store is contended") -> None:
        """Wait before the next attempt; StoreUnavailable if it would start past the deadline."""
        cap = min(MAX_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2 ** min(self.attempts, 10))
        self.attempts += 1
        delay = self._jitter() * cap
        if self._clock() + delay >= self._end:
            raise StoreUnavailable(f"{why} past the request's deadline")
        self._sleep(delay)


def transact(client: Any, actions: list[dict[str, Any]], deadline: Deadline | None = None) -> None:
    """One TransactWriteItems, applied at most once.

    Its ClientRequestToken is what makes it so: DynamoDB applies a token's
    transaction once in 10 minutes, so botocore's re-send after a timeout, or an
    attempt that lands late, applies nothing. While DynamoDB is still applying
    it (TransactionInProgress), the same call is sent again, never a new one.
    """
    token = secrets.token_hex(16)
    while True:
        try:
            with errors.translated():
                client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            return
        except errors.StillApplying:
            deadline = deadline or Deadline()
            deadline.pause("the transaction was still being applied")
