"""Structured logs: one compact JSON object per line, each carrying the request id.

An API request's lines also carry Lambda's own request id (the one in Lambda's
own lines and X-Ray; a stream batch's request id is that one already), and a
line written in a container's first invocation carries `coldStart: true`.

A request writes one line: the access record (method, route template, status,
duration, the error code of a 4xx/5xx) with its metrics as embedded metric
format members in the same object (chalicelib/metrics.py): CloudWatch extracts
the metrics from any JSON line carrying `_aws` and keeps the rest as fields.
Every byte is ingested, so a line leaves out what says nothing: `level` at INFO
(Lambda reads a line without one as INFO), the logger name and message on the
access line (its fields say what it is), and `coldStart` when false.

Only facts about a request are logged, never its headers, cookies, query or
body: those carry the cart cookie and whatever a client chose to send.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

ACCESS_LOGGER = "chalice-cart.access"
# Chalice's error shape names the error in `Code` (ConflictError, OutOfStock, ...): an
# identifier, never input; anything else is left out of the line.
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_lambda_request_id: ContextVar[str | None] = ContextVar("lambda_request_id", default=None)
_cold_start: ContextVar[bool | None] = ContextVar("cold_start", default=None)
# The first invocation scope in this process is the cold start; a module
# global, because the container (not a request) is what starts cold.
_warm = False


class JsonFormatter(logging.Formatter):
    """A record as one JSON line; `extra={"fields": {...}}` adds named fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {}
        if record.levelno != logging.INFO:
            entry["level"] = record.levelname
        access = record.name == ACCESS_LOGGER
        if not access:
            entry["logger"] = record.name
        request = _request_id.get()
        if request is not None:
            entry["requestId"] = request
        invocation = _lambda_request_id.get()
        if invocation is not None:
            entry["lambdaRequestId"] = invocation
        if _cold_start.get():
            entry["coldStart"] = True
        if not access:
            entry["message"] = record.getMessage()
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
    """Stamp every log line written inside with this invocation's ids and cold-start flag.

    `context` is an API request's (its requestContext); without one (a stream batch)
    the request id is Lambda's own, so the lines carry it once.
    """
    rid = request_id(context or {}, lambda_context)
    rid_token = _request_id.set(rid)
    lambda_token = _lambda_request_id.set(
        lambda_request_id(lambda_context) if context is not None else None)
    cold_token = _cold_start.set(_take_cold_start())
    try:
        yield rid
    finally:
        _cold_start.reset(cold_token)
        _lambda_request_id.reset(lambda_token)
        _request_id.reset(rid_token)


def error_code(status: int, body: Any) -> str | None:
    """What a 4xx or 5xx answer calls its error (Chalice's `Code`), else None."""
    code = body.get("Code") if status >= 400 and isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


def log_request(logger: logging.Logger, method: str, route: str, status: int,
                started: float, code: str | None = None,
                metrics: Mapping[str, Any] | None = None) -> None:
    """The request's one line: the access record, then its metrics' EMF members.

    `started` comes from time.perf_counter(); `code` is the error's (error_code).
    """
    fields: dict[str, Any] = {
        "method": method, "route": route, "status": status,
        "durationMs": round((time.perf_counter() - started) * 1000, 1),
    }
    if code is not None:
        fields["errorCode"] = code
    fields.update(metrics or {})
    logger.info("request", extra={"fields": fields})
