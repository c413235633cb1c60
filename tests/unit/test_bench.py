"""The benchmark's own arithmetic and its runner: DynamoDB's billing rules, the report.

None of these assert a timing: `make bench` measures, the tests check the measuring.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from bench.__main__ import main, render
from bench.calls import Call, UnitModel, item_size, read_units, write_units
from bench.common import Section, Table, percentile
from bench.cost import lambda_duration, per_million


class FakeReader:
    """A get_item that answers from a dict keyed by (pk, sk)."""

    def __init__(self, items: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.items = items

    def get_item(self, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        item = self.items.get((Key["pk"]["S"], Key["sk"]["S"]))
        return {"Item": item} if item else {}


def test_item_size_counts_attribute_names_and_utf8_values() -> None:
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert item_size({"n": {"S": "é"}}) == 1 + 2


def test_a_number_costs_one_byte_per_two_significant_digits_plus_one() -> None:
    assert item_size({"q": {"N": "12345"}}) == 1 + 3 + 1
    assert item_size({"q": {"N": "1000"}}) == 1 + 1 + 1  # trailing zeros are trimmed


def test_lists_and_maps_cost_three_bytes_plus_one_per_element() -> None:
    nested = {"l": {"L": [{"S": "ab"}, {"BOOL": True}]}}
    assert item_size(nested) == 1 + 3 + (1 + 2) + (1 + 1)
    mapped = {"m": {"M": {"k": {"S": "v"}}}}
    assert item_size(mapped) == 1 + 3 + (1 + 1 + 1)


@pytest.mark.parametrize("size, units", [(0, 1), (1024, 1), (1025, 2), (3000, 3)])
def test_writes_bill_one_unit_per_started_kilobyte(size: int, units: int) -> None:
    assert write_units(size) == units


def test_reads_bill_four_kilobytes_per_unit_and_half_when_eventually_consistent() -> None:
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(100, consistent=False) == 0.5


def test_an_update_bills_the_larger_of_the_item_before_and_after() -> None:
    small = {"pk": {"S": "CART#a"}, "sk": {"S": "LINE#x"}}
    big = {**small, "blob": {"S": "x" * 1500}}
    reader = FakeReader({("CART#a", "LINE#x"): small})
    model = UnitModel(reader)
    params = {"TableName": "t", "Key": {"pk": {"S": "CART#a"}, "sk": {"S": "LINE#x"}}}
    call = Call("UpdateItem", params, before=model.snapshot(params, "UpdateItem"))
    reader.items[("CART#a", "LINE#x")] = big
    assert model.units(call) == (0.0, 2.0)


def test_a_transaction_bills_every_item_twice() -> None:
    key = {"pk": {"S": "CART#a"}, "sk": {"S": "LINE#x"}}
    params = {"TransactItems": [
        {"Put": {"TableName": "t", "Item": {**key, "sk": {"S": "ORDER#1"}}}},
        {"Delete": {"TableName": "t", "Key": key}},
    ]}
    reader = FakeReader({("CART#a", "LINE#x"): dict(key)})
    model = UnitModel(reader)
    call = Call("TransactWriteItems", params,
                before=model.snapshot(params, "TransactWriteItems"))
    del reader.items[("CART#a", "LINE#x")]
    assert model.units(call) == (0.0, 4.0)


def test_a_query_bills_the_summed_size_of_what_it_read() -> None:
    items = [{"pk": {"S": "x" * 3000}}, {"pk": {"S": "y" * 3000}}]
    call = Call("Query", {"ConsistentRead": True}, response={"Items": items})
    assert UnitModel(FakeReader({})).units(call) == (2.0, 0.0)


def test_percentile_returns_an_observed_value() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([3.0], 99) == 3.0


def test_lambda_duration_slows_cpu_to_the_memory_share_and_rounds_up_to_a_millisecond() -> None:
    # 1 ms of CPU at 128 MB is 1769/128 ms; one DynamoDB round trip adds 5 ms.
    assert lambda_duration(0.001, 1, 128) == 0.019
    assert lambda_duration(0.001, 0, 1769) == 0.001


def test_a_million_cheap_calls_cost_the_request_price_plus_their_units() -> None:
    cost = per_million(0.010, 128, rru=1, wru=0)
    assert cost["lambda_requests"] == pytest.approx(0.20)
    assert cost["dynamodb"] == pytest.approx(0.125)
    assert cost["lambda_compute"] == pytest.approx(1_000_000 * 0.010 * 0.125 * 0.0000166667)


def test_the_report_states_machine_date_command_and_each_section() -> None:
    done = Section("cold_start", "3. Cold start", "≤ 1.15x", result="0.5x: holds")
    done.tables.append(Table(["a", "b"], [["1", "2"]]))
    broken = Section("load", "6. Load", "0 errors", error="Traceback...\nRuntimeError: boom\n")
    text = render([done, broken], datetime.datetime(2026, 1, 2, 3, 4), 12.0, "make bench",
                  ["- Machine: test box"])
    assert "2026-01-02 03:04 UTC" in text
    assert "`make bench`" in text
    assert "- Machine: test box" in text
    assert "| 1 | 2 |" in text
    assert "crashed: RuntimeError: boom" in text


def test_a_crashing_section_is_reported_and_makes_the_run_fail(
        capsys: pytest.CaptureFixture[str]) -> None:
    # The cost model needs sections 1 and 2; alone, it crashes with a reason.
    assert main(["--only", "cost", "--no-write"]) == 1
    out = capsys.readouterr()
    assert "needs the results of sections (1) and (2)" in out.out
    assert "crashed: cost" in out.err
