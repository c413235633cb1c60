"""DynamoDB faults and interleavings through botocore's own event hooks: no mock.patch.

moto answers in-process from a `before-send` handler that every client gets.
`Faults` takes that handler's place on one client and, per operation, either
fails the attempt or hands it on to moto. botocore's retry logic sees the
faults exactly as it would see them from DynamoDB, so its standard retry
mode (3 attempts) really runs, and each injected fault is counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

# Faults that never reach the table: (error code, HTTP status).
ERRORS = {
    "throughput": ("ProvisionedThroughputExceededException", 400),
    "throttling": ("ThrottlingException", 400),
    "server-error": ("InternalServerError", 500),
    "unavailable": ("ServiceUnavailable", 503),
}
# A connect timeout never reaches the table either; a lost response follows
# a write that moto did apply (a read timeout on the way back).
TIMEOUTS = ("connect-timeout", "response-lost")
# DynamoDB's way of saying a transaction was throttled: not retried by botocore.
CANCELLED = "transaction-throttled"
KINDS = (*ERRORS, *TIMEOUTS, CANCELLED)
# The faults botocore retries that never reach the table.
NOTHING_APPLIED = (*ERRORS, "connect-timeout")


def error_response(url: str, code: str, status: int, **extra: Any) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                       "message": f"injected {code}", **extra})
    headers = {"Content-Type": "application/x-amz-json-1.0",
               "x-amzn-RequestId": "injected-fault"}
    return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


Hook = Callable[[], None]


class Faults:
    """Plan faults per operation; every attempt is recorded, every fault counted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._plan: dict[str, list[str]] = {}
        self._always: dict[str, str] = {}
        self._before: dict[str, list[Hook]] = {}
        self._after: dict[str, list[Hook]] = {}
        self.attempts: list[str] = []
        self.injected: list[tuple[str, str]] = []

    def __enter__(self) -> Faults:
        events = self._client.meta.events
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self)
        return self

    def __exit__(self, *exc: object) -> None:
        events = self._client.meta.events
        events.unregister("before-send", self)
        events.register("before-send", botocore_stubber)

    def fail(self, operation: str, kind: str, times: int = 1) -> Faults:
        """Fail the next `times` attempts of the operation."""
        assert kind in KINDS, kind
        self._plan.setdefault(operation, []).extend([kind] * times)
        return self

    def always(self, operation: str, kind: str) -> Faults:
        assert kind in KINDS, kind
        self._always[operation] = kind
        return self

    def heal(self) -> None:
        self._plan.clear()
        self._always.clear()

    def before(self, operation: str, hook: Hook) -> Faults:
        """Run hook once, just before the next attempt of the operation reaches the table."""
        self._before.setdefault(operation, []).append(hook)
        return self

    def after(self, operation: str, hook: Hook) -> Faults:
        """Run hook once, after the next attempt is applied and before its answer returns."""
        self._after.setdefault(operation, []).append(hook)
        return self

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        self.attempts.append(operation)
        queued = self._plan.get(operation)
        kind = queued.pop(0) if queued else self._always.get(operation)
        if kind is not None:
            self.injected.append((operation, kind))
        if kind in ERRORS:
            code, status = ERRORS[kind]
            return error_response(request.url, code, status)
        if kind == "connect-timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if kind == CANCELLED:
            count = len(json.loads(request.body)["TransactItems"])
            return error_response(request.url, "TransactionCanceledException", 400,
                                  CancellationReasons=[{"Code": "ThrottlingError"}] * count)
        hooks = self._before.pop(operation, [])
        for hook in hooks:
            hook()
        response = botocore_stubber(event_name=event_name, request=request, **kwargs)
        for hook in self._after.pop(operation, []):
            hook()
        if kind == "response-lost":
            raise ReadTimeoutError(endpoint_url=request.url)
        return response


class Exhausted:
    """Every call (or every call of `operations`) fails as botocore fails once its
    retries are spent: a before-call hook answers instead of the table, so
    nothing is written and nothing sleeps between attempts."""

    KINDS = (*ERRORS, "connect-timeout", "read-timeout")

    def __init__(self, client: Any, kind: str, operations: tuple[str, ...] = ()) -> None:
        assert kind in self.KINDS, kind
        self._client = client
        self._kind = kind
        self._operations = operations
        self.injected: list[str] = []

    def __enter__(self) -> Exhausted:
        self._client.meta.events.register_first("before-call.dynamodb", self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.meta.events.unregister("before-call.dynamodb", self)

    def __call__(self, model: Any, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self._operations and model.name not in self._operations:
            return None
        self.injected.append(model.name)
        url = self._client.meta.endpoint_url
        if self._kind == "connect-timeout":
            raise ConnectTimeoutError(endpoint_url=url)
        if self._kind == "read-timeout":
            raise ReadTimeoutError(endpoint_url=url)
        code, status = ERRORS[self._kind]
        parsed = {"Error": {"Code": code, "Message": f"injected {code}"},
                  "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 2}}
        return error_response(url, code, status), parsed
