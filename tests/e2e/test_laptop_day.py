"""A laptop stack that lasts a day: flat memory, TTL expiry, accounts across a restart.

Against `python -m devstack run` over HTTP, as a shopper (or a developer
restarting `make run`) would. The full-size figures (10,000 operations) are
`make bench`'s section 10; here the same session at a smaller scale.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.endurance import moto_pid, shop
from tests.e2e.helpers import LiveStack, start_stack, wait_until
from tests.factories import JSON, add_body

PASSWORD = "Pour-0ver-please"


def test_the_local_store_memory_stays_flat_over_a_shopping_session(
        live_stack: LiveStack) -> None:
    # 200 operations, 20 keyed checkouts: moto as shipped grew ~450 KB per
    # operation here (97 -> 188 MB: every transaction copied the table and kept it).
    session = shop(live_stack.url, moto_pid(live_stack.pids), operations=200,
                   sample_every=50)
    assert session.errors == {}
    assert session.orders == 20
    growth = session.growth_kb_per_op(skip=50)  # past the first imports and caches
    assert growth < 150, (growth, session.rss_mb)


def control(stack: LiveStack, name: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{stack.moto_url}/_devstack/{name}", data=b"",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310: loopback
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def test_a_cart_line_past_its_ttl_expires_and_the_status_follows(
        live_stack: LiveStack) -> None:
    shopper = requests.Session()
    for product in ("kettle", "grinder"):
        added = shopper.post(f"{live_stack.url}/api/cart/items", headers=JSON,
                             data=add_body(product, 1), timeout=10)
        assert added.status_code == 201, added.text

    def status() -> dict[str, Any]:
        return dict(shopper.get(f"{live_stack.url}/api/cart/status", timeout=10).json())

    wait_until(lambda: status()["itemCount"] == 2, timeout=15)
    cart_id = shopper.cookies["cart"].split(".")[0]  # <cartId>.<issued>.<signature>
    # 30 days pass for the kettle line only: its expiresAt is now behind us.
    live_stack.dynamodb().update_item(
        TableName=live_stack.table_name,
        Key={"pk": {"S": f"CART#{cart_id}"}, "sk": {"S": "LINE#kettle"}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})

    assert control(live_stack, "ttl-sweep")["expired"] >= 1  # what the 60 s timer does
    wait_until(lambda: status()["itemCount"] == 1, timeout=15)
    cart = shopper.get(f"{live_stack.url}/api/cart", timeout=10).json()
    assert [line["productId"] for line in cart["items"]] == ["grinder"]


def post(session: requests.Session, stack: LiveStack, path: str,
         body: object | None = None) -> requests.Response:
    return session.post(f"{stack.url}{path}", json=body, headers=JSON, timeout=10)


def test_an_account_signs_in_again_after_a_restart_and_finds_its_cart_and_orders(
        tmp_path: Path) -> None:
    state = tmp_path / "accounts-stack"
    email = f"shopper-{uuid.uuid4().hex[:12]}@example.com"
    stack = start_stack(state)
    try:
        before = requests.Session()
        assert post(before, stack, "/api/account/signup",
                    {"email": email, "password": PASSWORD}).status_code == 201
        assert post(before, stack, "/api/account/confirm",
                    {"email": email, "code": "000000"}).status_code == 204
        assert post(before, stack, "/api/account/signin",
                    {"email": email, "password": PASSWORD}).status_code == 200
        assert post(before, stack, "/api/cart/items", {"productId": "kettle",
                                                       "quantity": 1}).status_code == 201
        order = post(before, stack, "/api/cart/checkout")
        assert order.status_code == 201, order.text
        assert post(before, stack, "/api/cart/items", {"productId": "grinder",
                                                       "quantity": 2}).status_code == 201
    finally:
        assert stack.stop() == 0
    assert (state / "accounts.json").stat().st_mode & 0o077 == 0  # passwords: owner only

    stack = start_stack(state)
    try:
        assert "1 accounts restored" in stack.output()
        after = requests.Session()  # another browser: only the e-mail and password
        signed_in = post(after, stack, "/api/account/signin",
                         {"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        cart = after.get(f"{stack.url}/api/cart", timeout=10).json()
        orders = after.get(f"{stack.url}/api/orders", timeout=10).json()["orders"]
        again = post(requests.Session(), stack, "/api/account/signup",
                     {"email": email, "password": PASSWORD})
    finally:
        stack.stop()

    assert [(line["productId"], line["quantity"]) for line in cart["items"]] == [("grinder", 2)]
    assert [o["orderId"] for o in orders] == [order.json()["orderId"]]
    assert again.status_code == 409  # the e-mail still has its account
