"""Another origin's pages attack a signed-in shopper's browser (issue 19): nothing changes.

The shop runs on http://127.0.0.1:<port>. The attacker's page is served by a
server of this test's own, reached two ways: http://127.0.0.1:<other port>
(another origin of the same site, as a sibling subdomain would be; SameSite=Lax
cookies still go along) and http://localhost:<other port> (another site). From
each it tries every write route with fetch (no-cors and cors, credentials
included), sendBeacon, and form posts, in Debian's Chromium, which sends
Origin and Sec-Fetch-Site on all of them (BRIEF fact 10). The victim's cart,
session and orders must be exactly as before, and every request that reached the
shop must have been answered 403.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
import requests
from playwright.sync_api import Page, Response, expect

from chalicelib import table
from chalicelib.accounts import account_cart_id
from chalicelib.domain import MAX_LINES, Product, expiry_after
from tests.e2e.helpers import HOST, free_port
from tests.e2e.test_browser import (  # noqa: F401  (its fixtures, shared)
    add,
    browser_type_launch_args,
    expect_badge,
    visitor,
)
from tests.e2e.test_browser_accounts import sign_in
from tests.factories import JSON

pytestmark = pytest.mark.e2e
PASSWORD = "Pour-0ver-please"
# Every write route, with a body the shop would accept from its own page.
WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/api/cart/items", {"productId": "grinder", "quantity": 5}),
    ("PUT", "/api/cart/items/kettle", {"quantity": 9}),
    ("DELETE", "/api/cart/items/kettle", None),
    ("POST", "/api/cart/checkout", None),
    ("POST", "/api/account/signout", None),
    ("POST", "/api/account/signup", {"email": "eve@example.com", "password": PASSWORD}),
    ("POST", "/api/account/confirm", {"email": "eve@example.com", "code": "123456"}),
    ("POST", "/api/account/signin", {"email": "eve@example.com", "password": PASSWORD}),
]
ATTACK = """async ({base, writes}) => {
  const tries = [];
  for (const [method, path, body] of writes) {
    const json = body === null ? undefined : JSON.stringify(body);
    for (const mode of ["no-cors", "cors"]) {
      const headers = mode === "cors" ? {"Content-Type": "application/json"} : {};
      tries.push(fetch(base + path, {method, mode, credentials: "include", body: json, headers})
        .then(() => "sent", () => "refused by the browser"));
    }
    if (method === "POST") {
      navigator.sendBeacon(base + path, json || "");
      navigator.sendBeacon(base + path, new Blob([json || "{}"], {type: "text/plain"}));
      const frame = document.createElement("iframe");
      frame.name = "f" + tries.length;
      document.body.append(frame);
      const form = document.createElement("form");
      Object.assign(form, {method: "POST", action: base + path, target: frame.name,
                           enctype: "text/plain"});
      const field = document.createElement("input");
      Object.assign(field, {name: (json || "{}").slice(0, -1) + ',"x":"', value: '"}'});
      form.append(field);
      document.body.append(form);
      tries.push(new Promise(done => { frame.onload = () => done("form posted"); form.submit(); }));
    }
  }
  return Promise.all(tries);
}"""


class AttackerPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (the http.server name)
        body = b"<!doctype html><title>cheap kettles</title><p>nothing to see</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def attacker() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer((HOST, free_port()), AttackerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def signed_up(stack: Any) -> str:
    email = f"victim-{uuid.uuid4().hex[:10]}@example.com"
    url = stack.url
    assert requests.post(f"{url}/api/account/signup", headers=JSON, timeout=10,
                         json={"email": email, "password": PASSWORD}).status_code == 201
    assert requests.post(f"{url}/api/account/confirm", headers=JSON, timeout=10,
                         json={"email": email, "code": "000000"}).status_code == 204
    return email


def cart_of(page: Page, base: str) -> list[tuple[str, int]]:
    items = page.evaluate("url => fetch(url).then(r => r.json())", f"{base}/api/cart")["items"]
    return sorted((item["productId"], item["quantity"]) for item in items)


@pytest.mark.parametrize("attacker_host", ["127.0.0.1", "localhost"],
                         ids=["same-site (another port)", "cross-site (another host)"])
def test_another_origins_page_changes_nothing_for_a_signed_in_shopper(
        visitor: Page, live_stack: Any, attacker: int, attacker_host: str) -> None:  # noqa: F811
    page = visitor
    shop = live_stack.url
    email = signed_up(live_stack)
    page.goto(f"{shop}/")
    add(page, "kettle", 2)
    expect_badge(page, 2, "$118.00")
    signed_in = page.evaluate("""([url, body]) => fetch(url, {method: "POST", body,
        headers: {"Content-Type": "application/json"}}).then(r => r.status)""",
                              [f"{shop}/api/account/signin",
                               json.dumps({"email": email, "password": PASSWORD})])
    assert signed_in == 200
    before = {c["name"]: c["value"] for c in page.context.cookies(shop)}
    assert {"session", "refresh"} <= set(before)
    assert cart_of(page, shop) == [("kettle", 2)]

    answered: list[tuple[str, str, int]] = []

    def seen(response: Response) -> None:
        if response.url.startswith(shop):
            answered.append((response.request.method, response.url, response.status))

    page.on("response", seen)
    page.goto(f"http://{attacker_host}:{attacker}/")
    outcomes = page.evaluate(ATTACK, {"base": shop, "writes": WRITES})
    page.wait_for_timeout(500)  # beacons are sent after the page moves on, or now
    page.goto("about:blank")
    page.remove_listener("response", seen)

    # Nothing changed: the same session, the same cart, no order.
    after = {c["name"]: c["value"] for c in page.context.cookies(shop)}
    assert after == before
    page.goto(f"{shop}/orders")
    expect(page.get_by_test_id("signed-in-as")).to_contain_text(email)
    expect(page.get_by_text("No orders yet.")).to_be_visible()
    assert cart_of(page, shop) == [("kettle", 2)]
    orders = page.evaluate("url => fetch(url).then(r => r.json())", f"{shop}/api/orders")
    assert orders == {"orders": []}
    # What got through the browser reached the shop and was refused, every time (the
    # shop page's own count poll, a GET, may still be answered as it is left).
    assert "sent" in outcomes and "form posted" in outcomes
    writes = [seen for seen in answered if seen[0] not in ("GET", "HEAD")]
    assert writes, "no attack request reached the shop"
    assert all(status == 403 for _, _, status in writes), answered
    # The shop's own page still writes.
    page.goto(f"{shop}/")
    add(page, "grinder", 1)
    expect(page.get_by_test_id("cart-count")).to_have_text(re.compile("^3$"))


# -- a shared browser: two accounts, one after the other --------------------------------

FILLER = [Product(f"filler-{i:02d}", f"Filler {i}", "fills a cart", 100, "kettle.svg")
          for i in range(MAX_LINES)]


def fill_account_cart(stack: Any, email: str) -> None:
    """The account's cart at the distinct-line cap, written straight to the stack's table."""
    session = requests.Session()
    assert session.post(f"{stack.url}/api/account/signin", headers=JSON, timeout=10,
                        json={"email": email, "password": PASSWORD}).status_code == 200
    sub = jwt.decode(session.cookies["session"], options={"verify_signature": False})["sub"]
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto_url, region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key="local")
    cart = table.cart_pk(account_cart_id(sub))
    expires = str(expiry_after(int(time.time())))
    for product in FILLER:
        dynamodb.put_item(TableName=stack.table_name, Item={
            "pk": {"S": cart}, "sk": {"S": table.line_sk(product.id)},
            "productId": {"S": product.id}, "name": {"S": product.name},
            "unitPriceCents": {"N": "100"}, "quantity": {"N": "1"},
            "updatedAt": {"S": "2026-01-01T00:00:00.000Z"}, table.TTL_ATTRIBUTE: {"N": expires}})
    assert len(session.get(f"{stack.url}/api/cart", timeout=10).json()["items"]) == MAX_LINES


def test_a_second_account_on_a_shared_browser_sees_nothing_of_the_first(
        visitor: Page, live_stack: Any) -> None:  # noqa: F811
    page = visitor
    shop = live_stack.url
    ada, bob = signed_up(live_stack), signed_up(live_stack)
    fill_account_cart(live_stack, ada)
    page.goto(f"{shop}/")
    add(page, "tote", 1)
    expect_badge(page, 1, "$18.00")
    page.get_by_role("link", name=re.compile("Your cart")).click()
    page.get_by_test_id("checkout").click()
    expect(page).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
    order_url = page.url
    page.goto(f"{shop}/")
    add(page, "kettle", 1)  # Ada's cart has no room for it: left behind
    expect_badge(page, 1, "$59.00")

    page.get_by_test_id("sign-in-link").click()
    sign_in(page, ada)
    expect(page.get_by_test_id("signin-form").get_by_role("status")).to_contain_text(
        "your cart had no room for: kettle")
    page.goto(f"{shop}/orders")
    expect(page.get_by_test_id("signed-in-as")).to_contain_text(ada)
    expect(page.locator(f'[data-order-id="{order_url.rsplit("/", 1)[1]}"]')).to_be_visible()
    # Ada's session ends without a sign-out (it expired, or she just closed the tab):
    # the browser holds only what it held before she signed in.
    page.context.clear_cookies(name="session")
    page.context.clear_cookies(name="refresh")

    page.goto(f"{shop}/account")
    sign_in(page, bob)
    expect(page.get_by_test_id("signed-in-as")).to_contain_text(bob)
    page.goto(order_url)
    expect(page.get_by_role("heading", name="Order not found")).to_be_visible()
    page.goto(f"{shop}/orders")
    expect(page.get_by_text("No orders yet.")).to_be_visible()
    page.goto(f"{shop}/cart")
    expect(page.get_by_text("Your cart is empty.")).to_be_visible()
    assert "cart" not in {c["name"] for c in page.context.cookies(shop)}
    # Ada, anywhere, still has her order.
    again = requests.Session()
    again.post(f"{shop}/api/account/signin", headers=JSON, timeout=10,
               json={"email": ada, "password": PASSWORD})
    orders = again.get(f"{shop}/api/orders", timeout=10).json()["orders"]
    assert [order["orderId"] for order in orders] == [order_url.rsplit("/", 1)[1]]
