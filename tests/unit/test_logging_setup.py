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
    assert set(entry) == {"level", "logger", "requestId", "message", "method", "route",
                          "status", "durationMs"}
    assert (entry["method"], entry["route"], entry["status"]) == (
        "PUT", "/api/cart/items/{product_id}", 200)
