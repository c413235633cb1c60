"""Test-only faults for the local stack's moto server; off unless DEVSTACK_FAULTS=1.

    POST /_devstack/stall {"seconds": N}   DynamoDB requests hang for N seconds
    POST /_devstack/stall {"seconds": N, "only": "TransactWriteItems"}
                                           only that operation's requests hang
    POST /_devstack/stall {"seconds": 0}   the store answers again at once

A stalled request is not dropped: it waits, then runs when the stall ends, as a
write a slow store accepted late does. A client that timed out meanwhile sees
its write land after all; that is what the browser tests' idempotency checks
need. DynamoDB Streams requests are not held, so the stream runner keeps
reading what the store has already written.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

ENV_FLAG = "DEVSTACK_FAULTS"
STALL_PATH = "/_devstack/stall"
MAX_STALL_SECONDS = 120.0
# X-Amz-Target of the DynamoDB API; Streams calls are "DynamoDBStreams_20120810.*".
DYNAMODB_TARGET = "DynamoDB_20120810."

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(ENV_FLAG, "").strip().lower() in ("1", "true", "yes")


class Stall:
    """Until when DynamoDB requests wait; changes wake every waiting request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self._only: str | None = None
        self._changed = threading.Condition()

    def set(self, seconds: float, only: str | None = None) -> None:
        with self._changed:
            self._until = self._clock() + seconds
            self._only = only
            self._changed.notify_all()

    def holds(self, operation: str) -> bool:
        """Whether a request of `operation` waits (every one, unless the stall names one)."""
        with self._changed:
            return self._only is None or self._only == operation

    def remaining(self) -> float:
        with self._changed:
            return max(0.0, self._until - self._clock())

    def wait(self) -> float:
        """Block while the stall lasts; the seconds waited."""
        started = self._clock()
        with self._changed:
            while (left := self._until - self._clock()) > 0:
                self._changed.wait(timeout=left)
        return self._clock() - started


class FaultApp:
    """WSGI middleware in front of moto: the control path, and the stall itself."""

    def __init__(self, app: WSGIApp, stall: Stall | None = None) -> None:
        self._app = app
        self.stall = stall or Stall()

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STALL_PATH:
            return self._control(environ, start_response)
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target.startswith(DYNAMODB_TARGET) and self.stall.holds(
                target.removeprefix(DYNAMODB_TARGET)):
            self.stall.wait()
        return self._app(environ, start_response)

    def _control(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads(environ["wsgi.input"].read(length))
                seconds = float(body["seconds"])
                only = body.get("only")
                if not 0 <= seconds <= MAX_STALL_SECONDS or not (
                        only is None or isinstance(only, str)):
                    raise ValueError(seconds)
            except (ValueError, KeyError, TypeError):
                return _json(start_response, "400 Bad Request", {
                    "error": f'send {{"seconds": N}}, 0 <= N <= {MAX_STALL_SECONDS:g}, '
                             'and optionally "only": an operation name'})
            self.stall.set(seconds, only)
        return _json(start_response, "200 OK", {"stalledFor": round(self.stall.remaining(), 3)})


def _json(start_response: Callable[..., Any], status: str, body: object) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]
