"""The EMF lines the deployed functions print: one per request, one per stream batch."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app import app
from chalicelib import runtime
from tests.factories import add_body, cookie_from
from tests.functional.botocore_faults import Faults
from tests.functional.conftest import request
from tests.log_capture import Collect, app_lines_on_stdout

SERVICE = "chalice-cart-test"


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        client: Any) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Metrics on, as in Lambda; the EMF documents printed since the last call (a
    request's access line carrying its metrics, a stream batch's metric line)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
    runtime.reset()

    def printed() -> list[dict[str, Any]]:
        lines = capsys.readouterr().out.splitlines()
        return [doc for doc in map(json.loads, filter(None, lines)) if "_aws" in doc]
    with app_lines_on_stdout(app.log):
        yield printed


def _values(document: dict[str, Any]) -> dict[str, Any]:
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ChaliceCart"
    assert directive["Dimensions"] == [["service"]]
    assert document["service"] == SERVICE
    return {m["Name"]: document[m["Name"]] for m in directive["Metrics"]}


def test_each_cart_operation_prints_its_metric(client, emf):
    emf()
    added = request(client, "POST", "/api/cart/items", body=add_body("kettle", 2))
    cookie = cookie_from(added)
    request(client, "PUT", "/api/cart/items/kettle", cookie, {"quantity": 3})
    request(client, "POST", "/api/cart/items", cookie, add_body("espresso-cup", 1))
    request(client, "DELETE", "/api/cart/items/espresso-cup", cookie)
    request(client, "GET", "/api/cart", cookie)
    assert request(client, "POST", "/api/cart/checkout", cookie).status_code == 201
    documents = emf()
    assert [_values(doc) for doc in documents] == [
        {"AddToCart": 1}, {"SetQuantity": 1}, {"AddToCart": 1}, {"RemoveFromCart": 1},
        {"CheckoutsPlaced": 1}]
    # Each is its request's access line: one line a request, metrics included.
    assert [(doc["method"], doc["route"], doc["status"]) for doc in documents] == [
        ("POST", "/api/cart/items", 201), ("PUT", "/api/cart/items/{product_id}", 200),
        ("POST", "/api/cart/items", 201), ("DELETE", "/api/cart/items/{product_id}", 204),
        ("POST", "/api/cart/checkout", 201)]


def test_a_refused_request_counts_nothing(client, emf, capsys):
    emf()
    response = request(client, "POST", "/api/cart/items", body=add_body("kettle", 0))
    assert response.status_code == 400
    [line] = capsys.readouterr().out.splitlines()
    entry = json.loads(line)
    assert "_aws" not in entry  # its access line, with no metrics
    assert (entry["status"], entry["errorCode"]) == (400, "BadRequestError")


def test_a_stream_batch_prints_processed_records_age_and_orders_confirmed(
        client, stream, emf):
    added = request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    stream.drain()
    request(client, "POST", "/api/cart/checkout", cookie_from(added))
    records = stream.read()
    emf()
    assert stream.deliver(records) == {"process_stream": {"batchItemFailures": []}}
    [document] = emf()
    values = _values(document)
    newest = max(r["dynamodb"]["ApproximateCreationDateTime"] for r in records)
    age_now_ms = (time.time() - newest) * 1000
    assert values.pop("StreamNewestRecordAgeMs") <= age_now_ms + 1
    assert values == {"StreamRecordsProcessed": len(records), "StreamRecordsFailed": 0,
                      "OrdersConfirmed": 1}
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["StreamNewestRecordAgeMs"] == "Milliseconds"


def test_a_failing_batch_counts_what_comes_back(client, stream, emf):
    request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    records = stream.read()
    emf()
    with Faults(runtime.dynamodb_client()) as faults:
        for operation in ("PutItem", "UpdateItem", "TransactWriteItems"):
            faults.always(operation, "server-error")
        result = stream.deliver(records)["process_stream"]
    assert result["batchItemFailures"]
    [document] = emf()
    values = _values(document)
    assert values["StreamRecordsFailed"] >= 1
    assert values["StreamRecordsProcessed"] + values["StreamRecordsFailed"] == len(records)
    assert values["OrdersConfirmed"] == 0


def test_the_stream_functions_log_lines_carry_lambdas_request_id(client, stream):
    request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    records = stream.read()
    collect = Collect()
    app.log.addHandler(collect)
    try:
        with Faults(runtime.dynamodb_client()) as faults:
            for operation in ("PutItem", "UpdateItem", "TransactWriteItems"):
                faults.always(operation, "server-error")
            stream.deliver(records)
    finally:
        app.log.removeHandler(collect)
    entries = [json.loads(line) for line in collect.lines]
    assert entries and all(e["logger"] == "chalice-cart.followups" for e in entries)
    # The batch's request id is Lambda's own: carried once, one for the invocation.
    assert len({e["requestId"] for e in entries}) == 1 and all(e["requestId"] for e in entries)
    assert not [e for e in entries if "lambdaRequestId" in e or "coldStart" in e]


class RuntimeRootHandler(logging.Handler):
    """What Lambda's Python runtime puts on the root logger in JSON log format
    (awslambdaric's bootstrap._setup_logging): a record reaching it is written again,
    wrapped in the runtime's own JSON object."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_in_lambdas_json_log_format_the_apps_lines_reach_stdout_as_written(
        client, stream, emf, capsys, monkeypatch):
    # The runtime sets the root logger to ApplicationLogLevel (INFO) and adds its handler;
    # stdout itself it leaves alone, so a line printed there is the log event as written.
    root, runtime_handler = logging.getLogger(), RuntimeRootHandler()
    monkeypatch.setattr(root, "level", logging.INFO)
    root.addHandler(runtime_handler)
    try:
        emf()
        request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
        records = stream.read()
        with Faults(runtime.dynamodb_client()) as faults:
            for operation in ("PutItem", "UpdateItem", "TransactWriteItems"):
                faults.always(operation, "server-error")
            stream.deliver(records)
        out = capsys.readouterr().out
    finally:
        root.removeHandler(runtime_handler)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)  # one JSON object each
    emf_lines = [line for line in lines if "_aws" in line]
    # Lambda reads a line with no "level" as INFO: the EMF lines need INFO to pass.
    assert len(emf_lines) == 2 and all("level" not in line for line in emf_lines)
    assert {"AddToCart", "StreamRecordsFailed"} <= {k for line in emf_lines for k in line}
    # The request's access line is its EMF line: one line for the request.
    [access] = [line for line in lines if "route" in line]
    assert (access["route"], access["status"], access["AddToCart"]) == (
        "/api/cart/items", 201, 1)
    assert any(line.get("logger") == "chalice-cart.followups" and line["level"] == "ERROR"
               for line in lines)
    # None of them reaches the runtime's handler: nothing is wrapped or written twice.
    assert not [r for r in runtime_handler.records if r.name.startswith(app.log.name)]
