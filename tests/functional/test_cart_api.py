"""The JSON API through chalice.test.Client against moto."""

from __future__ import annotations

import json

import pytest

from tests.factories import add_body, cookie_from
from tests.functional.conftest import request


def body(response):
    return json.loads(response.body)


def test_catalog_lists_the_seeded_products_with_prices_in_cents(client):
    response = request(client, "GET", "/api/products")
    assert response.status_code == 200
    products = body(response)["products"]
    assert len(products) >= 8
    cup = next(p for p in products if p["id"] == "espresso-cup")
    assert cup == {
        "id": "espresso-cup", "name": "Espresso cup",
        "description": "Double-walled glass, 80 ml.", "priceCents": 1200,
        "currency": "USD", "imageUrl": "/static/img/espresso-cup.svg", "inCarts": 0,
        "stock": 4000, "soldOut": False, "availability": None,
    }


def test_add_to_cart_creates_the_cart_and_sets_a_signed_cookie(client):
    response = request(client, "POST", "/api/cart/items", body=add_body("kettle", 2))
    assert response.status_code == 201
    assert body(response) == {
        "productId": "kettle", "name": "Gooseneck kettle", "unitPriceCents": 5900,
        "quantity": 2, "lineTotalCents": 11800,
    }
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header


def test_add_to_cart_twice_sums_quantities(client, cart):
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 3))
    assert body(response)["quantity"] == 4


def test_display_cart_lists_lines_and_totals(client, cart):
    response = request(client, "GET", "/api/cart", cart)
    assert response.status_code == 200
    shown = body(response)
    assert [(i["productId"], i["quantity"], i["lineTotalCents"]) for i in shown["items"]] == [
        ("espresso-cup", 2, 2400), ("kettle", 1, 5900)]
    assert shown["itemCount"] == 3
    assert shown["subtotalCents"] == 8300


def test_cart_status_reads_the_summary_the_stream_builds(client, cart, stream):
    before = body(request(client, "GET", "/api/cart/status", cart))
    assert before["itemCount"] == 0
    stream.drain()
    after = body(request(client, "GET", "/api/cart/status", cart))
    assert (after["itemCount"], after["subtotalCents"]) == (3, 8300)
    assert after["updatedAt"]


def test_a_new_visitor_sees_an_empty_cart_and_zero_status(client):
    assert body(request(client, "GET", "/api/cart")) == {
        "items": [], "itemCount": 0, "subtotalCents": 0, "currency": "USD"}
    status = body(request(client, "GET", "/api/cart/status"))
    assert (status["itemCount"], status["subtotalCents"], status["updatedAt"]) == (0, 0, None)


def test_set_quantity_changes_the_line_and_zero_removes_it(client, cart):
    response = request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 5})
    assert response.status_code == 200
    assert body(response)["quantity"] == 5
    response = request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 0})
    assert response.status_code == 204
    items = body(request(client, "GET", "/api/cart", cart))["items"]
    assert [i["productId"] for i in items] == ["espresso-cup"]


def test_set_quantity_of_a_line_not_in_the_cart_is_404(client, cart):
    response = request(client, "PUT", "/api/cart/items/grinder", cart, {"quantity": 1})
    assert response.status_code == 404
    assert body(response)["Code"] == "NotFoundError"


def test_remove_is_idempotent(client, cart):
    for _ in range(2):
        assert request(client, "DELETE", "/api/cart/items/kettle", cart).status_code == 204
    assert request(client, "DELETE", "/api/cart/items/kettle").status_code == 204
    items = body(request(client, "GET", "/api/cart", cart))["items"]
    assert [i["productId"] for i in items] == ["espresso-cup"]


def test_a_line_never_exceeds_99(client, cart):
    assert request(client, "POST", "/api/cart/items", cart,
                   add_body("kettle", 98)).status_code == 201
    response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    assert response.status_code == 409
    assert "99" in body(response)["Message"]
    items = body(request(client, "GET", "/api/cart", cart))["items"]
    assert next(i for i in items if i["productId"] == "kettle")["quantity"] == 99


def test_checkout_places_an_order_and_empties_the_cart(client, cart, stream):
    response = request(client, "POST", "/api/cart/checkout", cart)
    assert response.status_code == 201
    order = body(response)
    assert order["status"] == "PLACED"
    assert (order["itemCount"], order["subtotalCents"]) == (3, 8300)
    assert body(request(client, "GET", "/api/cart", cart))["items"] == []
    stream.drain()
    shown = body(request(client, "GET", f"/api/orders/{order['orderId']}", cart))
    assert shown["status"] == "CONFIRMED"
    assert shown["confirmedAt"]
    assert body(request(client, "GET", "/api/cart/status", cart))["itemCount"] == 0


def test_checkout_of_an_empty_cart_is_409(client, cart):
    assert request(client, "POST", "/api/cart/checkout").status_code == 409
    request(client, "POST", "/api/cart/checkout", cart)
    response = request(client, "POST", "/api/cart/checkout", cart)
    assert response.status_code == 409
    assert body(response)["Code"] == "ConflictError"


def test_an_order_is_visible_only_to_the_cart_that_placed_it(client, cart):
    order_id = body(request(client, "POST", "/api/cart/checkout", cart))["orderId"]
    other = cookie_from(request(client, "POST", "/api/cart/items", body=add_body()))
    assert request(client, "GET", f"/api/orders/{order_id}", other).status_code == 404
    assert request(client, "GET", f"/api/orders/{order_id}").status_code == 404
    assert request(client, "GET", f"/api/orders/{order_id}", cart).status_code == 200


def test_a_204_has_an_empty_body(client, cart):
    for response in (
        request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 0}),
        request(client, "DELETE", "/api/cart/items/kettle", cart),
    ):
        assert response.status_code == 204
        assert response.body in (b"", "")


def test_setting_a_quantity_without_a_cart_makes_no_cart(client):
    response = request(client, "PUT", "/api/cart/items/kettle", body={"quantity": 0})
    assert response.status_code == 204 and "Set-Cookie" not in response.headers
    response = request(client, "PUT", "/api/cart/items/kettle", body={"quantity": 3})
    assert response.status_code == 404 and "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", ["/api/cart/checkout"])
def test_checkout_takes_no_body_but_tolerates_an_empty_object(client, cart, path):
    for stray in ('{"subtotalCents": 1}', '{"subtotalCents": 1, "oops"', '[]', '"x"'):
        response = request(client, "POST", path, cart, stray)
        assert response.status_code == 400, stray
        assert set(body(response)) == {"Code", "Message"}
    assert body(request(client, "GET", "/api/cart", cart))["itemCount"] == 3
    assert request(client, "POST", path, cart, "{}").status_code == 201


def test_remove_refuses_a_stray_body_and_keeps_the_line(client, cart):
    response = request(client, "DELETE", "/api/cart/items/kettle", cart, '{"priceCents": 1}')
    assert response.status_code == 400
    items = body(request(client, "GET", "/api/cart", cart))["items"]
    assert "kettle" in [i["productId"] for i in items]


def test_other_cookies_on_the_host_do_not_hide_the_cart(client, cart):
    noisy = [f'x={{"a":1}}; {cart}', f"foo=bar baz; {cart}", f"a=b; c; {cart}",
             f"cart=stale.1.x; {cart}"]
    for header in noisy:
        shown = body(request(client, "GET", "/api/cart", header))
        assert shown["itemCount"] == 3, header
