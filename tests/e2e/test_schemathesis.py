"""schemathesis against the running local stack, from the OpenAPI document in the repo.

Every operation gets up to 100 generated requests, valid and invalid (operations
without any input have fewer distinct requests to make). No response may be a
5xx, and every response must match what the document says: its status code, its
content type, its schema — so every JSON 4xx is Chalice's {"Code", "Message"}.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.openapi import DOCUMENT
from tests.e2e.helpers import LiveStack

EXAMPLES = 100
# chalice local's http.server answers TRACE and QUERY itself with a 501: the app
# never sees them, so probe only the methods the server hands to the app.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {
    "unexpected-methods": ["get", "put", "post", "delete", "options", "patch"]}}})
schema = schemathesis.openapi.from_path(DOCUMENT, config=CONFIG)
responses: Counter[tuple[str, int]] = Counter()
checked: Counter[str] = Counter()


def header(response: Any, name: str) -> str:
    """The first value of a header (schemathesis keeps them lowercased, as lists)."""
    return str(response.headers.get(name.lower(), [""])[0])


def not_a_server_error(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 500:
        raise AssertionError(f"{response.status_code} for {case.method} {case.formatted_path}: "
                             f"{response.text[:300]}")


def four_xx_is_the_error_shape(ctx: Any, response: Any, case: Any) -> None:
    if not 400 <= response.status_code < 500:
        return
    if "application/json" not in header(response, "Content-Type"):
        return  # the HTML pages answer an HTML error page, as documented
    checked["4xx JSON error shape"] += 1
    error = json.loads(response.content)
    assert isinstance(error, dict) and set(error) == {"Code", "Message"}, error
    assert isinstance(error["Code"], str) and isinstance(error["Message"], str), error


def html_carries_security_headers(ctx: Any, response: Any, case: Any) -> None:
    if "text/html" not in header(response, "Content-Type"):
        return
    checked["HTML security headers"] += 1
    csp = header(response, "Content-Security-Policy")
    assert csp and "unsafe-inline" not in csp, csp
    assert header(response, "X-Content-Type-Options") == "nosniff"
    assert header(response, "Referrer-Policy"), "no Referrer-Policy"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection, four_xx_is_the_error_shape,
          html_carries_security_headers]


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    per_operation: dict[str, dict[int, int]] = {}
    for (label, status), count in sorted(responses.items()):
        per_operation.setdefault(label, {})[status] = count
    print("\nschemathesis responses per operation and status:")
    for label, statuses in per_operation.items():
        print(f"  {label}: {sum(statuses.values())} {statuses}")
    print(f"  responses checked: {dict(checked)}")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_documented_contract(case: Any, live_stack: LiveStack) -> None:
    response = case.call(base_url=live_stack.url, timeout=10)
    responses[case.operation.label, response.status_code] += 1
    case.validate_response(response, checks=CHECKS)


def test_every_operation_with_input_got_at_least_100_requests() -> None:
    # Runs after the generated cases, in file order.
    document = json.loads(DOCUMENT.read_text())
    sent: Counter[str] = Counter()
    for (label, _), count in responses.items():
        sent[label] += count
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if method not in {"get", "put", "post", "delete", "patch"}:
                continue
            label = f"{method.upper()} {path}"
            takes_input = bool(operation.get("parameters") or methods.get("parameters")
                               or operation.get("requestBody"))
            assert sent[label] >= (EXAMPLES if takes_input else 1), (label, sent[label])
