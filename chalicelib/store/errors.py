"""The one home for AWS errors: every ClientError and connection error is classified here.

Call sites say what they expect, by catching `ConditionFailed` around a
conditional write; everything else is decided once, for every adapter:

    contended     TransactionConflict(Exception), a transaction cancelled as throttled
                  or conflicting: a quick, definite "not applied"  -> StoreContended
    in progress   TransactionInProgress: a call with the same ClientRequestToken is
                  still being applied; only the same call may be sent again
                                                                   -> StillApplying
    busy          throttling, 5xx, timeouts (botocore retried them already)
                                                                   -> StoreUnavailable
    condition     ConditionalCheckFailed, also as a transaction's cancellation reason
                                                                   -> ConditionFailed
    rejected      ValidationException and other 4xx the request itself caused -> RequestRejected
    not found     ResourceNotFoundException (no such table: a misconfiguration) -> RequestRejected
    bug           anything else: the original exception, unchanged

`TransactionConflictException` is what real DynamoDB answers to a plain write
on an item that an in-flight transaction holds; botocore does not retry it,
and moto never raises it (tests/functional/botocore_faults.py does).
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chalicelib.domain import StoreUnavailable

Item = dict[str, Any]


class StoreContended(StoreUnavailable):
    """Another writer held the item and DynamoDB applied nothing: worth retrying
    inside the request (store/retry.py) until its deadline, then a 503."""


class StillApplying(StoreContended):
    """DynamoDB is still applying a transaction with this ClientRequestToken (an
    earlier attempt of this very call): send the same call again, never a new one,
    or the earlier attempt and the new one could both apply."""


class Outcome(enum.Enum):
    IN_PROGRESS = "in progress"
    CONTENDED = "contended"
    BUSY = "busy"
    CONDITION_FAILED = "condition failed"
    REJECTED = "rejected"
    NOT_FOUND = "not found"
    BUG = "bug"


# Error codes that mean "the store did not do it, try again later".
BUSY_CODES = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
})
# Error codes that mean "another writer holds the item; nothing applied": quick answers.
CONTENDED_CODES = frozenset({
    "TransactionConflictException",
})
# A transaction's cancellation reasons that mean the same.
BUSY_REASONS = frozenset({
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "TransactionConflict",
})
REJECTED_CODES = frozenset({"ValidationException", "SerializationException",
                            "ItemCollectionSizeLimitExceededException"})


@dataclass
class ConditionFailed(Exception):
    """A condition did not hold: the expected "someone else got there first".

    `reasons` has one code per action of a transaction ("None" for the ones
    that were fine), or one "ConditionalCheckFailed" for a single write;
    `items` the old item DynamoDB returned for each, when it returned one.
    """

    reasons: tuple[str, ...] = ("ConditionalCheckFailed",)
    items: tuple[Item | None, ...] = (None,)
    cause: str = field(default="", repr=False)
    # botocore sent the call more than once: an earlier attempt may still land
    # (DynamoDB applies a token's transaction once, but only once it succeeded).
    retried: bool = False

    def __str__(self) -> str:
        return self.cause or ", ".join(self.reasons)

    @property
    def item(self) -> Item | None:
        """The old item of a single conditional write (ReturnValuesOnConditionCheckFailure)."""
        return self.items[0] if self.items else None

    def failed(self, index: int) -> bool:
        """Whether the transaction's action at `index` is the one whose condition failed."""
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"

    def item_at(self, index: int) -> Item | None:
        return self.items[index] if index < len(self.items) else None


def _retry_attempts(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)


def resent(exc: BaseException) -> bool:
    """Whether botocore sent the failed call more than once, so that an earlier
    attempt of it may still land: DynamoDB applies a ClientRequestToken's
    transaction once, but only once one attempt succeeded."""
    if isinstance(exc, ConditionFailed):
        return exc.retried
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return _retry_attempts(cause) > 0
    return False


class RequestRejected(Exception):
    """DynamoDB refused the request as malformed or impossible: a bug in the caller."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _reason_codes(exc: ClientError) -> tuple[str, ...]:
    reasons = exc.response.get("CancellationReasons") or []
    return tuple(str(reason.get("Code") or "None") for reason in reasons)


def classify(exc: BaseException) -> Outcome:
    """What an error from a DynamoDB (or any AWS) call means for the caller."""
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        # Network trouble and timeouts only: a parameter or credentials error
        # is a bug or a misconfiguration, and a retry would not help.
        return Outcome.BUSY
    if not isinstance(exc, ClientError):
        return Outcome.BUG
    code = _code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "TransactionInProgressException":
        return Outcome.IN_PROGRESS
    if code in CONTENDED_CODES:
        return Outcome.CONTENDED
    if code in BUSY_CODES or status >= 500:
        return Outcome.BUSY
    if code == "ConditionalCheckFailedException":
        return Outcome.CONDITION_FAILED
    if code == "TransactionCanceledException":
        reasons = set(_reason_codes(exc))
        if reasons & BUSY_REASONS:
            return Outcome.CONTENDED
        if "ConditionalCheckFailed" in reasons:
            return Outcome.CONDITION_FAILED
        return Outcome.REJECTED  # ValidationError, ItemCollectionSizeLimitExceeded...
    if code == "ResourceNotFoundException":
        return Outcome.NOT_FOUND
    if code in REJECTED_CODES:
        return Outcome.REJECTED
    return Outcome.BUG


def _condition_failed(exc: ClientError) -> ConditionFailed:
    retried = _retry_attempts(exc) > 0
    if _code(exc) == "ConditionalCheckFailedException":
        old = exc.response.get("Item")
        return ConditionFailed(items=(old,), cause=str(exc),  # type: ignore[arg-type]
                               retried=retried)
    reasons = exc.response.get("CancellationReasons") or []
    return ConditionFailed(
        reasons=_reason_codes(exc),
        items=tuple(reason.get("Item") for reason in reasons),  # type: ignore[misc]
        cause=str(exc),
        retried=retried,
    )


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run AWS calls; raise what `classify` decides instead of the raw error."""
    try:
        yield
    except (ClientError, BotoConnectionError, HTTPClientError) as exc:
        outcome = classify(exc)
        if outcome is Outcome.IN_PROGRESS and isinstance(exc, ClientError):
            raise StillApplying(_code(exc)) from exc
        if outcome is Outcome.CONTENDED:
            raise StoreContended(_code(exc) if isinstance(exc, ClientError) else "") from exc
        if outcome is Outcome.BUSY:
            name = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise StoreUnavailable(name or "HTTP 5xx") from exc
        if outcome is Outcome.CONDITION_FAILED and isinstance(exc, ClientError):
            raise _condition_failed(exc) from exc
        if outcome in (Outcome.REJECTED, Outcome.NOT_FOUND):
            raise RequestRejected(str(exc)) from exc
        raise
