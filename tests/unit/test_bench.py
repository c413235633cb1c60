"""The benchmark's own arithmetic and its runner: DynamoDB's billing rules, the report.

None of these assert a timing: `make bench` measures, the tests check the measuring.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from bench.__main__ import main, render, update
from bench.calls import Call, UnitModel, item_size, read_units, write_units
from bench.common import Section, Table, percentile
from bench.cost import (
    ACCESS_LOG_BYTES,
    PRICES,
    UNCONFIGURED,
    access_log_bytes,
    configured_platform_logs,
    fixed_costs,
    lines,
    platform_log_bytes,
    prod_template,
)
from bench.footprint import Ids, as_dynamodb_emits, passes
from bench.scale import (
    Access,
    Footprint,
    Mapping,
    MappingRun,
    OperationProfile,
    PipelineRun,
    Workload,
    billed_seconds,
    evaluate,
    first_limit,
    goal,
    instance,
    report,
    zipf_weights,
)


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


def test_billed_duration_slows_cpu_to_the_memory_share_and_rounds_up_to_a_millisecond() -> None:
    # 1 ms of CPU at 128 MB is 1769/128 ms; one DynamoDB round trip adds 5 ms.
    fp = Footprint({}, (), [], memory_mb=128, round_trip_s=0.005)
    assert billed_seconds(0.001, 1, fp) == 0.019
    fp.memory_mb = 1769
    assert billed_seconds(0.001, 0, fp) == 0.001


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
    # The cost model needs the scale model's footprint; alone, it crashes with a reason.
    assert main(["--only", "cost", "--no-write"]) == 1
    out = capsys.readouterr()
    assert "needs the results of section (8)" in out.out
    assert "crashed: cost" in out.err


# -- the scale model (bench/scale.py): arithmetic over a hand-made footprint ----------


ONLY_ADDS = Workload(rate=1000.0, mix=(("add", 1.0),), products=4, zipf_s=1.0, carts=100)


def footprint(add: list[Access], stream: list[Access], mappings: int = 1,
              cpu: float = 0.0) -> Footprint:
    """One add per request; one measured run of 100 user writes, 100 records delivered,
    `stream` being what the follow-ups spent over the whole run."""
    op = OperationProfile("add", add, requests=1, cpu_seconds=cpu, records=1, log_bytes=0)
    names = [f"f{i}" for i in range(mappings)]
    runs = [PipelineRun(100, user_writes=100, records=100, mappings={
        name: MappingRun(batches=1, records=100, accesses=list(stream), requests=0)
        for name in names})]
    return Footprint({"add": op}, tuple(Mapping(name) for name in names), runs,
                     memory_mb=1769, round_trip_s=0.0)


def test_zipf_weights_fall_as_a_power_of_the_rank_and_sum_to_one() -> None:
    weights = zipf_weights(4, 1.0)
    assert sum(weights) == pytest.approx(1.0)
    assert weights[0] / weights[1] == pytest.approx(2.0)
    assert weights[0] == pytest.approx(1 / (1 + 1 / 2 + 1 / 3 + 1 / 4))


def test_a_key_naming_a_product_takes_that_products_zipf_share() -> None:
    zipf = zipf_weights(4, 1.0)
    # CATALOG / PRODUCT#<product>: the whole partition takes every pick, the item one share.
    assert instance("CATALOG", "PRODUCT#<product>", 1, zipf, 100, sampled=False) == (
        "", 1.0, "rank 1", zipf[0])
    assert instance("PRODUCT#<product>", "HOLDER#<cart>", 1, zipf, 100, sampled=False) == (
        "rank 1", zipf[0], "rank 1", zipf[0] / 100)
    # A stream batch's access already happened on its product: it lands in full.
    assert instance("PRODUCT#<product>", "COUNT", 3, zipf, 100, sampled=True)[:2] == (
        "rank 3", 1.0)
    assert instance("CART#<cart>", "LINE#<product>", 1, zipf, 100, sampled=False)[1] == 0.01


def test_one_key_taking_every_write_is_the_hottest_and_scales_with_the_rate() -> None:
    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)],
                   stream=[Access("CATALOG", "PRODUCT#<product>", 0, 200, 1)])
    result = evaluate(fp, ONLY_ADDS)
    (pk, name), load = result.hottest_partition
    assert (pk, name) == ("CATALOG", "")
    # 1,000 adds/s, one record each, 2 WCU per record on the one key.
    assert load.wcu == pytest.approx(2000.0)
    assert evaluate(fp, ONLY_ADDS, rate=500.0).hottest_partition[1].wcu == pytest.approx(1000.0)


def test_the_first_limit_is_the_rate_where_a_key_reaches_1000_wcu() -> None:
    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)],
                   stream=[Access("CATALOG", "PRODUCT#<product>", 0, 200, 1)])
    limits = first_limit(fp, ONLY_ADDS)
    name, rate = limits[0]
    assert name == "hottest partition key, writes (1,000 WCU/s)"
    assert rate == pytest.approx(500.0, rel=1e-3)


def test_a_third_reader_on_the_stream_breaks_the_shard_limit_at_any_rate() -> None:
    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)], stream=[],
                   mappings=3)
    limits = dict(first_limit(fp, ONLY_ADDS))
    assert limits["readers per stream shard (2)"] == 0.0
    figures = report(evaluate(fp, ONLY_ADDS), first_limit(fp, ONLY_ADDS))
    assert dict(goal(figures))["at most two readers per shard"] is False


def test_lambda_concurrency_is_rate_times_billed_duration() -> None:
    # 10 ms of CPU at 1,769 MB (one vCPU) is 10 ms billed; 1,000/s x 10 ms = 10.
    fp = footprint(add=[], stream=[], cpu=0.010)
    assert evaluate(fp, ONLY_ADDS).api_concurrency == pytest.approx(10.0)
    # 1,000 concurrent would need 100,000 requests/s: the account throttle comes first.
    assert first_limit(fp, ONLY_ADDS)[0][0].startswith("API Gateway")


def test_a_batch_holds_what_a_shard_gets_between_polls() -> None:
    fp = footprint(add=[], stream=[])
    result = evaluate(fp, ONLY_ADDS, rate=100.0)
    # 100 records/s on one shard, polled 4 times a second: batches of 25.
    assert result.mappings[0].batch == pytest.approx(25.0)
    assert result.mappings[0].batches_per_s == pytest.approx(4.0)


def test_keys_are_patterns_of_the_ids_the_run_made() -> None:
    ids = Ids(products={"zipf-0001": 1}, carts={"c0ffee"}, orders=set())
    assert ids.pattern("CART#c0ffee") == ("CART#<cart>", None)
    assert ids.pattern("PRODUCT#zipf-0001") == ("PRODUCT#<product>", 1)
    assert ids.pattern("IDEMPOTENCY#0f8fad5b-d9cb-469f-a165-70867728950e") == (
        "IDEMPOTENCY#<id>", None)
    assert ids.pattern("CATALOG") == ("CATALOG", None)


def test_the_stream_is_corrected_to_what_dynamodb_emits() -> None:
    keys = {"pk": {"S": "CART#a"}, "sk": {"S": "LINE#x"}}
    same = {"q": {"N": "1"}}
    records = [
        {"eventName": "INSERT", "dynamodb": {"Keys": keys}},
        {"eventName": "INSERT", "dynamodb": {"Keys": keys, "NewImage": same}},
        {"eventName": "MODIFY", "dynamodb": {"Keys": keys, "NewImage": same, "OldImage": same}},
    ]
    assert as_dynamodb_emits(records) == [records[1]]


def test_filter_patterns_deliver_a_record_that_matches_any() -> None:
    patterns = ({"dynamodb": {"Keys": {"sk": {"S": [{"prefix": "LINE#"}]}}}},
                {"eventName": ["INSERT"]})
    line = {"eventName": "MODIFY", "dynamodb": {"Keys": {"sk": {"S": "LINE#x"}}}}
    summary = {"eventName": "MODIFY", "dynamodb": {"Keys": {"sk": {"S": "SUMMARY"}}}}
    assert passes(patterns, line)
    assert not passes(patterns, summary)
    assert passes(None, summary)


def test_the_cost_of_a_million_requests_adds_every_line_at_its_stated_price() -> None:
    # Adds only, 1 WCU each, 10 ms of CPU at 1,024 MB: 1,769/1,024 x 10 ms = 17.3 ms,
    # billed 18; no stream work, no log lines of their own.
    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)], stream=[],
                   cpu=0.010)
    fp.memory_mb = 1024
    fp.round_trip_s = 0.0
    result = evaluate(fp, ONLY_ADDS)
    arm, x86 = lines(fp, ONLY_ADDS, result, "arm64"), lines(fp, ONLY_ADDS, result, "x86_64")
    assert arm["API Gateway (front door)"] == pytest.approx(3.50)
    assert arm["API function: requests"] == pytest.approx(0.20)
    assert arm["API function: duration (GB-s)"] == pytest.approx(
        1_000_000 * 0.018 * PRICES["lambda_gb_s_arm64"].dollars)
    assert x86["API function: duration (GB-s)"] / arm["API function: duration (GB-s)"] == \
        pytest.approx(0.0000166667 / 0.0000133334)
    assert arm["DynamoDB writes (API + follow-ups)"] == pytest.approx(0.625)
    assert arm["stream reads (Lambda trigger)"] == 0.0
    # Logs: declared platform and access-log bytes per request, at $0.50 per GB.
    assert arm["CloudWatch Logs ingestion"] == pytest.approx(
        1_000_000 * (ACCESS_LOG_BYTES + 340 * (1 + result.invocations_per_s / 1000))
        * 0.50 / 1024 ** 3)


def test_the_access_log_line_is_priced_as_each_stages_format_renders_it() -> None:
    # Every variable of both formats has a representative value (else a KeyError).
    sizes = {door: access_log_bytes(door) for door in ("REST", "HTTP API")}
    assert ACCESS_LOG_BYTES == max(sizes.values())
    # The REST line's request id is a UUID, the HTTP API's 16 characters.
    assert sizes["HTTP API"] < sizes["REST"] < 350  # 350: the figure declared before


def test_every_price_names_its_source_and_date() -> None:
    for price in PRICES.values():
        assert price.source and price.looked_up.startswith("20")


def test_lambdas_own_lines_are_priced_as_the_template_configures_them() -> None:
    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)], stream=[],
                   cpu=0.010)
    result = evaluate(fp, ONLY_ADDS)
    handlers = [m.name for m in fp.mappings]
    built = prod_template(handlers)
    configured = configured_platform_logs(built, handlers)
    # prod's functions log JSON with SystemLogLevel WARN: no START, END, REPORT.
    assert configured.api == 0 and result.invocations_per_s > 0
    assert [configured.followup(h) for h in handlers] == [0] * len(handlers)
    assert '"SystemLogLevel": "WARN"' in configured.configured
    quiet = lines(fp, ONLY_ADDS, result, "arm64", platform=configured)
    text = lines(fp, ONLY_ADDS, result, "arm64", platform=UNCONFIGURED)
    per_request = 340 * (1 + result.invocations_per_s / 1000)
    assert text["CloudWatch Logs ingestion"] - quiet["CloudWatch Logs ingestion"] == \
        pytest.approx(1_000_000 * per_request * 0.50 / 1024 ** 3)
    assert quiet["CloudWatch Logs ingestion"] == pytest.approx(
        1_000_000 * ACCESS_LOG_BYTES * 0.50 / 1024 ** 3)
    # A function without the config, or below WARN, writes them.
    assert platform_log_bytes(None) == platform_log_bytes({"LogFormat": "Text"}) == 340
    assert platform_log_bytes({"LogFormat": "JSON", "SystemLogLevel": "INFO"}) == 340
    assert platform_log_bytes({"LogFormat": "JSON", "SystemLogLevel": "WARN"}) == 0
    assert built is not None
    del built["Resources"]["APIHandler"]["Properties"]["LoggingConfig"]
    assert configured_platform_logs(built, handlers).api == 340


def test_fixed_costs_count_what_the_deploy_template_builds() -> None:
    fixed = fixed_costs(prod_template(["process_stream"]), emf_metrics=4)
    assert fixed.metrics == 4
    assert fixed.alarms >= 0  # the template builds
    assert fixed.monthly() == pytest.approx(fixed.alarms * 0.10 + fixed.dashboards * 3.00
                                            + 4 * 0.30)


def test_a_footprint_kept_as_json_gives_the_same_figures() -> None:
    import json

    from bench.scale import footprint_from_json, footprint_to_json

    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)],
                   stream=[Access("CATALOG", "PRODUCT#<product>", 0, 200, 1)], mappings=3)
    kept, facts = footprint_from_json(json.loads(json.dumps(footprint_to_json(fp, {"a": 1}))))
    assert facts == {"a": 1}
    assert report(evaluate(kept, ONLY_ADDS), []) == report(evaluate(fp, ONLY_ADDS), [])


def test_a_numbered_partition_is_one_of_the_shards_seen_and_takes_its_even_share() -> None:
    ids = Ids(products={"zipf-0001": 1})
    assert ids.pattern("POPULARITY#3") == ("POPULARITY#<n>", None)
    ids.pattern("POPULARITY#7")
    assert ids.shards == {"POPULARITY#<n>": {"3", "7"}}
    zipf = zipf_weights(4, 1.0)
    # A counter on shard n of 16: the partition takes 1/16 of the writes, the item
    # (that product on that shard) 1/16 of the product's.
    assert instance("POPULARITY#<n>", "PRODUCT#<product>", 2, zipf, 100, sampled=True,
                    shards=16) == ("one of 16", 1 / 16, "rank 2", 1 / 16)


def test_a_partial_run_replaces_only_its_own_sections_and_summary_rows() -> None:

    first = Section("cold_start", "3. Cold start", "≤ 1.15x", result="0.5x: holds")
    scale = Section("scale", "7. Scale model", "goal", result="old figures")
    text = render([first, scale], datetime.datetime(2026, 1, 2, 3, 4), 12.0, "make bench",
                  ["- Machine: test box", "- Code: commit abc"])
    again = Section("scale", "7. Scale model", "goal", result="new figures")
    updated = update(text, [again], datetime.datetime(2026, 1, 3, 3, 4),
                     "python -m bench --only scale", ["- Code: commit def"])
    assert "new figures" in updated and "old figures" not in updated
    assert "0.5x: holds" in updated
    assert "Sections 7 re-run on 2026-01-03 03:04 UTC" in updated
    assert updated.count("## 7. Scale model") == 1


# -- issue 20: caches, the validation, both front doors, the peer, the flash sale ----

def cached(footprint_: Footprint, name: str, seconds: float, scope: str,
           accesses: list[Access]) -> Footprint:
    from bench.scale import CacheRefill

    footprint_.caches.append(CacheRefill(name, seconds, scope, accesses,
                                         {a.pk: 1.0 for a in accesses}))
    return footprint_


def test_a_process_cache_is_refilled_per_container_and_a_table_cache_once_for_all() -> None:
    from bench.scale import refill_rates

    fp = footprint(add=[], stream=[])
    cached(fp, "counts", 1.0, "process", [Access("COUNTS", "*", 1, 0)])
    cached(fp, "counts snapshot", 2.0, "table", [Access("COUNTS", "SNAPSHOT", 0, 10)])
    # Products read the counts: 500 of them a second over 50 containers is 10 a second
    # each, so a container refills every 1 s + 0.1 s; the fleet looks at the snapshot
    # 50 / 1.1 times a second, so it is summed every 2 s + 1.1 / 50 s.
    mix = Workload(rate=1000.0, mix=(("products", 0.5), ("add", 0.5)))
    rates = {cache.name: per_s for cache, per_s in refill_rates(fp, mix, 1000.0, 50.0)}
    assert rates["counts"] == pytest.approx(50 / 1.1)
    assert rates["counts snapshot"] == pytest.approx(1 / (2 + 1.1 / 50))


def test_the_validation_predicts_a_run_that_does_what_the_footprint_measured() -> None:
    from bench.validate import Measured, Tally, compare, predict, within

    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 4, 1)],
                   stream=[Access("CART#<cart>", "SUMMARY", 0, 100)])
    fp.operations["add"].calls = {"CART#<cart>": 1.0}
    fp.runs[0].mappings["f0"].calls = {"CART#<cart>": 200.0}
    run = Measured(ops={"add": 10}, api={"CART#<cart>": Tally(10, 0, 40)},
                   stream={"CART#<cart>": Tally(20, 0, 10)}, records=10, batches=1,
                   seconds=10.0)
    api, stream = predict(fp, run)
    assert (api["CART#<cart>"].requests, api["CART#<cart>"].wcu) == (10, 40)
    assert (stream["CART#<cart>"].requests, stream["CART#<cart>"].wcu) == (20, 10)
    assert within(compare(api, run.api)) and within(compare(stream, run.stream))
    run.api["CART#<cart>"].wcu = 30
    assert not within(compare(api, run.api))


def test_the_http_api_front_door_costs_a_dollar_a_million_and_changes_nothing_else() -> None:
    fp = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 1, 1)], stream=[])
    result = evaluate(fp, ONLY_ADDS)
    rest = lines(fp, ONLY_ADDS, result, "arm64", "REST")
    http = lines(fp, ONLY_ADDS, result, "arm64", "HTTP API")
    assert (rest["API Gateway (front door)"], http["API Gateway (front door)"]) == (
        pytest.approx(3.50), pytest.approx(1.00))
    assert {k: v for k, v in rest.items() if "front door" not in k} == {
        k: v for k, v in http.items() if "front door" not in k}


def test_the_peer_pays_a_second_api_call_on_every_add_and_update() -> None:
    from bench import peer

    adds = peer.lines(Workload(rate=1000.0, mix=(("add", 1.0),)))
    reads = peer.lines(Workload(rate=1000.0, mix=(("display", 1.0),)))
    assert adds[peer.FRONT_DOOR_LINE] == pytest.approx(2 * 3.50)
    assert reads[peer.FRONT_DOOR_LINE] == pytest.approx(3.50)


def test_a_flash_sale_puts_every_product_access_on_one_product_over_its_stock_shards() -> None:
    from bench.scale import flash_footprint, flash_workload

    checkout = OperationProfile("checkout", [Access("STOCK#<product>#<n>", "STOCK", 0, 2, 1)],
                                requests=1, cpu_seconds=0, records=0, log_bytes=0)
    fp = footprint(add=[], stream=[Access("POPULARITY#<n>", "PRODUCT#<product>", 0, 2, 7)])
    fp.operations["checkout"] = checkout
    fp.shards = {"STOCK#<product>#<n>": 3}
    sale = flash_footprint(fp, stock_shards=10)
    assert sale.shards["STOCK#<product>#<n>"] == 10
    assert {a.rank for r in sale.runs for m in r.mappings.values() for a in m.accesses} == {1}
    wl = flash_workload(Workload())
    (key, _), part = evaluate(sale, wl).hottest_partition
    # 5,000 checkouts/s x 2 WCU over 10 shards
    assert key == "STOCK#<product>#<n>" and part.wcu == pytest.approx(1000, rel=1e-6)


def test_a_flash_sale_prices_its_own_measured_stream_when_the_footprint_has_one() -> None:
    import json

    from bench.scale import flash_footprint, flash_workload, footprint_from_json, footprint_to_json

    # The mix's stream: seven products' counters a batch, one write each. The sale's own:
    # one counter write a batch of 100 records, for the one product's net change.
    fp = footprint(add=[], stream=[Access("POPULARITY#<n>", "PRODUCT#<product>", 0, 1, r)
                                   for r in range(1, 8)])
    fp.operations["checkout"] = OperationProfile("checkout", [], requests=1, cpu_seconds=0,
                                                 records=0, log_bytes=0)
    relabelled = evaluate(flash_footprint(fp, 1), flash_workload(Workload()))
    fp.flash_runs = [PipelineRun(100, user_writes=100, records=100, mappings={
        "f0": MappingRun(batches=1, records=100,
                         accesses=[Access("POPULARITY#<n>", "PRODUCT#<product>", 0, 1, 1)])})]
    kept, _ = footprint_from_json(json.loads(json.dumps(footprint_to_json(fp, {}))))
    assert kept.flash_runs == fp.flash_runs
    measured = evaluate(flash_footprint(kept, 1), flash_workload(Workload()))
    # 10,000 user writes/s, a record each: 100 batches/s, one counter WCU each (not seven)
    assert relabelled.table.wcu == pytest.approx(7 * measured.table.wcu)
    assert measured.table.wcu == pytest.approx(100)


def test_a_partial_run_of_a_new_section_adds_its_summary_row() -> None:

    first = Section("cold_start", "3. Cold start", "≤ 1.15x", result="0.5x: holds")
    text = render([first], datetime.datetime(2026, 1, 2, 3, 4), 12.0, "make bench",
                  ["- Machine: test box", "- Code: commit abc"])
    new = Section("emulated", "9. On the emulator", "side by side", result="1.00x")
    updated = update(text, [new], datetime.datetime(2026, 1, 3, 3, 4),
                     "python -m bench --only emulated", ["- Code: commit def"])
    rows = [line for line in updated.split("\n## ")[0].splitlines() if line.startswith("| ")]
    assert rows[-2:] == ["| 3. Cold start | ≤ 1.15x | 0.5x: holds |",
                         "| 9. On the emulator | side by side | 1.00x |"]
    assert updated.count("## 9. On the emulator") == 1


def test_a_partial_run_puts_a_section_the_report_lacks_in_its_place_by_number() -> None:
    first = Section("cold_start", "3. Cold start", "≤ 1.15x", result="0.5x: holds")
    last = Section("endurance", "12. A day", "flat", result="holds")
    text = render([first, last], datetime.datetime(2026, 1, 2, 3, 4), 12.0, "make bench",
                  ["- Machine: test box", "- Code: commit abc"])
    text = text.replace("- Code: commit abc",
                        "- Code: commit abc\n- Sections 10, 3 re-run on 2026-01-01 with x")
    new = [Section("hot_line", "10. Hot line", "≤ 3x", result="2x"),
           Section("flash_sale", "11. Flash sale", "≤ 50%", result="40%")]
    updated = update(text, new, datetime.datetime(2026, 1, 3, 3, 4),
                     "python -m bench --only hot_line,flash_sale", ["- Code: commit def"])
    titles = [block.split("\n", 1)[0] for block in updated.split("\n## ")[1:]]
    assert titles[:4] == ["3. Cold start", "10. Hot line", "11. Flash sale", "12. A day"]
    rows = [line.split("|")[1].strip() for line in updated.split("\n## ")[0].splitlines()
            if line.startswith("| ") and not line.startswith("| section")]
    assert rows == ["3. Cold start", "10. Hot line", "11. Flash sale", "12. A day"]
    # An older re-run line keeps only the sections not re-run now.
    assert "- Sections 3 re-run on 2026-01-01 with x" in updated
    assert "Sections 10, 11 re-run on 2026-01-03 03:04 UTC" in updated


def test_a_cart_life_of_the_mix_makes_one_write_in_eight_a_new_carts_first_add() -> None:
    wl = Workload()  # 40% writes, 5% checkouts: 8 writes per checkout
    assert wl.cart_life_writes() == pytest.approx(8.0)
    assert wl.first_write_share() == pytest.approx(0.125)
    assert Workload(writes_per_cart=20.0).first_write_share() == pytest.approx(0.05)
    # A first write is an add: the share never exceeds the adds'.
    assert Workload(writes_per_cart=1.0).first_write_share() == pytest.approx(0.25 / 0.40)


def test_the_validation_prices_the_stream_per_user_write_on_summarised_carts() -> None:
    from bench.scale import MappingRun, PipelineRun
    from bench.validate import Measured, predict

    later = MappingRun(batches=1, records=8, accesses=[Access("CART#<cart>", "SUMMARY", 8, 8)],
                       requests=24, calls={"CART#<cart>": 24.0})
    first = MappingRun(batches=1, records=2, accesses=[Access("CART#<cart>", "SUMMARY", 4, 4)],
                       requests=8, calls={"CART#<cart>": 8.0})
    both = MappingRun(batches=2, records=10, accesses=later.accesses + first.accesses,
                      requests=32, calls={"CART#<cart>": 32.0})
    fp = footprint(add=[], stream=[])
    fp.runs = [PipelineRun(10, 10, 10, {"f": both}, 2, {"f": first})]
    run = Measured(ops={"add": 16}, records=40, batches=2)
    _, stream = predict(fp, run)
    # Per user write (16 of them), as `later`'s 8 writes: 1 RCU and 3 requests each.
    assert stream["CART#<cart>"].rcu == pytest.approx(16.0)
    assert stream["CART#<cart>"].requests == pytest.approx(48.0)


def test_the_mix_adds_blend_a_carts_first_add_at_the_workloads_share() -> None:
    from bench.footprint import blend

    assert Workload().first_add_share() == pytest.approx(0.2)  # 1 write in 8, adds 25 of 40
    later = OperationProfile("add", [Access("CART#<cart>", "LINE#<product>", 1, 6)],
                             requests=2, cpu_seconds=0, records=1, log_bytes=0,
                             calls={"CART#<cart>": 2.0})
    first = OperationProfile("add", [Access("CART#<cart>", "LINE#<product>", 2, 13)],
                             requests=5, cpu_seconds=0, records=2, log_bytes=0,
                             calls={"CART#<cart>": 5.0})
    mixed = blend(later, first, 0.2)
    assert sum(a.wcu for a in mixed.accesses) == pytest.approx(6 * 0.8 + 13 * 0.2)
    assert mixed.requests == pytest.approx(2.6)
    assert mixed.calls["CART#<cart>"] == pytest.approx(2.6)


def test_the_write_budget_splits_the_tables_units_and_names_each_items_promise() -> None:
    from bench import write_budget

    # A keyed add of a new line: its record, the line and the header in one transaction
    # (2 WCU each); the stream spends 200 WCU over the run's 100 user writes.
    add = [Access("CART#<cart>", "IDEMPOTENCY#<id>", 0, 2, None),
           Access("CART#<cart>", "LINE#<product>", 1, 2, 1),
           Access("CART#<cart>", "LINES", 0, 2, None)]
    stream = [Access("CART#<cart>", "SUMMARY", 0, 100, None),
              Access("POPULARITY#<n>", "PRODUCT#<product>", 0, 100, 1)]
    fp = footprint(add=add, stream=stream)
    result = evaluate(fp, ONLY_ADDS)
    spent = {w.name: w for w in write_budget.writers(fp, result)}
    assert spent["add"].wru == pytest.approx(6.0)
    assert spent["stream follow-ups"].wru == pytest.approx(2.0)
    assert sum(w.wru for w in spent.values()) == pytest.approx(result.table.wcu / result.rate)
    table, sentence = write_budget.table(list(spent.values()), allowed=4.0)
    text = table.markdown()
    assert "the line cap" in text and "a keyed request's answer" in text
    assert "cart-status's one GetItem" in text and "inCarts, exact" in text
    assert "?" not in text
    assert "8.00 write units per request" in sentence and "4.00 over" in sentence
    # The budget: what the target leaves after every other line, in units at $0.625/M.
    assert write_budget.budget(4.0, total=5.0, writes_dollars=2.5, wru_price=0.625e-6) == \
        pytest.approx(2.4)
    # One item per cart: the line and the header become one write in the transaction
    # with the record (2 + 2); a write of the cart alone needs no transaction (1).
    assert write_budget.one_item_estimate(fp, result, list(spent.values())) == \
        pytest.approx(4.0 + 2.0)
    alone = footprint(add=[Access("CART#<cart>", "LINE#<product>", 0, 2, 1)], stream=[])
    alone_result = evaluate(alone, ONLY_ADDS)
    assert write_budget.one_item_estimate(
        alone, alone_result, write_budget.writers(alone, alone_result)) == pytest.approx(1.0)
