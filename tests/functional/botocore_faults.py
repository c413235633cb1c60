"""DynamoDB faults and interleavings through botocore's own event hooks: no mock.patch.

moto answers in-process from a `before-send` handler that every client gets.
`Faults` takes that handler's place on one client and, per operation, either
fails the attempt or hands it on to moto. botocore's retry logic sees the
faults exactly as it would see them from DynamoDB, so its standard retry
mode (3 attempts) really runs, and each injected fault is counted.

It also makes moto behave as real DynamoDB does where moto never would:
  - a transaction holds at most 100 actions (ValidationException), always;
  - `during("TransactWriteItems", hook)`: while the hook runs the transaction is
    in flight, and a plain write to one of its items fails with
    TransactionConflictException (another transaction on them: TransactionConflict);
  - `stale()`: an eventually consistent read does not see the items written
    since (by any write: PutItem, UpdateItem, DeleteItem, TransactWriteItems,
    BatchWriteItem; GetItem answers no item, Query and BatchGetItem leave them
    out) until `catch_up()`, as a lagging replica would;
  - "late": a store stalled past the SDK's read timeout. The attempt times
    out for botocore (which re-sends it) and is applied `late_seconds` later
    all the same, as the requests queued in a SIGSTOPped server land once it
    resumes: a retry may land before or after it;
  - `chaos(seed, rate)`: every attempt of a DynamoDB call meets a fault drawn
    with a fixed seed (throttling, 5xx, timeouts, lost responses, late writes,
    cancelled transactions) with probability `rate`: for history-checking runs.
  - `throttle(prefix, times)`: writes to items whose partition key starts with
    `prefix` are throttled (a hot key): ProvisionedThroughputExceededException,
    or a transaction cancelled with ThrottlingError for that action.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
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
TIMEOUTS = ("connect-timeout", "response-lost", "late")
# DynamoDB's way of saying a transaction was throttled: not retried by botocore.
CANCELLED = "transaction-throttled"
# Another transaction (or a plain write) held one of its items: not retried either.
CONFLICTED = "transaction-conflict"
KINDS = (*ERRORS, *TIMEOUTS, CANCELLED, CONFLICTED)
# The faults botocore retries that never reach the table.
NOTHING_APPLIED = (*ERRORS, "connect-timeout")


def error_response(url: str, code: str, status: int, **extra: Any) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                       "message": f"injected {code}", **extra})
    headers = {"Content-Type": "application/x-amz-json-1.0",
               "x-amzn-RequestId": "injected-fault"}
    return AWSResponse(url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


Hook = Callable[[], None]
Key = tuple[str, str]
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
BATCH_WRITE = "BatchWriteItem"
READS = ("GetItem", "Query", "Scan", "BatchGetItem")
TRANSACTION_LIMIT = 100


def _key(cell: dict[str, Any]) -> Key:
    return cell["pk"]["S"], cell["sk"]["S"]


def request_keys(operation: str, body: dict[str, Any]) -> list[Key]:
    """The items a request names, in order (one per action of a transaction)."""
    if operation in (*WRITES, "GetItem"):
        return [_key(body.get("Key") or body["Item"])]
    if operation == "TransactWriteItems":
        keys = []
        for action in body["TransactItems"]:
            part = next(iter(action.values()))
            keys.append(_key(part.get("Key") or part["Item"]))
        return keys
    if operation == "BatchGetItem":
        return [_key(k) for table in body["RequestItems"].values() for k in table["Keys"]]
    if operation == BATCH_WRITE:
        return [_key(next(iter(request.values())).get("Key")
                     or next(iter(request.values()))["Item"])
                for table in body["RequestItems"].values() for request in table]
    return []


def json_response(url: str, payload: dict[str, Any]) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "stale"}
    return AWSResponse(url, 200, headers, MockRawResponse(json.dumps(payload)))  # type: ignore[arg-type]


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
        self._during: dict[str, list[Hook]] = {}
        self._in_flight: set[Key] = set()
        self._stale = False
        self._fresh: set[Key] = set()
        self._apart: tuple[str, ...] = ()
        self._hot: dict[str, int] = {}
        self._serial: threading.Lock | None = None
        self._lock = threading.Lock()
        self._chaos: tuple[random.Random, float, tuple[str, ...]] | None = None
        self.late_seconds = 0.3
        self._late: list[threading.Thread] = []
        self.late_errors: list[Exception] = []

    def __enter__(self) -> Faults:
        events = self._client.meta.events
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.settle()
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
        with self._lock:
            self._plan.clear()
            self._always.clear()
            self._chaos = None

    def chaos(self, seed: int, rate: float,
              kinds: tuple[str, ...] = (*KINDS,)) -> Faults:
        """Each DynamoDB attempt meets one of `kinds` with probability `rate` (seeded)."""
        self._chaos = (random.Random(seed), rate, kinds)
        return self

    def settle(self) -> None:
        """Wait until every late write has landed."""
        while True:
            with self._lock:
                pending = list(self._late)
                self._late.clear()
            if not pending:
                return
            for thread in pending:
                thread.join()
            assert not self.late_errors, self.late_errors

    def _draw(self, operation: str) -> str | None:
        with self._lock:
            queued = self._plan.get(operation)
            if queued:
                return queued.pop(0)
            if operation in self._always:
                return self._always[operation]
            if self._chaos is None or operation not in (*WRITES, *READS,
                                                       "TransactWriteItems", BATCH_WRITE):
                return None
            rng, rate, kinds = self._chaos
            if rng.random() >= rate:
                return None
            usable = [k for k in kinds if operation == "TransactWriteItems"
                      or k not in (CANCELLED, CONFLICTED)]
            return rng.choice(usable)

    def before(self, operation: str, hook: Hook) -> Faults:
        """Run hook once, just before the next attempt of the operation reaches the table."""
        self._before.setdefault(operation, []).append(hook)
        return self

    def after(self, operation: str, hook: Hook) -> Faults:
        """Run hook once, after the next attempt is applied and before its answer returns."""
        self._after.setdefault(operation, []).append(hook)
        return self

    def during(self, operation: str, hook: Hook) -> Faults:
        """Run hook once while the next attempt is in flight: its items are held."""
        self._during.setdefault(operation, []).append(hook)
        return self

    def serialize(self) -> Faults:
        """Let threads share the client: moto, not thread-safe, answers one call at a time."""
        self._serial = threading.Lock()
        return self

    def stale(self, apart: tuple[str, ...] = ()) -> Faults:
        """From now on, eventually consistent reads miss the items written since.

        Items whose partition key starts with one of `apart` are read as written:
        for an item that existed before (a stock shard a checkout took from), a
        lagging replica shows its older value, never no item, which this layer
        cannot show.
        """
        self._stale = True
        self._apart = apart
        return self

    def catch_up(self) -> Faults:
        """The replicas catch up (within a second, in DynamoDB): recent writes show."""
        self._fresh.clear()
        return self

    def throttle(self, pk_prefix: str, times: int = 1) -> Faults:
        """Throttle the next `times` writes to items under partition keys with the prefix."""
        self._hot[pk_prefix] = self._hot.get(pk_prefix, 0) + times
        return self

    def _realism(self, request: Any, operation: str) -> AWSResponse | None:
        """What real DynamoDB answers here and moto would not; None to go on."""
        if operation not in (*WRITES, *READS, "TransactWriteItems"):
            return None
        body = json.loads(request.body or b"{}")
        keys = request_keys(operation, body)
        if operation == "TransactWriteItems" and len(keys) > TRANSACTION_LIMIT:
            self.injected.append((operation, "transaction-limit"))
            return error_response(
                request.url, "ValidationException", 400,
                message=f"Member must have length less than or equal to {TRANSACTION_LIMIT}")
        if operation in WRITES and set(keys) & self._in_flight:
            self.injected.append((operation, "in-flight-transaction"))
            return error_response(request.url, "TransactionConflictException", 400)
        if operation == "TransactWriteItems" and set(keys) & self._in_flight:
            self.injected.append((operation, CONFLICTED))
            reasons = [{"Code": "TransactionConflict" if k in self._in_flight else "None"}
                       for k in keys]
            return error_response(request.url, "TransactionCanceledException", 400,
                                  CancellationReasons=reasons)
        hot = [p for p, left in self._hot.items() if left > 0
               and any(pk.startswith(p) for pk, _ in keys)]
        if hot and operation not in READS:
            self._hot[hot[0]] -= 1
            self.injected.append((operation, f"hot-key {hot[0]}"))
            if operation != "TransactWriteItems":
                return error_response(request.url, "ProvisionedThroughputExceededException", 400)
            reasons = [{"Code": "ThrottlingError" if pk.startswith(hot[0]) else "None"}
                       for pk, _ in keys]
            return error_response(request.url, "TransactionCanceledException", 400,
                                  CancellationReasons=reasons)
        return None

    def _stale_read(self, operation: str, body: dict[str, Any],
                    response: AWSResponse) -> AWSResponse:
        """The answer of a replica that has not seen the fresh items yet."""
        consistent = body.get("ConsistentRead") or any(
            t.get("ConsistentRead") for t in body.get("RequestItems", {}).values())
        if not self._stale or consistent or response.status_code != 200:
            return response
        payload = json.loads(response.content)
        # A projection may leave the partition key out: a Query names it.
        pk = body.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")

        def fresh(item: dict[str, Any]) -> bool:
            return (item.get("pk", {}).get("S", pk), item.get("sk", {}).get("S", "")) \
                in self._fresh

        if operation == "GetItem" and "Item" in payload and fresh(payload["Item"]):
            del payload["Item"]
        if "Items" in payload:
            payload["Items"] = [i for i in payload["Items"] if not fresh(i)]
            payload["Count"] = len(payload["Items"])
        for table, items in payload.get("Responses", {}).items():
            payload["Responses"][table] = [i for i in items if not fresh(i)]
        if payload == json.loads(response.content):
            return response
        self.injected.append((operation, "stale-read"))
        return json_response(response.url, payload)

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.attempts.append(operation)
        real = self._realism(request, operation)
        if real is not None:
            return real
        kind = self._draw(operation)
        if kind is not None:
            with self._lock:
                self.injected.append((operation, kind))
        if kind in ERRORS:
            code, status = ERRORS[kind]
            return error_response(request.url, code, status)
        if kind == "connect-timeout":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if kind in (CANCELLED, CONFLICTED):
            count = len(json.loads(request.body)["TransactItems"])
            reason = "ThrottlingError" if kind == CANCELLED else "TransactionConflict"
            return error_response(request.url, "TransactionCanceledException", 400,
                                  CancellationReasons=[{"Code": reason}] * count)
        hooks = self._before.pop(operation, [])
        for hook in hooks:
            hook()
        body = json.loads(request.body or b"{}")
        keys = request_keys(operation, body)
        held = self._during.pop(operation, [])
        if held:
            self._in_flight.update(keys)
            try:
                for hook in held:
                    hook()
            finally:
                self._in_flight.difference_update(keys)
        if kind == "late":
            self._land_late(operation, keys, event_name, request, kwargs)
            raise ReadTimeoutError(endpoint_url=request.url)
        response = self._apply(operation, keys, event_name, request, kwargs)
        if operation in READS and response is not None:
            response = self._stale_read(operation, body, response)
        for hook in self._after.pop(operation, []):
            hook()
        if kind == "response-lost":
            raise ReadTimeoutError(endpoint_url=request.url)
        return response

    def _apply(self, operation: str, keys: list[Key], event_name: str, request: Any,
               kwargs: dict[str, Any]) -> AWSResponse | None:
        with self._serial or contextlib.nullcontext():
            response = botocore_stubber(event_name=event_name, request=request, **kwargs)
        if operation in (*WRITES, "TransactWriteItems", BATCH_WRITE) and self._stale:
            self._fresh.update(k for k in keys if not k[0].startswith(self._apart or ("\0",)))
        return response

    def _land_late(self, operation: str, keys: list[Key], event_name: str, request: Any,
                   kwargs: dict[str, Any]) -> None:
        """Apply the attempt `late_seconds` from now, whatever botocore does meanwhile."""
        headers = HTTPHeaders()
        for name, value in request.headers.items():
            headers[name] = value
        frozen = AWSPreparedRequest(request.method, request.url, headers, request.body,
                                    stream_output=False)

        def land() -> None:
            time.sleep(self.late_seconds)
            try:
                self._apply(operation, keys, event_name, frozen, kwargs)
            except Exception as exc:  # a test should fail on it, not a thread die silently
                self.late_errors.append(exc)

        thread = threading.Thread(target=land, daemon=True)
        with self._lock:
            self._late.append(thread)
        thread.start()


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
