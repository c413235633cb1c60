"""Bad input through chalice.test.Client: a 4xx in Chalice's error shape, and no write.

Every case runs against a cart that already holds lines, so "nothing changed" is a
statement about real data: the whole table is the same before and after.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.factories import JSON, TABLE_NAME, add_body, cookie_from
from tests.functional.conftest import request

ITEMS = "/api/cart/items"
KETTLE_LINE = "/api/cart/items/kettle"


# Nothing here should write, so the module shares one table: far faster, and a
# stray write would show up in every later test's before/after too.
@pytest.fixture(scope="module")
def client(module_shop):
    return module_shop[0]


@pytest.fixture(scope="module")
def dynamodb(module_shop):
    return module_shop[1]


@pytest.fixture(scope="module")
def cart(client):
    """A cart holding 2 espresso cups and 1 kettle; its cookie."""
    first = request(client, "POST", ITEMS, body=add_body("espresso-cup", 2))
    cookie = cookie_from(first)
    assert request(client, "POST", ITEMS, cookie, add_body("kettle", 1)).status_code == 201
    return cookie


def table_items(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def send(client: Any, method: str, path: str, cookie: str, body: str | bytes,
         content_type: str | None = "application/json") -> Any:
    headers = {"Cookie": cookie}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.http.request(method, path, headers=headers, body=body)


def assert_error_shape(response: Any, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.body
    error = json.loads(response.body)
    assert set(error) == {"Code", "Message"}
    assert error["Code"] == code
    assert isinstance(error["Message"], str) and error["Message"]
    assert "Set-Cookie" not in response.headers
    return error  # type: ignore[no-any-return]


# (method, path, body, expected Code, a word the message must contain)
BAD_BODIES = [
    pytest.param("POST", ITEMS, "{not json", "Error Parsing JSON", id="malformed-json"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": 1', "Error Parsing JSON",
                 id="truncated-json"),
    pytest.param("POST", ITEMS, "", "Error Parsing JSON", id="empty-body"),
    pytest.param("POST", ITEMS, b"\xff\xfe\x00", "Error Parsing JSON", id="not-utf8"),
    # Python 3.13's decoder parses this depth (older ones raised RecursionError,
    # which app.py answers as a parse error): either way a 400, never a 500.
    pytest.param("POST", ITEMS, "[" * 3000 + "]" * 3000, "the request body must be a JSON object",
                 id="deeply-nested-json"),
    pytest.param("POST", ITEMS, "null", "JSON object", id="null"),
    pytest.param("POST", ITEMS, "[]", "JSON object", id="array"),
    pytest.param("POST", ITEMS, '"kettle"', "JSON object", id="string"),
    pytest.param("POST", ITEMS, "3", "JSON object", id="number"),
    pytest.param("POST", ITEMS, "{}", "missing field(s): productId, quantity", id="no-fields"),
    pytest.param("POST", ITEMS, '{"productId": "kettle"}', "missing field(s): quantity",
                 id="missing-quantity"),
    pytest.param("POST", ITEMS, '{"quantity": 1}', "missing field(s): productId",
                 id="missing-product"),
    pytest.param("POST", ITEMS, add_body("kettle", 1, colour="red"), "unknown field(s): colour",
                 id="extra-field"),
    pytest.param("POST", ITEMS, add_body("kettle", 1, priceCents=1), "prices come from",
                 id="client-price"),
    pytest.param("POST", ITEMS, add_body("kettle", 1, unitPrice=0), "prices come from",
                 id="client-unit-price"),
    pytest.param("POST", ITEMS, add_body("kettle", 1, totalCents=0), "prices come from",
                 id="client-total"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": true}', "whole number",
                 id="bool-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": 1.0}', "whole number",
                 id="float-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": 1.5}', "whole number",
                 id="fractional-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": "2"}', "whole number",
                 id="string-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": null}', "whole number",
                 id="null-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": NaN}', "whole number",
                 id="nan-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": 1e400}', "whole number",
                 id="infinite-quantity"),
    pytest.param("POST", ITEMS, '{"productId": "kettle", "quantity": ' + "9" * 5000 + "}",
                 "Error Parsing JSON", id="5000-digit-quantity"),
    pytest.param("POST", ITEMS, add_body("kettle", 0), "between 1 and 99", id="quantity-0"),
    pytest.param("POST", ITEMS, add_body("kettle", -1), "between 1 and 99", id="quantity-neg"),
    pytest.param("POST", ITEMS, add_body("kettle", 100), "between 1 and 99",
                 id="quantity-100"),
    pytest.param("POST", ITEMS, add_body("kettle", 2**63), "between 1 and 99",
                 id="quantity-huge"),
    pytest.param("POST", ITEMS, '{"productId": 7, "quantity": 1}', "productId", id="int-id"),
    pytest.param("POST", ITEMS, '{"productId": ["kettle"], "quantity": 1}', "productId",
                 id="list-id"),
    pytest.param("POST", ITEMS, add_body("Kettle", 1), "productId", id="uppercase-id"),
    pytest.param("POST", ITEMS, add_body("", 1), "productId", id="empty-id"),
    pytest.param("POST", ITEMS, add_body("k" * 65, 1), "productId", id="long-id"),
    pytest.param("POST", ITEMS, add_body("../kettle", 1), "productId", id="path-id"),
    pytest.param("POST", ITEMS, add_body("kettle#1", 1), "productId", id="key-char-id"),
    pytest.param("POST", ITEMS, add_body("no-such-thing", 1), "unknown product",
                 id="unknown-product"),
    pytest.param("PUT", KETTLE_LINE, "{oops", "Error Parsing JSON", id="put-malformed"),
    pytest.param("PUT", KETTLE_LINE, "", "Error Parsing JSON", id="put-empty"),
    pytest.param("PUT", KETTLE_LINE, "[5]", "JSON object", id="put-array"),
    pytest.param("PUT", KETTLE_LINE, "{}", "missing field(s): quantity", id="put-no-fields"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": 2, "productId": "kettle"}',
                 "unknown field(s): productId", id="put-extra-field"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": 2, "price": 1}', "prices come from",
                 id="put-client-price"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": false}', "whole number", id="put-bool"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": 2.0}', "whole number", id="put-float"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": "2"}', "whole number", id="put-string"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": -1}', "between 0 and 99", id="put-neg"),
    pytest.param("PUT", KETTLE_LINE, '{"quantity": 100}', "between 0 and 99", id="put-100"),
]


@pytest.mark.parametrize(("method", "path", "body", "message"), BAD_BODIES)
def test_a_bad_body_is_a_400_in_the_error_shape_and_changes_nothing(
        client, cart, dynamodb, method, path, body, message):
    before = table_items(dynamodb)
    error = assert_error_shape(send(client, method, path, cart, body), 400, "BadRequestError")
    assert message in error["Message"]
    assert table_items(dynamodb) == before


@pytest.mark.parametrize("product_id", [
    "KETTLE", "kettle_1", "-kettle", "k" * 65, "%00", "kettle%0A", "%3Cscript%3E",
    "kettle.json", "caf%C3%A9",
])
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_malformed_product_id_in_the_path_is_a_400(client, cart, dynamodb, method,
                                                    product_id):
    before = table_items(dynamodb)
    body = json.dumps({"quantity": 1}) if method == "PUT" else ""
    response = send(client, method, f"/api/cart/items/{product_id}", cart, body)
    error = assert_error_shape(response, 400, "BadRequestError")
    assert "productId" in error["Message"]
    assert table_items(dynamodb) == before


def test_a_malformed_product_id_is_a_400_even_without_a_cart(client, dynamodb):
    before = table_items(dynamodb)
    response = request(client, "DELETE", "/api/cart/items/NOT%20AN%20ID")
    assert_error_shape(response, 400, "BadRequestError")
    assert table_items(dynamodb) == before


def test_setting_a_product_that_is_not_in_the_cart_is_a_404(client, cart, dynamodb):
    before = table_items(dynamodb)
    response = send(client, "PUT", "/api/cart/items/no-such-thing", cart, '{"quantity": 3}')
    assert_error_shape(response, 404, "NotFoundError")
    assert table_items(dynamodb) == before


@pytest.mark.parametrize("order_id", ["x", "0" * 32, "A" * 32, "%27%20OR%201%3D1", "f" * 300])
def test_a_malformed_or_unknown_order_id_is_a_404(client, cart, order_id):
    response = request(client, "GET", f"/api/orders/{order_id}", cart)
    assert_error_shape(response, 404, "NotFoundError")


@pytest.mark.parametrize(("method", "path"), [
    ("POST", ITEMS), ("PUT", KETTLE_LINE), ("DELETE", KETTLE_LINE),
    ("POST", "/api/cart/checkout"),
])
def test_a_body_over_8_kb_is_a_413(client, cart, dynamodb, method, path):
    before = table_items(dynamodb)
    padding = "x" * 8192
    body = json.dumps({"productId": "kettle", "quantity": 1, "pad": padding})
    error = assert_error_shape(send(client, method, path, cart, body), 413,
                               "RequestEntityTooLarge")
    assert "8192" in error["Message"]
    assert table_items(dynamodb) == before


def test_a_body_of_exactly_8_kb_is_read(client, cart):
    body = add_body("kettle", 1)
    body = body[:-1] + " " * (8192 - len(body)) + "}"
    assert len(body.encode()) == 8192
    response = send(client, "POST", ITEMS, cart, body)
    assert response.status_code == 201


@pytest.mark.parametrize("content_type", [
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=----x", "application/xml", "text/html",
])
@pytest.mark.parametrize(("method", "path"), [
    ("POST", ITEMS), ("PUT", KETTLE_LINE), ("DELETE", KETTLE_LINE),
    ("POST", "/api/cart/checkout"),
])
def test_a_body_that_is_not_json_is_a_415(client, cart, dynamodb, method, path,
                                          content_type):
    before = table_items(dynamodb)
    response = send(client, method, path, cart, add_body("kettle", 1), content_type)
    error = assert_error_shape(response, 415, "UnsupportedMediaType")
    assert content_type in error["Message"]
    assert table_items(dynamodb) == before


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", ITEMS, add_body("kettle", 1)), ("PUT", KETTLE_LINE, '{"quantity": 3}'),
    ("POST", ITEMS, ""), ("PUT", KETTLE_LINE, ""),
    ("DELETE", KETTLE_LINE, "{}"), ("POST", "/api/cart/checkout", "{}"),
])
def test_a_body_without_a_content_type_is_a_415(client, cart, dynamodb, method, path, body):
    # Chalice would read such a request as JSON for the 415 check, then not
    # read its body at all (a 400 that blamed the body).
    before = table_items(dynamodb)
    response = send(client, method, path, cart, body, content_type=None)
    error = assert_error_shape(response, 415, "UnsupportedMediaType")
    assert "Content-Type: application/json" in error["Message"]
    assert table_items(dynamodb) == before


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", "/api/cart/items/no-such-line"), ("POST", "/api/cart/checkout")])
def test_a_request_that_takes_no_body_needs_no_content_type(client, method, path):
    response = client.http.request(method, path, headers={}, body=b"")
    # No cart: DELETE removes nothing (204), checkout finds it empty (409).
    assert response.status_code in (204, 409), response.body
    assert response.status_code != 415


@pytest.mark.parametrize("content_type", [
    "APPLICATION/JSON", "Application/Json; charset=UTF-8", " application/json ",
])
def test_the_json_media_type_is_matched_case_insensitively(client, cart, content_type):
    response = send(client, "POST", ITEMS, cart, add_body("kettle", 1), content_type)
    assert response.status_code == 201, response.body
    assert json.loads(response.body)["productId"] == "kettle"
    response = send(client, "PUT", KETTLE_LINE, cart, '{"quantity": 1}', content_type)
    assert response.status_code == 200, response.body


def test_a_json_content_type_with_a_charset_is_json(client, cart):
    response = send(client, "POST", ITEMS, cart, add_body("kettle", 1),
                    "application/json; charset=utf-8")
    assert response.status_code == 201


def test_an_unsupported_method_is_a_405_in_the_error_shape(client):
    response = client.http.request("PATCH", "/api/cart", headers=JSON, body=b"{}")
    assert_error_shape(response, 405, "MethodNotAllowedError")
    assert "GET" in response.headers["Allow"]
