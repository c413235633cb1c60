"""The HTML pages and static files through chalice.test.Client against moto."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app import app
from chalicelib import web
from chalicelib.domain import Product
from tests.factories import SEED, add_body, cookie_from
from tests.functional.conftest import request

CHROMIUM_IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
HOSTILE = Product(
    "hostile", "<script>alert('name')</script>", '"><img src=x onerror=alert(1)>',
    100, '"><script>alert(3)</script>.svg', stock=50,
)


def html(response: Any) -> str:
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return str(response.body.decode())


def count_hooks(page: str, name: str) -> int:
    return page.count(f'data-testid="{name}"')


def checkout(client: Any, cookie: str) -> str:
    response = request(client, "POST", "/api/cart/checkout", cookie)
    assert response.status_code == 201
    return str(json.loads(response.body)["orderId"])


def test_shop_lists_every_product_with_its_image_and_an_add_button(client):
    page = html(request(client, "GET", "/"))
    on_sale = [product for product in SEED if product.active]
    assert count_hooks(page, "product-card") == len(on_sale)
    assert count_hooks(page, "add-to-cart") == len(on_sale)
    for product in on_sale:
        assert f'src="/static/img/{product.image}?v=' in page
        assert product.name in page
    assert 'data-testid="cart-count">0<' in page


def test_the_header_badge_shows_the_summary_the_stream_wrote(client, cart, stream):
    stream.drain()
    page = html(request(client, "GET", "/", cart))
    assert 'data-testid="cart-count">3<' in page
    assert 'data-testid="cart-subtotal">$83.00<' in page


def test_every_page_forbids_inline_script_and_style(client, cart):
    order_id = checkout(client, cart)
    for path in ("/", "/cart", f"/orders/{order_id}"):
        response = request(client, "GET", path, cart)
        page = html(response)
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "script-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert re.findall(r"<script\b[^>]*>", page) == [
            f'<script src="{web.asset_url("", "app.js")}" defer>']
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=", page), path


def test_product_fields_render_escaped(client, repo):
    repo.seed_products([HOSTILE])
    page = html(request(client, "GET", "/"))
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_cart_page_lists_lines_with_totals_and_a_checkout(client, cart):
    page = html(request(client, "GET", "/cart", cart))
    assert count_hooks(page, "cart-line") == 2
    assert count_hooks(page, "line-quantity") == 2
    assert count_hooks(page, "remove-line") == 2
    assert count_hooks(page, "checkout") == 1
    assert 'data-role="subtotal">$83.00<' in page
    assert 'value="2"' in page and "$24.00" in page


def test_an_empty_cart_page_says_so_and_links_back_to_the_shop(client):
    page = html(request(client, "GET", "/cart"))
    assert count_hooks(page, "cart-line") == 0
    assert re.search(r'<section class="cart" data-role="cart" hidden>', page)
    assert 'Your cart is empty. <a href="/">' in page


def test_order_page_shows_placed_then_confirmed(client, cart, stream):
    order_id = checkout(client, cart)
    page = html(request(client, "GET", f"/orders/{order_id}", cart))
    assert re.search(r'data-testid="order-status"[^>]*>PLACED<', page)
    assert f'data-order-id="{order_id}"' in page
    stream.drain()
    page = html(request(client, "GET", f"/orders/{order_id}", cart))
    assert re.search(r'data-testid="order-status"[^>]*>CONFIRMED<', page)


def test_another_visitors_order_is_an_html_404(client, cart):
    order_id = checkout(client, cart)
    stranger = cookie_from(request(client, "POST", "/api/cart/items", body=add_body()))
    for cookie in (stranger, None):
        response = request(client, "GET", f"/orders/{order_id}", cookie)
        assert response.status_code == 404
        assert "Order not found" in response.body.decode()
        assert response.headers["Content-Type"].startswith("text/html")


# -- static files ----------------------------------------------------------------

def test_static_files_carry_type_cache_control_and_etag(client):
    for path, content_type in (("app.css", "text/css; charset=utf-8"),
                               ("app.js", "text/javascript; charset=utf-8"),
                               ("img/kettle.svg", "image/svg+xml")):
        response = request(client, "GET", f"/static/{path}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == content_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'"
        assert response.headers["ETag"] == web.assets()[path].etag
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert response.body == (web.STATIC / path).read_bytes()


def test_a_versioned_static_url_may_be_cached_for_good(client):
    url = web.asset_url("", "app.css")
    assert re.fullmatch(r"/static/app\.css\?v=[0-9a-f]{16}", url)
    response = request(client, "GET", url)
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    stale = request(client, "GET", "/static/app.css?v=0000000000000000")
    assert stale.headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize("if_none_match", ["{etag}", 'W/{etag}', '"other", {etag}', "*"])
def test_a_matching_if_none_match_gets_304_with_no_body(client, if_none_match):
    etag = web.assets()["app.js"].etag
    response = request(client, "GET", "/static/app.js",
                       headers={"If-None-Match": if_none_match.format(etag=etag)})
    assert response.status_code == 304
    assert response.body == b""
    assert response.headers["ETag"] == etag


def test_a_stale_if_none_match_gets_the_file(client):
    response = request(client, "GET", "/static/app.js", headers={"If-None-Match": '"old"'})
    assert response.status_code == 200
    assert response.body


@pytest.mark.parametrize("accept", [CHROMIUM_IMAGE_ACCEPT, "image/svg+xml", "text/html"])
def test_svg_is_served_as_text_whatever_the_browser_accepts(client, accept):
    response = request(client, "GET", "/static/img/beans.svg", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.body.startswith(b"<svg")
    assert "image/svg+xml" not in app.api.binary_types


@pytest.mark.parametrize("path", [
    "/static/nope.css", "/static/..%2Fapp.py", "/static/img/..%2F..%2Fapp.py",
    "/static/%2E%2E%2Fapp.py", "/static/img/..%2Fapp.js", "/static/img/.%2E%2F%2E.%2Fapp.py",
])
def test_static_serving_names_only_files_inside_static(client, path):
    response = request(client, "GET", path)
    assert response.status_code in (403, 404)
    assert b"chalice-cart" not in response.body


def test_traversal_is_impossible_even_with_a_decoded_slash():
    # API Gateway decodes %2F into a path parameter; Chalice local does not.
    assert web.assets().get("img/../../app.py") is None
    assert web.assets().get("../app.py") is None
    assert set(web.assets()) <= {
        p.relative_to(web.STATIC).as_posix() for p in web.STATIC.rglob("*") if p.is_file()}


def test_every_catalog_image_is_shipped():
    assert {f"img/{product.image}" for product in SEED} <= set(web.assets())


def test_raster_images_are_binary_types_and_go_out_as_bytes(tmp_path):
    (tmp_path / "dot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "notes.txt").write_text("not servable")
    assets = web.load_assets(tmp_path)
    assert set(assets) == {"dot.png"}
    assert assets["dot.png"].body == b"\x89PNG\r\n\x1a\n"
    assert "image/png" in app.api.binary_types


# -- the stage prefix: API Gateway serves the app under /api -------------------------

def gateway_event(path: str, resource: str, params: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The event API Gateway sends for GET {stage}{path}: the stage is in `path` only."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": headers or {},
        "multiValueQueryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "httpMethod": "GET", "resourcePath": resource, "path": f"/api{path}",
            "stage": "api", "requestId": "test-request", "identity": {"sourceIp": "127.0.0.1"},
        },
    }


@pytest.mark.parametrize(("path", "resource"), [("/", "/"), ("/cart", "/cart")])
def test_links_and_assets_carry_the_stage_prefix_when_deployed(client, path, resource):
    response = app(gateway_event(path, resource), None)
    assert response["statusCode"] == 200
    page = response["body"]
    assert 'data-base="/api"' in page
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert links and all(link.startswith("/api/") or link == "#main" for link in links), links
    assert f'href="{web.asset_url("/api", "app.css")}"' in page


def test_order_page_links_carry_the_stage_prefix(client, cart):
    order_id = checkout(client, cart)
    event = gateway_event(f"/orders/{order_id}", "/orders/{order_id}",
                          {"order_id": order_id}, {"cookie": cart})
    page = app(event, None)["body"]
    assert 'data-base="/api"' in page and 'href="/api/"' in page


def test_chalice_local_serves_links_from_the_root(client):
    page = html(request(client, "GET", "/cart"))
    assert 'data-base=""' in page
    assert 'href="/"' in page and 'href="/cart"' in page


def test_the_script_builds_every_url_from_the_body_base():
    script = (web.STATIC / "app.js").read_text()
    assert "document.body.dataset.base" in script
    assert not re.search(r"""fetch\(\s*["'`]/""", script)
    assert not re.search(r"""location[.\w]*\(\s*["'`]/""", script)


# -- unknown routes: 404, never API Gateway's 403 "Missing Authentication Token" ----

@pytest.mark.parametrize("path", ["/nope", "/shop/cart", "/order", "/static/img/a/b.svg",
                                  "/cart/extra/", "/a/b/c/d?x=1"])
def test_an_unknown_page_is_a_404_page(client, path):
    response = request(client, "GET", path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.body.decode()
    assert "<h1>Page not found</h1>" in page and 'href="/"' in page
    assert response.headers["Content-Security-Policy"] == web.CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/nope"), ("GET", "/api"), ("POST", "/api/cart/items/kettle/more"),
    ("DELETE", "/api/orders/x/y"), ("PUT", "/api/v2/cart"), ("GET", "/api/cart/"),
])
def test_an_unknown_api_route_is_a_404_in_the_error_shape(client, method, path):
    response = request(client, method, path)
    if path == "/api/cart/":  # a trailing slash is the same resource, as on API Gateway
        assert response.status_code == 200
        return
    assert response.status_code == 404, response.body
    error = json.loads(response.body)
    assert set(error) == {"Code", "Message"} and error["Code"] == "NotFoundError"
    assert path in error["Message"]


def test_an_unknown_page_path_reflects_nothing_unescaped(client):
    response = request(client, "GET", "/<script>alert(1)</script>")
    assert response.status_code == 404
    assert b"<script>alert" not in response.body


def test_api_gateway_sends_unknown_paths_to_the_not_found_route_with_the_stage_prefix(client):
    event = gateway_event("/no/such/page", "/{proxy+}", {"proxy": "no/such/page"})
    response = app(event, None)
    assert response["statusCode"] == 404
    assert 'href="/api/"' in response["body"] and 'data-base="/api"' in response["body"]
    event = gateway_event("/api/nope", "/{proxy+}", {"proxy": "api/nope"})
    response = app(event, None)
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["Code"] == "NotFoundError"
