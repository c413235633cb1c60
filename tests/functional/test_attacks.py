"""An attacker's requests (issue 19): cross-origin writes, odd cookies and bodies, HEAD, HSTS.

Every test builds the victim's cart over HTTP, attacks, then checks that the
table is exactly as before: refused means nothing changed, not just a 4xx.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.factories import add_body, cookie_from
from tests.functional.conftest import request

ITEMS = "/api/cart/items"
HOST = "shop.example"
# Every route that may change something, and a body it would accept.
WRITES: list[tuple[str, str, Any]] = [
    ("POST", ITEMS, {"productId": "kettle", "quantity": 5}),
    ("PUT", f"{ITEMS}/espresso-cup", {"quantity": 9}),
    ("DELETE", f"{ITEMS}/espresso-cup", None),
    ("POST", "/api/cart/checkout", None),
    ("POST", "/api/account/signout", None),
    ("POST", "/api/account/signup", {"email": "eve@example.com", "password": "Pour-0ver-1"}),
    ("POST", "/api/account/confirm", {"email": "eve@example.com", "code": "123456"}),
    ("POST", "/api/account/signin", {"email": "eve@example.com", "password": "Pour-0ver-1"}),
]
FOREIGN = {
    "cross-site fetch": {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    "same-site fetch (another port)": {"Sec-Fetch-Site": "same-site",
                                       "Origin": f"http://{HOST}:8001"},
    "same-site, no Origin": {"Sec-Fetch-Site": "same-site"},
    "cross-site, no Sec-Fetch-Site": {"Origin": "https://evil.example"},
    "sibling subdomain": {"Origin": f"http://evil.{HOST}"},
    "other scheme": {"Origin": f"https://{HOST}"},
    "opaque origin": {"Origin": "null"},
}


@pytest.fixture(scope="module")
def client(module_shop: tuple[Any, Any]) -> Any:
    return module_shop[0]


@pytest.fixture(scope="module")
def dynamodb(module_shop: tuple[Any, Any]) -> Any:
    return module_shop[1]


def table_items(dynamodb: Any) -> list[dict[str, Any]]:
    from tests.factories import TABLE_NAME

    items = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def victim_cart(client: Any) -> str:
    first = request(client, "POST", ITEMS, body=add_body("espresso-cup", 2))
    assert first.status_code == 201, first.body
    return cookie_from(first)


# -- 1. cross-origin writes ---------------------------------------------------------

@pytest.mark.parametrize("sender", list(FOREIGN))
@pytest.mark.parametrize(("method", "path", "body"), WRITES,
                         ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_write_from_another_origin_is_a_403_and_changes_nothing(
        client: Any, dynamodb: Any, method: str, path: str, body: Any, sender: str) -> None:
    cookie = victim_cart(client)
    before = table_items(dynamodb)
    response = request(client, method, path, cookie, body,
                       headers={"Host": HOST, **FOREIGN[sender]})
    assert response.status_code == 403, response.body
    assert json.loads(response.body) == {
        "Code": "ForbiddenError",
        "Message": "requests from another site's pages may not change anything here"}
    assert "Set-Cookie" not in response.headers
    assert table_items(dynamodb) == before


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 201),  # an API client: curl, a script
    ({"Host": HOST, "Origin": f"http://{HOST}", "Sec-Fetch-Site": "same-origin"}, 201),
    ({"Host": f"{HOST}:8000", "Origin": f"http://{HOST}:8000"}, 201),
    ({"Host": "abc.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https",
      "Origin": "https://abc.execute-api.us-east-1.amazonaws.com"}, 201),
    ({"Host": "abc.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https",
      "Origin": "http://abc.execute-api.us-east-1.amazonaws.com"}, 403),
    # A proxy in front that says which host the browser asked for.
    ({"Host": "abc.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https",
      "X-Forwarded-Host": "shop.example.com", "Origin": "https://shop.example.com"}, 201),
    ({"Sec-Fetch-Site": "none"}, 201),  # typed into the address bar
])
def test_the_shops_own_pages_and_api_clients_still_write(
        client: Any, headers: dict[str, str], status: int) -> None:
    cookie = victim_cart(client)
    response = request(client, "POST", ITEMS, cookie, add_body("kettle", 1), headers=headers)
    assert response.status_code == status, response.body
    checkout = request(client, "POST", "/api/cart/checkout", cookie, headers=headers)
    assert checkout.status_code == (201 if status == 201 else 403)


def test_a_configured_origin_is_the_only_own_one(client: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A custom domain behind a CDN that sends API Gateway's Host: the stage says.
    monkeypatch.setenv("SHOP_ORIGINS", "https://shop.example.com, https://www.shop.example.com")
    gateway = {"Host": "abc.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https"}
    cookie = victim_cart(client)
    for origin, status in (("https://shop.example.com", 201), ("https://WWW.shop.example.com", 201),
                           ("https://abc.execute-api.us-east-1.amazonaws.com", 403),
                           ("https://evil.shop.example.com", 403)):
        response = request(client, "POST", ITEMS, cookie, add_body("kettle", 1),
                           headers={**gateway, "Origin": origin})
        assert response.status_code == status, origin


def test_reads_from_another_origin_still_answer(client: Any) -> None:
    # A cross-site GET cannot read the answer (no CORS) and changes nothing.
    response = request(client, "GET", "/api/cart", headers={"Sec-Fetch-Site": "cross-site",
                                                           "Origin": "https://evil.example"})
    assert response.status_code == 200


# -- 5. cookies with non-ASCII digits ------------------------------------------------

@pytest.mark.parametrize("issued", ["²", "١٢٣", "１２３", "12³", " 12", "+12", "-1", "1_0"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("GET", "/api/cart"),
                                              ("GET", "/cart"), ("POST", ITEMS)])
def test_a_cart_cookie_with_non_ascii_digits_reads_as_no_cart(
        client: Any, issued: str, method: str, path: str) -> None:
    victim = victim_cart(client)
    cart_id = victim.split("=", 1)[1].split(".")[0]
    forged = f"cart={cart_id}.{issued}.AAAA"
    body = add_body("kettle", 1) if method == "POST" else None
    response = request(client, method, path, forged, body)
    assert response.status_code < 300, response.body
    if path == "/api/cart":
        assert json.loads(response.body)["items"] == []
    if method == "POST":
        assert cookie_from(response).split("=", 1)[1].split(".")[0] != cart_id


# -- 6. duplicated JSON keys ------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "raw"), [
    ("POST", ITEMS, '{"productId": "kettle", "quantity": 1, "quantity": 50}'),
    ("POST", ITEMS, '{"productId": "kettle", "productId": "grinder", "quantity": 1}'),
    ("PUT", f"{ITEMS}/espresso-cup", '{"quantity": 1, "quantity": 50}'),
    ("POST", "/api/cart/checkout", '{"a": {"b": 1, "b": 2}}'),
])
def test_a_body_with_a_duplicated_key_is_a_400_and_changes_nothing(
        client: Any, dynamodb: Any, method: str, path: str, raw: str) -> None:
    cookie = victim_cart(client)
    before = table_items(dynamodb)
    response = request(client, method, path, cookie, raw)
    assert response.status_code == 400, response.body
    assert json.loads(response.body)["Code"] == "BadRequestError"
    assert "appears more than once" in json.loads(response.body)["Message"]
    assert table_items(dynamodb) == before


# -- 9. HEAD and Strict-Transport-Security ------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/cart", "/account", "/orders", "/api/cart",
                                  "/api/cart/status", "/api/products", "/api/orders",
                                  "/api/openapi.json", "/static/app.css"])
def test_head_answers_as_get_without_a_body(client: Any, path: str) -> None:
    cookie = victim_cart(client)
    got = request(client, "GET", path, cookie)
    head = request(client, "HEAD", path, cookie)
    assert (head.status_code, got.status_code) == (200, 200)
    assert head.body == b""
    assert head.headers.get("Content-Type") == got.headers.get("Content-Type")


def test_head_of_a_missing_page_is_a_404(client: Any) -> None:
    assert request(client, "HEAD", "/no-such-page").status_code == 404


@pytest.mark.parametrize("path", ["/", "/cart", "/api/cart", "/no-such-page"])
def test_behind_https_every_answer_carries_hsts(client: Any, path: str) -> None:
    secure = request(client, "GET", path, headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["Strict-Transport-Security"] == "max-age=63072000"
    plain = request(client, "GET", path)
    assert "Strict-Transport-Security" not in plain.headers
    refused = request(client, "POST", ITEMS, body=add_body("kettle", 1),
                      headers={"X-Forwarded-Proto": "https", "Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403
    assert refused.headers["Strict-Transport-Security"] == "max-age=63072000"
