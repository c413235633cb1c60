"""The OpenAPI document: valid OpenAPI 3, served, and in step with the app's routes."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from app import NOT_FOUND_ROUTE, app
from chalicelib import openapi
from tests.functional.conftest import request

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def document():
    return json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))


def documented_operations(document):
    return {(path, method.upper())
            for path, item in document["paths"].items()
            for method in item if method in METHODS}


def test_the_document_is_valid_openapi_3(document):
    assert document["openapi"].startswith("3.")
    validate(document)


def test_every_route_is_documented_and_every_documented_route_exists(document):
    # The greedy not-found route is no operation: it answers whatever has none.
    # HEAD is every GET route's own view without the body (request_guard.answer_head).
    routes = {(path, method) for path, entries in app.routes.items() for method in entries
              if path != NOT_FOUND_ROUTE and method != "HEAD"}
    for entries in app.routes.values():
        if "HEAD" in entries:
            assert entries["HEAD"].view_function is entries["GET"].view_function
    assert routes - documented_operations(document) == set(), "routes missing from the doc"
    assert documented_operations(document) - routes == set(), "doc lists no such route"


def test_every_operation_id_names_its_view_function(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                view = app.routes[path][method.upper()].view_name
                assert operation["operationId"] == view, (path, method)


def test_every_json_error_response_is_the_chalice_error_shape(document):
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["Code", "Message"]
    assert error["additionalProperties"] is False
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for status, response in operation["responses"].items():
                response = responses.get(response.get("$ref", "").rsplit("/", 1)[-1], response)
                media = response.get("content", {}).get("application/json")
                if status.startswith(("4", "5")) and media:
                    assert media["schema"] == {"$ref": "#/components/schemas/Error"}, (
                        path, method, status)


def test_the_json_routes_accept_an_idempotency_key_where_retries_need_one(document):
    for path in ("/api/cart/items", "/api/cart/checkout"):
        names = [p.get("$ref", "").rsplit("/", 1)[-1]
                 for p in document["paths"][path]["post"]["parameters"]]
        assert "IdempotencyKey" in names
    key = document["components"]["parameters"]["IdempotencyKey"]
    assert (key["in"], key["required"]) == ("header", False)
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 128)


def test_the_document_is_served_at_api_openapi_json(client, document):
    response = request(client, "GET", "/api/openapi.json")
    assert response.status_code == 200
    served = json.loads(response.body)
    assert served["servers"] == [{"url": "/"}]
    assert {k: v for k, v in served.items() if k != "servers"} == document


def test_the_served_server_url_carries_the_stage_prefix(document):
    # Deployed, API Gateway serves the app under /api (chalicelib/presenters.base_path).
    assert openapi.document("/api")["servers"] == [{"url": "/api"}]
    assert "servers" not in document
