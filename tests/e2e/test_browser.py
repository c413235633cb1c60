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
from playwright.sync_api import BrowserType, Locator, Page, Request, Response, expect

from devstack.browser import HOW_TO, NoBrowser, find_browser
from tests.e2e.helpers import store_stall

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
    # Playwright turns the back/forward cache off; a shopper's browser has it on.
    return {**browser_type_launch_args, "executable_path": str(chromium), "args": LAUNCH_ARGS,
            "ignore_default_args": ["--disable-back-forward-cache"]}


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
    # The box shows what the cart holds again, next to the message.
    expect(quantity).to_have_value("60")
    expect(quantity).to_have_attribute("aria-invalid", "true")
    expect(shop.locator('[data-role="subtotal"]')).to_have_text("$3,540.00")
    expect(shop.get_by_test_id("checkout")).to_be_enabled()


def test_rapid_clicks_by_a_new_visitor_land_in_one_cart_once_per_click_that_counts(
        shop: Page, live_stack: Any) -> None:
    writes: list[Response] = []
    shop.on("response", lambda r: writes.append(r) if r.request.method == "POST" else None)
    # Two clicks on each of three buttons in one task: none can wait for the page
    # to settle in between. The second click meets a busy (disabled) button.
    shop.evaluate("""ids => { for (const id of ids) for (let i = 0; i < 2; i++) {
        document.querySelector(`li[data-product-id="${id}"] [data-testid=add-to-cart]`).click();
    } }""", ["filters", "tote", "kettle"])
    expect_badge(shop, 3, "$83.50")

    cart = shop.request.get(f"{live_stack.url}/api/cart").json()
    assert sorted((i["productId"], i["quantity"]) for i in cart["items"]) == [
        ("filters", 1), ("kettle", 1), ("tote", 1)]
    assert [w.status for w in writes] == [201] * 3
    cookies = [w.header_value("set-cookie") or "" for w in writes]
    assert len({re.sub(r"^cart=([0-9a-f]{32})\..*$", r"\1", c) for c in cookies}) == 1, cookies
    keys = {w.request.headers.get("idempotency-key") for w in writes}
    assert len(keys) == 3 and None not in keys  # one key per add the shopper asked for


def test_the_shop_works_from_the_keyboard(shop: Page) -> None:
    shop.keyboard.press("Tab")
    expect(shop.get_by_role("link", name="Skip to content")).to_be_focused()
    quantity = card(shop, "tote").get_by_label(re.compile("^Qty"))
    quantity.focus()
    shop.keyboard.press("ArrowUp")
    expect(quantity).to_have_value("2")
    shop.keyboard.press("Tab")
    button = card(shop, "tote").get_by_test_id("add-to-cart")
    expect(button).to_be_focused()
    shop.keyboard.press("Enter")
    expect_badge(shop, 2, "$36.00")
    # The button was busy (disabled) while the add ran; the keyboard user keeps their place.
    expect(button).to_be_enabled()
    expect(button).to_be_focused()


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


def test_a_click_while_the_store_stalls_applies_exactly_once_after_it_recovers(
        shop: Page, live_stack: Any) -> None:
    add(shop, "tote", 1)
    expect_badge(shop, 1, "$18.00")
    tote = card(shop, "tote")
    button = tote.get_by_test_id("add-to-cart")
    adds: list[Request] = []
    shop.on("request", lambda r: adds.append(r) if r.method == "POST" else None)

    with store_stall(live_stack) as recover:
        # chalice local's botocore tries three times and answers 503; the page
        # waits as Retry-After says and sends the same request again.
        # The add's own 503: a status or products read the page makes meanwhile
        # may answer 503 first, and recovering then would spare the add its retry.
        def add_refused(response: Any) -> bool:
            return (response.status == 503 and response.request.method == "POST"
                    and response.url.endswith("/api/cart/items"))

        with shop.expect_response(add_refused, timeout=30_000) as busy:
            add(shop, "tote", 10)
            expect(button).to_be_disabled()
            expect(button).to_have_attribute("aria-busy", "true")
        assert busy.value.headers["retry-after"] == "1"
        assert "Idempotency" not in busy.value.json()["Message"]
        expect(button).to_have_attribute("aria-busy", "true")  # still trying
        recover()

    expect(tote.get_by_test_id("added")).to_have_text("Added 10 × Canvas tote to the cart.",
                                                      timeout=30_000)
    expect(tote.get_by_test_id("in-cart")).to_have_text("11 in your cart")
    expect(button).to_be_enabled()
    expect(button).not_to_have_attribute("aria-busy", "true")
    expect(tote.get_by_role("alert")).to_be_hidden()
    expect_badge(shop, 11, "$198.00")
    assert "Idempotency" not in shop.locator("main").inner_text()

    # Every try the store answered late still ran: the line holds +10, once.
    cart = shop.request.get(f"{live_stack.url}/api/cart").json()
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("tote", 11)]
    assert len(adds) >= 2, [r.url for r in adds]
    keys = {r.headers.get("idempotency-key") for r in adds}
    assert len(keys) == 1 and None not in keys, keys


