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
    assert json.loads(formatter.format(record))["requestId"] is None


def test_the_access_line_holds_only_facts_about_the_request():
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logging_setup.JsonFormatter().format(record))

    logger = logging.getLogger("test-access")
    logger.setLevel(logging.INFO)
    logger.addHandler(Collect())
    logging_setup.log_request(logger, "PUT", "/api/cart/items/{product_id}", 200, 0.0)
    entry = json.loads(lines[0])
    assert set(entry) == {"level", "logger", "requestId", "lambdaRequestId", "coldStart",
                          "message", "method", "route", "status", "durationMs"}
    assert (entry["method"], entry["route"], entry["status"]) == (
        "PUT", "/api/cart/items/{product_id}", 200)


def test_lines_carry_lambdas_request_id_and_only_the_first_invocation_is_cold(monkeypatch):
    monkeypatch.setattr(logging_setup, "_warm", False)  # a fresh container
    record = logging.LogRecord("chalice-cart", logging.INFO, __file__, 1, "hi", (), None)
    formatter = logging_setup.JsonFormatter()
    entries = []
    for invocation in ("inv-1", "inv-2"):
        lambda_context = SimpleNamespace(aws_request_id=invocation)
        with logging_setup.request_scope({"requestId": "apigw-" + invocation}, lambda_context):
            entries.append(json.loads(formatter.format(record)))
    assert [(e["requestId"], e["lambdaRequestId"], e["coldStart"]) for e in entries] == [
        ("apigw-inv-1", "inv-1", True), ("apigw-inv-2", "inv-2", False)]
    outside = json.loads(formatter.format(record))
    assert (outside["lambdaRequestId"], outside["coldStart"]) == (None, None)


def test_a_line_is_compact_json_with_no_space_to_pay_for() -> None:
    record = logging.LogRecord("chalice-cart.access", logging.INFO, __file__, 1, "request",
                               None, None)
    record.fields = {"method": "GET", "route": "/api/cart", "status": 200, "durationMs": 1.5}
    line = logging_setup.JsonFormatter().format(record)
    assert line == json.dumps(json.loads(line), separators=(",", ":"))
    assert json.loads(line)["route"] == "/api/cart"
