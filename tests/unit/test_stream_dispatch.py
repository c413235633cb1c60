"""The stream runner's delivery rules, with a fake handler and a fake clock (no IO)."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.dispatch import WHOLE_BATCH, BatchDispatcher, Parked, first_failure


def record(sequence: int) -> dict[str, Any]:
    return {"eventID": f"e{sequence}", "dynamodb": {"SequenceNumber": str(sequence)}}


def failures(*sequences: int) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": str(s)} for s in sequences]}


class FakeHandler:
    """Fails the records in `poison` (partial-batch response) or raises on `explode`."""

    def __init__(self, poison: set[int] | None = None, explode: set[int] | None = None,
                 heal_after: int | None = None) -> None:
        self.poison = poison or set()
        self.explode = explode or set()
        self.heal_after = heal_after
        self.batches: list[list[int]] = []
        self.processed: list[int] = []  # records before the first failure of each batch

    def __call__(self, batch: list[dict[str, Any]]) -> Any:
        sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in batch]
        self.batches.append(sequences)
        if self.heal_after is not None and len(self.batches) > self.heal_after:
            self.processed.extend(sequences)
            return None
        if self.explode & set(sequences):
            raise RuntimeError("boom")
        failed = [s for s in sequences if s in self.poison]
        self.processed.extend(s for s in sequences if not failed or s < failed[0])
        return failures(*failed)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def dispatcher(handler: FakeHandler, parked: list[Parked], clock: Clock,
               **options: Any) -> BatchDispatcher:
    settings: dict[str, Any] = {"batch_size": 10, "max_attempts": 3, "retry_delay": 0.1}
    settings.update(options)
    return BatchDispatcher("cart_summary", handler, parked.append, clock=clock, **settings)


def drain(d: BatchDispatcher, clock: Clock, steps: int = 50) -> None:
    for _ in range(steps):
        clock.now += 1.0
        d.step()


def test_a_batch_without_failures_is_done_once() -> None:
    handler, parked, clock = FakeHandler(), [], Clock()
    d = dispatcher(handler, parked, clock)
    d.offer([record(1), record(2), record(3)])

    drain(d, clock)

    assert handler.batches == [[1, 2, 3]]
    assert d.pending == 0 and parked == []


def test_batches_hold_at_most_batch_size_records_in_order() -> None:
    handler, parked, clock = FakeHandler(), [], Clock()
    d = dispatcher(handler, parked, clock, batch_size=2)
    d.offer([record(n) for n in range(1, 6)])

    drain(d, clock)

    assert handler.batches == [[1, 2], [3, 4], [5]]


def test_a_partial_failure_retries_from_the_first_failed_record() -> None:
    handler, parked, clock = FakeHandler(poison={3}, heal_after=1), [], Clock()
    d = dispatcher(handler, parked, clock)
    d.offer([record(n) for n in range(1, 6)])

    drain(d, clock)

    assert handler.batches == [[1, 2, 3, 4, 5], [3, 4, 5]]
    assert parked == []


def test_the_retry_starts_at_the_lowest_failure_whatever_order_they_are_reported_in() -> None:
    batch = [record(n) for n in range(1, 6)]

    assert first_failure(batch, failures(4, 2)) == 1


def test_a_record_that_keeps_failing_is_parked_and_the_rest_go_on() -> None:
    handler, parked, clock = FakeHandler(poison={2}), [], Clock()
    d = dispatcher(handler, parked, clock)
    d.offer([record(1), record(2), record(3)])

    drain(d, clock)

    assert [p.record["eventID"] for p in parked] == ["e2"]
    assert parked[0].attempts == 3 and parked[0].handler == "cart_summary"
    assert handler.batches == [[1, 2, 3], [2, 3], [2, 3], [3]]
    assert d.pending == 0


def test_no_record_is_skipped_or_lost() -> None:
    handler, parked, clock = FakeHandler(poison={2, 5}, explode={7}), [], Clock()
    d = dispatcher(handler, parked, clock, batch_size=4)
    d.offer([record(n) for n in range(1, 10)])

    drain(d, clock, steps=200)

    parked_sequences = {int(p.record["dynamodb"]["SequenceNumber"]) for p in parked}
    assert parked_sequences == {2, 5, 7}
    assert set(handler.processed) | parked_sequences == set(range(1, 10))
    assert d.pending == 0


def test_an_exception_fails_the_whole_batch_and_bisects_to_the_bad_record() -> None:
    handler, parked, clock = FakeHandler(explode={3}), [], Clock()
    d = dispatcher(handler, parked, clock)
    d.offer([record(n) for n in range(1, 5)])

    drain(d, clock)

    assert [p.record["eventID"] for p in parked] == ["e3"]
    assert parked[0].error == "RuntimeError: boom"
    assert handler.batches[:3] == [[1, 2, 3, 4], [1, 2], [3, 4]]
    assert handler.batches[-1] == [4]


@pytest.mark.parametrize("response", [
    failures(99),                                   # not in the batch
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"wrongKey": "1"}]},
])
def test_an_unusable_failure_report_fails_the_whole_batch(response: dict[str, Any]) -> None:
    assert first_failure([record(1), record(2)], response) == WHOLE_BATCH


@pytest.mark.parametrize("response", [
    None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, "ok",
])
def test_an_empty_or_missing_failure_report_is_success(response: Any) -> None:
    assert first_failure([record(1)], response) is None


def test_a_retry_waits_for_its_backoff() -> None:
    handler, parked, clock = FakeHandler(poison={1}), [], Clock()
    d = dispatcher(handler, parked, clock, retry_delay=0.5)
    d.offer([record(1)])

    assert d.step() is True
    clock.now += 0.2
    assert d.step() is False
    clock.now += 0.4
    assert d.step() is True
    assert len(handler.batches) == 2


def test_the_batching_window_waits_for_a_fuller_batch() -> None:
    handler, parked, clock = FakeHandler(), [], Clock()
    d = dispatcher(handler, parked, clock, batch_size=3, window_seconds=2.0)
    d.offer([record(1)])

    assert d.step() is False
    d.offer([record(2), record(3)])
    assert d.step() is True  # full before the window closed
    d.offer([record(4)])
    clock.now += 2.0
    assert d.step() is True
    assert handler.batches == [[1, 2, 3], [4]]


def test_reading_stops_while_a_full_batch_is_pending() -> None:
    d = dispatcher(FakeHandler(), [], Clock(), batch_size=2)
    d.offer([record(1)])
    assert d.wants_records()
    d.offer([record(2)])
    assert not d.wants_records()
