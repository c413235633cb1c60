"""Embedded metric format: the document one invocation writes, and when it writes none."""

from __future__ import annotations

import json

from chalicelib import metrics

SETTINGS = metrics.Settings(namespace="ChaliceCart", service="chalice-cart-dev")


def _record(sequence: int, created: float, sk: str = "LINE#kettle",
            event: str = "MODIFY", status: str | None = None) -> dict:
    image = {"status": {"S": status}} if status else {}
    return {"eventName": event, "dynamodb": {
        "SequenceNumber": str(sequence), "ApproximateCreationDateTime": created,
        "Keys": {"pk": {"S": "CART#c1"}, "sk": {"S": sk}}, "NewImage": image}}


def _emit(record) -> list[dict]:
    lines: list[str] = []
    with metrics.invocation(SETTINGS, lines.append, clock=lambda: 1700000000.5) as recorded:
        record(recorded)
    return [json.loads(line) for line in lines]


def test_a_successful_add_writes_one_emf_line_in_the_dashboards_namespace():
    [document] = _emit(lambda m: metrics.record_request(m, "POST", "/api/cart/items", 201))
    assert document == {
        "_aws": {"Timestamp": 1700000000500, "CloudWatchMetrics": [{
            "Namespace": "ChaliceCart", "Dimensions": [["service"]],
            "Metrics": [{"Name": "AddToCart", "Unit": "Count"}]}]},
        "service": "chalice-cart-dev",
        "AddToCart": 1,
    }


def test_failed_requests_and_other_routes_write_nothing():
    assert _emit(lambda m: metrics.record_request(m, "POST", "/api/cart/items", 400)) == []
    assert _emit(lambda m: metrics.record_request(m, "GET", "/api/cart", 200)) == []


def test_every_business_route_has_its_metric():
    names = {metrics.ROUTE_METRICS[(method, route)] for method, route in [
        ("POST", "/api/cart/items"), ("PUT", "/api/cart/items/{product_id}"),
        ("DELETE", "/api/cart/items/{product_id}"), ("POST", "/api/cart/checkout")]}
    assert names == {"AddToCart", "SetQuantity", "RemoveFromCart", "CheckoutsPlaced"}


def test_a_batch_counts_records_before_the_retry_point_as_processed():
    records = [_record(10, 1699999990.0), _record(11, 1699999995.0, "ORDER#o1", "INSERT",
                                                  "PLACED"),
               _record(12, 1699999999.0), _record(13, 1700000000.0)]
    [document] = _emit(lambda m: metrics.record_batch(
        m, records, {"batchItemFailures": [{"itemIdentifier": "12"}]}, now=1700000000.5))
    assert {k: v for k, v in document.items() if k != "_aws"} == {
        "service": "chalice-cart-dev",
        "StreamRecordsProcessed": 2, "StreamRecordsFailed": 2, "OrdersConfirmed": 1,
        # the newest record processed is no. 11, 5.5 s old
        "StreamNewestRecordAgeMs": 5500,
    }
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["StreamNewestRecordAgeMs"] == "Milliseconds"
    assert units["StreamRecordsFailed"] == "Count"


def test_counts_add_up_within_one_invocation():
    def twice(m):
        metrics.record_request(m, "PUT", "/api/cart/items/{product_id}", 200)
        metrics.record_request(m, "PUT", "/api/cart/items/{product_id}", 204)
    [document] = _emit(twice)
    assert document["SetQuantity"] == 2


def test_metrics_are_off_outside_lambda_unless_asked_for():
    assert not metrics.Settings.from_environment({}).enabled
    assert metrics.Settings.from_environment({"AWS_LAMBDA_FUNCTION_NAME": "f"}).enabled
    assert not metrics.Settings.from_environment(
        {"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_METRICS_DISABLED": "true"}).enabled
    local = metrics.Settings.from_environment({"POWERTOOLS_METRICS_DISABLED": "false"})
    assert local.enabled and local.namespace == "ChaliceCart"
    deployed = metrics.Settings.from_environment({
        "AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_SERVICE_NAME": "chalice-cart-prod",
        "POWERTOOLS_METRICS_NAMESPACE": "Shop"})
    assert (deployed.namespace, deployed.service) == ("Shop", "chalice-cart-prod")


def test_a_disabled_invocation_writes_nothing():
    lines: list[str] = []
    with metrics.invocation(metrics.Settings(enabled=False), lines.append) as recorded:
        metrics.record_request(recorded, "POST", "/api/cart/checkout", 201)
    assert lines == []


def test_a_requests_metrics_are_the_emf_members_its_access_line_carries():
    members = metrics.request_members(SETTINGS, "POST", "/api/cart/checkout", 201,
                                      clock=lambda: 1700000000.5)
    assert members == _emit(lambda m: metrics.record_request(
        m, "POST", "/api/cart/checkout", 201))[0]
    # Nothing counted, or metrics off: no members, so the line is the access record alone.
    assert metrics.request_members(SETTINGS, "POST", "/api/cart/checkout", 409) == {}
    assert metrics.request_members(SETTINGS, "GET", "/api/cart", 200) == {}
    assert metrics.request_members(metrics.Settings(enabled=False), "POST",
                                   "/api/cart/checkout", 201) == {}
