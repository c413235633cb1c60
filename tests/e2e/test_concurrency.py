"""Many shoppers' worth of adds on one cart, at once, through the local stack's HTTP API.

The load is designed so that its exact outcome is known in advance: spread
over the catalog, no line reaches the cap of 99 and every add must land; on
one product, exactly as many adds as fit under the cap succeed and the rest
are refused with 409. Then the stream-built summary must match to the unit.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from chalicelib.domain import MAX_QUANTITY
from tests.e2e.helpers import LiveStack, wait_until
from tests.factories import JSON, SEED, add_body

THREADS = 16
ADDS_PER_THREAD = 50
PRICES = {product.id: product.price_cents for product in SEED}
PRODUCTS = [product.id for product in SEED]


def first_add(stack: LiveStack, product_id: str) -> str:
    """Create the cart before the threads start; its Cookie header."""
    response = requests.post(f"{stack.url}/api/cart/items", headers=JSON,
                             data=add_body(product_id, 1), timeout=10)
    assert response.status_code == 201, response.text
    return "cart=" + response.cookies["cart"]


def hammer(stack: LiveStack, cookie: str, plan: list[list[str]]) -> Counter[int]:
    """Each thread adds one unit of each product in its list; the status codes."""
    start = threading.Barrier(len(plan))

    def shopper(products: list[str]) -> Counter[int]:
        session = requests.Session()
        codes: Counter[int] = Counter()
        start.wait()
        for product_id in products:
            response = session.post(f"{stack.url}/api/cart/items",
                                    headers={**JSON, "Cookie": cookie},
                                    data=add_body(product_id, 1), timeout=30)
            codes[response.status_code] += 1
        return codes

    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        return sum(pool.map(shopper, plan), Counter())


def cart(stack: LiveStack, cookie: str) -> dict[str, Any]:
    response = requests.get(f"{stack.url}/api/cart", headers={"Cookie": cookie}, timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def settled_status(stack: LiveStack, cookie: str, item_count: int) -> dict[str, Any]:
    def status() -> dict[str, Any] | None:
        response = requests.get(f"{stack.url}/api/cart/status",
                                headers={"Cookie": cookie}, timeout=10)
        body = dict(response.json())
        return body if body["itemCount"] == item_count else None
    return wait_until(status, timeout=30.0, interval=0.2)


def test_adds_from_16_threads_spread_over_the_catalog_all_land_exactly(
        live_stack: LiveStack) -> None:
    cookie = first_add(live_stack, PRODUCTS[0])
    # Add number n (of 800) goes to product n mod 9: at most 89 (+1) per line.
    plan = [[PRODUCTS[(t * ADDS_PER_THREAD + i) % len(PRODUCTS)]
             for i in range(ADDS_PER_THREAD)] for t in range(THREADS)]
    expected = Counter(product for products in plan for product in products)
    expected[PRODUCTS[0]] += 1
    assert max(expected.values()) <= MAX_QUANTITY

    codes = hammer(live_stack, cookie, plan)

    assert codes == {201: THREADS * ADDS_PER_THREAD}
    shown = cart(live_stack, cookie)
    assert {i["productId"]: i["quantity"] for i in shown["items"]} == expected
    subtotal = sum(PRICES[p] * q for p, q in expected.items())
    assert (shown["itemCount"], shown["subtotalCents"]) == (THREADS * ADDS_PER_THREAD + 1,
                                                            subtotal)
    summary = settled_status(live_stack, cookie, THREADS * ADDS_PER_THREAD + 1)
    assert summary["subtotalCents"] == subtotal


def test_adds_from_16_threads_to_one_line_stop_exactly_at_the_cap(
        live_stack: LiveStack) -> None:
    cookie = first_add(live_stack, "kettle")
    plan = [["kettle"] * ADDS_PER_THREAD for _ in range(THREADS)]

    codes = hammer(live_stack, cookie, plan)

    fit = MAX_QUANTITY - 1
    # Exactly the adds that fit are 201. Each add is a transaction now (at most once,
    # issue 16), and moto copies the table for every one: under 16 threads on one
    # line the local server may answer some late, past botocore's timeouts (503); the
    # line at 99 below shows none of those applied beyond the cap.
    assert codes[201] == fit and set(codes) <= {201, 409, 503}
    assert sum(codes.values()) == THREADS * ADDS_PER_THREAD
    shown = cart(live_stack, cookie)
    assert [(i["productId"], i["quantity"]) for i in shown["items"]] == [("kettle", 99)]
    summary = settled_status(live_stack, cookie, MAX_QUANTITY)
    assert summary["subtotalCents"] == MAX_QUANTITY * PRICES["kettle"]
