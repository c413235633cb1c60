"""The shopping UI in Chrome or Chromium, against the local stack `make run` starts.

Every test gets a fresh browser context: a new visitor with no cart cookie.
On failure a full-page screenshot is kept under test-results/<test>/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Locator, Page, Request, Response, expect

from devstack.browser import HOW_TO, NoBrowser, find_browser

pytestmark = pytest.mark.e2e

LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
FIRST_LOAD_BUDGET = 60 * 1024
STREAM_TIMEOUT_MS = 15_000  # the stream runner, then a poll, on a busy CI box


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # The one lookup `make browser` uses (CHROME_PATH first): the same browser.
    try:
        chromium = find_browser()
    except NoBrowser as exc:
        pytest.skip(str(exc))
    if chromium is None:
        pytest.skip(f"no Chrome or Chromium found: {HOW_TO} (`make browser`)")
    return {**browser_type_launch_args, "executable_path": str(chromium), "args": LAUNCH_ARGS}


@pytest.fixture
def visitor(page: Page, output_path: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new visitor's page; a screenshot of it is kept if the test fails."""
    failures = request.session.testsfailed
    page.set_default_timeout(10_000)
    yield page
    if request.session.testsfailed > failures:
        Path(output_path).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(output_path) / "failure.png"), full_page=True)


@pytest.fixture
def shop(visitor: Page, live_stack: Any) -> Page:
    visitor.goto(f"{live_stack.url}/")
    return visitor


def card(page: Page, product_id: str) -> Locator:
    return page.locator(f'[data-testid="product-card"][data-product-id="{product_id}"]')


def line(page: Page, product_id: str) -> Locator:
    return page.locator(f'[data-testid="cart-line"][data-product-id="{product_id}"]')


def add(page: Page, product_id: str, quantity: int | str = 1) -> None:
    product = card(page, product_id)
    product.get_by_label(re.compile("^Qty")).fill(str(quantity))
    product.get_by_test_id("add-to-cart").click()


def expect_badge(page: Page, count: int, subtotal: str) -> None:
    expect(page.get_by_test_id("cart-count")).to_have_text(str(count))
    expect(page.get_by_test_id("cart-subtotal")).to_have_text(subtotal)


def test_a_visitor_shops_checks_out_and_sees_the_order_confirmed(shop: Page) -> None:
    add(shop, "espresso-cup", 1)
    add(shop, "kettle", 2)
    expect_badge(shop, 3, "$130.00")

    shop.get_by_role("link", name=re.compile("Your cart")).click()
    expect(shop).to_have_url(re.compile(r"/cart$"))
    expect(shop.get_by_test_id("cart-line")).to_have_count(2)
    expect(line(shop, "kettle")).to_contain_text("$118.00")

    quantity = line(shop, "espresso-cup").get_by_test_id("line-quantity")
    quantity.fill("3")
    quantity.press("Enter")
    expect(line(shop, "espresso-cup")).to_contain_text("$36.00")
    expect(shop.locator('[data-role="subtotal"]')).to_have_text("$154.00")
    expect_badge(shop, 5, "$154.00")

    line(shop, "kettle").get_by_test_id("remove-line").click()
    expect(shop.get_by_test_id("cart-line")).to_have_count(1)
    expect(shop.locator('[data-role="subtotal"]')).to_have_text("$36.00")
    expect_badge(shop, 3, "$36.00")

    shop.get_by_test_id("checkout").click()
    expect(shop).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
    expect(shop.get_by_test_id("order-status")).to_have_text(
        "CONFIRMED", timeout=STREAM_TIMEOUT_MS)
    expect(shop.get_by_text("Espresso cup")).to_be_visible()
    expect_badge(shop, 0, "$0.00")

    shop.get_by_role("link", name=re.compile("Your cart")).click()
    expect(shop.get_by_text("Your cart is empty.")).to_be_visible()


