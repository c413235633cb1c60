"""parse_line_change: the clock a follow-up reads from a stream record."""

from __future__ import annotations

from chalicelib.followups import parse_line_change
from chalicelib.services import iso


def record(updated_epoch: float, created_epoch: float) -> dict[str, object]:
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"pk": {"S": "CART#" + "a" * 32}, "sk": {"S": "LINE#kettle"}},
            "NewImage": {"quantity": {"N": "1"}, "updatedAt": {"S": iso(updated_epoch)}},
            "ApproximateCreationDateTime": created_epoch,
            "SequenceNumber": "100",
        },
    }


def test_a_write_whose_record_is_stamped_a_second_later_keeps_the_writes_own_second() -> None:
    # The write set expiresAt from 1798729798; the stream stamped the record a
    # second later. The cart's expiry must follow the write, or its lines and
    # its summary end up one second apart.
    change = parse_line_change(record(1798729798.9, 1798729799.2))
    assert change is not None
    assert change.event_epoch == 1798729798
    assert change.event_time == "2026-12-31T15:09:58.900Z"


def test_a_removal_has_only_the_streams_clock() -> None:
    removal = record(0, 1798729799.2)
    removal["dynamodb"]["NewImage"] = None  # type: ignore[index]
    change = parse_line_change(removal)
    assert change is not None and change.event_epoch == 1798729799