def test_back_after_checkout_shows_the_cart_as_it_is_now(shop: Page) -> None:
    add(shop, "kettle", 1)
    expect_badge(shop, 1, "$59.00")
    shop.get_by_role("link", name=re.compile("Your cart")).click()
    expect(line(shop, "kettle")).to_be_visible()
    shop.evaluate("window.beforeCheckout = true")
    shop.get_by_test_id("checkout").click()
    expect(shop).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
    expect_badge(shop, 0, "$0.00")

    shop.go_back(wait_until="commit")  # a page restored from memory fires no load
    expect(shop).to_have_url(re.compile(r"/cart$"))
    # The very page from before checkout, restored from the back/forward cache.
    assert shop.evaluate("window.beforeCheckout === true")
    expect(shop.get_by_test_id("cart-line")).to_have_count(0)
    expect(shop.get_by_text("Your cart is empty.")).to_be_visible()
    expect(shop.get_by_test_id("checkout")).to_be_hidden()
    expect_badge(shop, 0, "$0.00")


def test_back_after_checkout_without_the_back_forward_cache_reads_the_cart_again(
        browser_type: BrowserType, browser_type_launch_args: dict[str, Any],
        live_stack: Any) -> None:
    # Without the cache the page comes back from the HTTP cache or the server;
    # either way it must not show the lines that were ordered.
    args = {k: v for k, v in browser_type_launch_args.items() if k != "ignore_default_args"}
    browser = browser_type.launch(**args)
    try:
        page = browser.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{live_stack.url}/")
        add(page, "scale", 1)
        expect_badge(page, 1, "$39.00")
        page.goto(f"{live_stack.url}/cart")
        page.get_by_test_id("checkout").click()
        expect(page).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
        page.go_back()
        expect(page).to_have_url(re.compile(r"/cart$"))
        expect(page.get_by_test_id("cart-line")).to_have_count(0)
        expect(page.get_by_text("Your cart is empty.")).to_be_visible()
        expect_badge(page, 0, "$0.00")
    finally:
        browser.close()


def test_an_add_is_confirmed_on_the_card_with_what_the_cart_now_holds(
        shop: Page, live_stack: Any) -> None:
    grinder = card(shop, "grinder")
    expect(grinder.get_by_test_id("in-cart")).to_be_hidden()
    popularity = grinder.locator('[data-role="in-carts"]')
    before = int(popularity.get_attribute("data-count") or "0")

    add(shop, "grinder", 2)
    confirmation = grinder.get_by_test_id("added")
    expect(confirmation).to_have_text("Added 2 × Burr grinder to the cart.")
    expect(confirmation).to_have_attribute("role", "status")
    expect(confirmation).to_be_visible()
    expect(grinder.get_by_test_id("in-cart")).to_have_text("2 in your cart")
    # This cart is one more that holds a grinder: the count moves without a reload.
    after = before + 1
    expect(popularity).to_have_text(f"in {after} cart" + ("s" if after != 1 else ""),
                                    timeout=STREAM_TIMEOUT_MS)

    add(shop, "grinder", 1)
    expect(grinder.get_by_test_id("in-cart")).to_have_text("3 in your cart")
    shop.reload()
    expect(card(shop, "grinder").get_by_test_id("in-cart")).to_have_text("3 in your cart")
    expect(card(shop, "kettle").get_by_test_id("in-cart")).to_be_hidden()


def test_the_cart_shows_each_lines_image_and_a_way_back_to_the_shop(
        shop: Page, live_stack: Any) -> None:
    add(shop, "pour-over", 1)
    expect_badge(shop, 1, "$24.50")
    shop.goto(f"{live_stack.url}/cart")
    image = line(shop, "pour-over").locator("img")
    expect(image).to_have_attribute("src", re.compile(r"/static/img/pour-over\.svg\?v="))
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    shop.set_viewport_size({"width": 375, "height": 812})
    assert shop.evaluate("document.documentElement.scrollWidth") <= 375
    for part in (image, line(shop, "pour-over").get_by_test_id("remove-line"),
                 line(shop, "pour-over").get_by_test_id("line-quantity")):
        box = part.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    shop.get_by_role("link", name="Continue shopping").click()
    expect(shop).to_have_url(f"{live_stack.url}/")
    expect(card(shop, "pour-over").get_by_test_id("in-cart")).to_have_text("1 in your cart")


def test_a_mistyped_address_shows_a_404_page_and_the_api_a_404_error(
        visitor: Page, live_stack: Any) -> None:
    response = visitor.goto(f"{live_stack.url}/no/such/page")
    assert response is not None and response.status == 404
    expect(visitor.get_by_role("heading", name="Page not found")).to_be_visible()
    visitor.get_by_role("link", name="Back to the shop").click()
    expect(visitor.get_by_test_id("product-card").first).to_be_visible()
    api = visitor.request.get(f"{live_stack.url}/api/no/such/route")
    assert api.status == 404
    assert api.json()["Code"] == "NotFoundError"