def test_an_out_of_range_quantity_shows_the_servers_message_next_to_it(
        shop: Page, live_stack: Any) -> None:
    kettle = card(shop, "kettle")
    add(shop, "kettle", 150)
    expect(kettle.get_by_role("alert")).to_have_text("quantity must be between 1 and 99")
    expect(kettle.get_by_label(re.compile("^Qty"))).to_have_attribute("aria-invalid", "true")
    expect(shop.get_by_role("alert")).to_have_count(1)

    add(shop, "kettle", 60)
    expect(kettle.get_by_role("alert")).to_have_count(0)
    expect_badge(shop, 60, "$3,540.00")
    add(shop, "kettle", 60)
    expect(kettle.get_by_role("alert")).to_have_text(
        "a cart line holds at most 99; this line holds 60 already")

    shop.goto(f"{live_stack.url}/cart")
    quantity = line(shop, "kettle").get_by_test_id("line-quantity")
    quantity.fill("100")
    quantity.press("Enter")
    expect(line(shop, "kettle").get_by_role("alert")).to_have_text(
        "quantity must be between 0 and 99")
    expect(line(shop, "kettle")).to_contain_text("$3,540.00")


def test_rapid_clicks_by_a_new_visitor_land_in_one_cart(shop: Page, live_stack: Any) -> None:
    writes: list[Response] = []
    shop.on("response", lambda r: writes.append(r) if r.request.method == "POST" else None)
    button = card(shop, "filters").get_by_test_id("add-to-cart")
    # Five clicks in one task: none can wait for the page to settle in between.
    button.evaluate("b => { for (let i = 0; i < 5; i++) b.click(); }")
    expect_badge(shop, 5, "$32.50")

    cart = shop.request.get(f"{live_stack.url}/api/cart").json()
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("filters", 5)]
    assert [w.status for w in writes] == [201] * 5
    cookies = [w.header_value("set-cookie") or "" for w in writes]
    assert len({re.sub(r"^cart=([0-9a-f]{32})\..*$", r"\1", c) for c in cookies}) == 1, cookies


def test_the_shop_works_from_the_keyboard(shop: Page) -> None:
    shop.keyboard.press("Tab")
    expect(shop.get_by_role("link", name="Skip to content")).to_be_focused()
    quantity = card(shop, "tote").get_by_label(re.compile("^Qty"))
    quantity.focus()
    shop.keyboard.press("ArrowUp")
    expect(quantity).to_have_value("2")
    shop.keyboard.press("Tab")
    expect(card(shop, "tote").get_by_test_id("add-to-cart")).to_be_focused()
    shop.keyboard.press("Enter")
    expect_badge(shop, 2, "$36.00")


def test_the_shop_is_readable_at_375_px(shop: Page) -> None:
    shop.set_viewport_size({"width": 375, "height": 812})
    shop.reload()
    assert shop.evaluate("document.documentElement.scrollWidth") <= 375
    for element in (card(shop, "grinder"), card(shop, "grinder").get_by_test_id("add-to-cart"),
                    shop.get_by_test_id("cart-subtotal")):
        element.scroll_into_view_if_needed()
        box = element.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    button = card(shop, "grinder").get_by_test_id("add-to-cart").bounding_box()
    assert button is not None and button["height"] >= 40
    font_size = shop.evaluate("getComputedStyle(document.body).fontSize")
    assert font_size == "16px"


def test_the_first_load_of_the_shop_is_small_and_same_origin(
        visitor: Page, live_stack: Any) -> None:
    requests: list[Request] = []
    visitor.on("requestfinished", lambda r: requests.append(r))
    visitor.on("requestfailed", lambda r: requests.append(r))
    visitor.goto(f"{live_stack.url}/", wait_until="networkidle")

    origin = urlsplit(live_stack.url)
    assert {urlsplit(r.url)[:2] for r in requests} == {(origin.scheme, origin.netloc)}
    sizes = [r.sizes() for r in requests]
    total = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
    assert total <= FIRST_LOAD_BUDGET, (total, [r.url for r in requests])
