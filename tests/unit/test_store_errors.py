"""The one AWS error classifier: each error code has one meaning, everywhere."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ParamValidationError

from chalicelib.domain import StoreUnavailable
from chalicelib.store import errors
from chalicelib.store.errors import Outcome, classify


def client_error(code: str, status: int = 400, reasons: list[str] | None = None,
                 item: dict | None = None) -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": code},
                      "ResponseMetadata": {"HTTPStatusCode": status}}
    if reasons is not None:
        response["CancellationReasons"] = [
            {"Code": r, **({"Item": item} if item and r == "ConditionalCheckFailed" else {})}
            for r in reasons]
    if item is not None and reasons is None:
        response["Item"] = item
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


@pytest.mark.parametrize("exc, outcome", [
    (client_error("ProvisionedThroughputExceededException"), Outcome.BUSY),
    (client_error("ThrottlingException"), Outcome.BUSY),
    (client_error("RequestLimitExceeded"), Outcome.BUSY),
    (client_error("TransactionConflictException"), Outcome.CONTENDED),
    (client_error("TransactionInProgressException"), Outcome.IN_PROGRESS),
    (client_error("SomethingNew", status=503), Outcome.BUSY),
    (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), Outcome.BUSY),
    (client_error("TransactionCanceledException", reasons=["None", "TransactionConflict"]),
     Outcome.CONTENDED),
    (client_error("TransactionCanceledException",
                  reasons=["ConditionalCheckFailed", "ThrottlingError"]), Outcome.CONTENDED),
    (client_error("ConditionalCheckFailedException"), Outcome.CONDITION_FAILED),
    (client_error("TransactionCanceledException", reasons=["None", "ConditionalCheckFailed"]),
     Outcome.CONDITION_FAILED),
    (client_error("ValidationException"), Outcome.REJECTED),
    (client_error("TransactionCanceledException", reasons=["ValidationError"]),
     Outcome.REJECTED),
    (client_error("ResourceNotFoundException"), Outcome.NOT_FOUND),
    (client_error("AccessDeniedException"), Outcome.BUG),
    (ParamValidationError(report="bad"), Outcome.BUG),
])
def test_each_error_has_one_outcome(exc, outcome):
    assert classify(exc) is outcome


def test_a_busy_error_becomes_store_unavailable():
    with pytest.raises(StoreUnavailable, match="TransactionConflictException"), \
            errors.translated():
        raise client_error("TransactionConflictException")


def test_a_failed_condition_carries_the_old_item():
    old = {"quantity": {"N": "7"}}
    with pytest.raises(errors.ConditionFailed) as caught, errors.translated():
        raise client_error("ConditionalCheckFailedException", item=old)
    assert caught.value.item == old


def test_a_cancelled_transaction_says_which_action_failed():
    old = {"requestHash": {"S": "x"}}
    with pytest.raises(errors.ConditionFailed) as caught, errors.translated():
        raise client_error("TransactionCanceledException",
                           reasons=["None", "ConditionalCheckFailed"], item=old)
    assert not caught.value.failed(0) and caught.value.failed(1)
    assert caught.value.item_at(1) == old and caught.value.item_at(5) is None


def test_a_rejected_request_is_not_taken_for_a_condition():
    with pytest.raises(errors.RequestRejected), errors.translated():
        raise client_error("ValidationException")


def test_an_unknown_error_passes_through_unchanged():
    with pytest.raises(ClientError), errors.translated():
        raise client_error("AccessDeniedException")
