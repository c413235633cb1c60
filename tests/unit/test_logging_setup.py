"""Structured log lines: the request id they carry and what they leave out."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from chalicelib import logging_setup


def test_the_request_id_is_api_gateways_then_lambdas_then_a_new_one():
    lambda_context = SimpleNamespace(aws_request_id="lambda-id")
    assert logging_setup.request_id({"requestId": "apigw-id"}, lambda_context) == "apigw-id"
    assert logging_setup.request_id({}, lambda_context) == "lambda-id"
    generated = logging_setup.request_id({}, None)
    assert len(generated) == 32 and generated != logging_setup.request_id({}, None)


def test_lines_inside_a_request_carry_its_id_and_lines_after_it_do_not():
    record = logging.LogRecord("chalice-cart", logging.ERROR, __file__, 1, "boom", (), None)
    formatter = logging_setup.JsonFormatter()
    with logging_setup.request_scope({"requestId": "r-1"}, None) as request_id:
        inside = json.loads(formatter.format(record))
    assert request_id == inside["requestId"] == "r-1"
    assert "requestId" not in json.loads(formatter.format(record))


def _access_lines(*calls) -> list[dict]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logging_setup.JsonFormatter().format(record))

    logger = logging.getLogger(logging_setup.ACCESS_LOGGER)
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # as configure() sets it
    try:
        with logging_setup.request_scope({"requestId": "apigw-1"},
                                         SimpleNamespace(aws_request_id="lambda-1")):
            for call in calls:
                call(logger)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return [json.loads(line) for line in lines]


def test_the_access_line_holds_only_facts_about_the_request():
    [entry] = _access_lines(lambda logger: logging_setup.log_request(
        logger, "PUT", "/api/cart/items/{product_id}", 200, 0.0))
    # No level (Lambda reads a line without one as INFO), no logger name or message
    # (the fields say what the line is), no coldStart when warm.
    assert set(entry) == {"requestId", "lambdaRequestId", "method", "route", "status",
                          "durationMs"}
    assert (entry["requestId"], entry["lambdaRequestId"]) == ("apigw-1", "lambda-1")
    assert (entry["method"], entry["route"], entry["status"]) == (
        "PUT", "/api/cart/items/{product_id}", 200)


def test_a_refused_request_names_its_error_code_and_nothing_else_of_the_body():
    assert logging_setup.error_code(409, {"Code": "ConflictError", "Message": "x"}) == \
        "ConflictError"
    assert logging_setup.error_code(400, {"Code": "OutOfStock"}) == "OutOfStock"
    assert logging_setup.error_code(200, {"Code": "ConflictError"}) is None
    assert logging_setup.error_code(404, "<html>not found</html>") is None
    # Never input: a code that is not an identifier is left out.
    assert logging_setup.error_code(400, {"Code": "<script>"}) is None
    assert logging_setup.error_code(400, {"Code": "x" * 65}) is None
    [entry] = _access_lines(lambda logger: logging_setup.log_request(
        logger, "POST", "/api/cart/checkout", 409, 0.0, "ConflictError"))
    assert (entry["status"], entry["errorCode"]) == (409, "ConflictError")


def test_a_requests_metrics_ride_on_its_access_line_as_one_emf_object():
    emf = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
        "Namespace": "ChaliceCart", "Dimensions": [["service"]],
        "Metrics": [{"Name": "AddToCart", "Unit": "Count"}]}]},
        "service": "chalice-cart-dev", "AddToCart": 1}
    [entry] = _access_lines(lambda logger: logging_setup.log_request(
        logger, "POST", "/api/cart/items", 201, 0.0, None, emf))
    assert {k: entry[k] for k in emf} == emf
    assert (entry["route"], entry["status"], entry["requestId"]) == (
        "/api/cart/items", 201, "apigw-1")


def test_api_lines_carry_lambdas_request_id_and_only_the_first_invocation_is_cold(monkeypatch):
    monkeypatch.setattr(logging_setup, "_warm", False)  # a fresh container
    record = logging.LogRecord("chalice-cart", logging.ERROR, __file__, 1, "hi", (), None)
    formatter = logging_setup.JsonFormatter()
    entries = []
    for invocation in ("inv-1", "inv-2"):
        lambda_context = SimpleNamespace(aws_request_id=invocation)
        with logging_setup.request_scope({"requestId": "apigw-" + invocation}, lambda_context):
            entries.append(json.loads(formatter.format(record)))
    assert [(e["requestId"], e["lambdaRequestId"], e.get("coldStart")) for e in entries] == [
        ("apigw-inv-1", "inv-1", True), ("apigw-inv-2", "inv-2", None)]
    outside = json.loads(formatter.format(record))
    assert not {"requestId", "lambdaRequestId", "coldStart"} & set(outside)


def test_a_stream_invocations_lines_carry_lambdas_request_id_once():
    record = logging.LogRecord("chalice-cart.followups", logging.ERROR, __file__, 1, "x", (),
                               None)
    with logging_setup.request_scope(None, SimpleNamespace(aws_request_id="inv-9")):
        entry = json.loads(logging_setup.JsonFormatter().format(record))
    assert entry["requestId"] == "inv-9" and "lambdaRequestId" not in entry
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "ERROR", "chalice-cart.followups", "x")


def test_a_line_is_compact_json_with_no_space_to_pay_for() -> None:
    record = logging.LogRecord("chalice-cart.access", logging.INFO, __file__, 1, "request",
                               None, None)
    record.fields = {"method": "GET", "route": "/api/cart", "status": 200, "durationMs": 1.5}
    line = logging_setup.JsonFormatter().format(record)
    assert line == json.dumps(json.loads(line), separators=(",", ":"))
    assert json.loads(line)["route"] == "/api/cart"
