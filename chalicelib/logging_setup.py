"""Structured logs: one JSON object per line, each carrying the request id.

Every line inside an invocation also carries Lambda's own request id (the one
in Lambda's REPORT line and X-Ray) and whether the invocation was the first in
its container (a cold start).

Only facts about a request are logged (method, route template, status, duration),
never its headers, cookies, query or body: those carry the cart cookie and
whatever a client chose to send.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

ACCESS_LOGGER = "chalice-cart.access"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_lambda_request_id: ContextVar[str | None] = ContextVar("lambda_request_id", default=None)
_cold_start: ContextVar[bool | None] = ContextVar("cold_start", default=None)
# The first invocation scope in this process is the cold start; a module
# global, because the container (not a request) is what starts cold.
_warm = False


class JsonFormatter(logging.Formatter):
    """A record as one JSON line; `extra={"fields": {...}}` adds named fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "requestId": _request_id.get(),
            "lambdaRequestId": _lambda_request_id.get(),
            "coldStart": _cold_start.get(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            # The type and the frames, not str(exc): it may quote the input.
            exc_type, _, trace = record.exc_info
            entry["error"] = exc_type.__name__ if exc_type else None
            entry["traceback"] = "".join(traceback.format_tb(trace))
        # Compact: every byte is ingested (CloudWatch Logs), and a parser needs no spaces.
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure(app_log: logging.Logger) -> logging.Logger:
    """JSON on Chalice's own handlers; an INFO access logger beside it."""
    formatter = JsonFormatter()
    for handler in app_log.handlers:
        handler.setFormatter(formatter)
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO)
    access.propagate = False
    if not access.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(formatter)
        access.addHandler(handler)
    return access


def request_id(context: dict[str, Any], lambda_context: Any) -> str:
    """API Gateway's id, else the Lambda invocation's, else a new one."""
    for candidate in (context.get("requestId"),
                      getattr(lambda_context, "aws_request_id", None)):
        if isinstance(candidate, str) and candidate:
            return candidate[:64]
    return uuid.uuid4().hex


def lambda_request_id(lambda_context: Any) -> str | None:
    candidate = getattr(lambda_context, "aws_request_id", None)
    return candidate[:64] if isinstance(candidate, str) and candidate else None


def _take_cold_start() -> bool:
    global _warm
    cold, _warm = not _warm, True
    return cold


@contextmanager
def request_scope(context: dict[str, Any] | None, lambda_context: Any) -> Iterator[str]:
    """Stamp every log line written inside with this invocation's ids and cold-start flag."""
    rid = request_id(context or {}, lambda_context)
    rid_token = _request_id.set(rid)
    lambda_token = _lambda_request_id.set(lambda_request_id(lambda_context))
    cold_token = _cold_start.set(_take_cold_start())
    try:
        yield rid
    finally:
        _cold_start.reset(cold_token)
        _lambda_request_id.reset(lambda_token)
        _request_id.reset(rid_token)


def log_request(logger: logging.Logger, method: str, route: str, status: int,
                started: float) -> None:
    """The access line. `started` comes from time.perf_counter()."""
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info("request", extra={"fields": {
        "method": method, "route": route, "status": status, "durationMs": duration_ms,
    }})
