"""Accounts in Debian's Chromium: the cart survives signing up and in; orders follow the account.

The browser-wide launch settings are test_browser.py's (Debian's Chromium, offline flags).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_accounts_live import confirmation_code
from tests.e2e.test_browser import (  # noqa: F401, F811  (its fixtures, shared)
    STREAM_TIMEOUT_MS,
    add,
    browser_type_launch_args,
    expect_badge,
    line,
    visitor,
)

pytestmark = pytest.mark.e2e
PASSWORD = "Pour-0ver-please"


def sign_in(page: Page, email: str) -> None:
    form = page.get_by_test_id("signin-form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()


def test_the_cart_survives_sign_up_and_sign_in_and_the_order_follows_the_account(
        visitor: Page, browser: Browser, live_stack: Any) -> None:  # noqa: F811
    page = visitor  # a screenshot of it is kept if the test fails
    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{live_stack.url}/")
    add(page, "pour-over", 2)
    expect_badge(page, 2, "$49.00")

    page.get_by_test_id("sign-in-link").click()
    expect(page).to_have_url(re.compile(r"/account$"))
    signup = page.get_by_test_id("signup-form")
    signup.get_by_label("Email").fill(email)
    signup.get_by_label("Password").fill("weak")
    signup.get_by_role("button", name="Create account").click()
    expect(signup.get_by_role("alert")).to_have_text(
        "the password needs at least 8 characters")
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_role("button", name="Create account").click()

    confirm = page.get_by_test_id("confirm-form")
    expect(confirm.get_by_role("status")).to_contain_text(f"code to {email}")
    expect(confirm.get_by_label("Confirmation code")).to_be_focused()
    expect(confirm.get_by_label("Email")).to_have_value(email)
    page.keyboard.type(confirmation_code(live_stack, email))
    page.keyboard.press("Enter")

    signin = page.get_by_test_id("signin-form")
    expect(signin.get_by_role("status")).to_contain_text("confirmed")
    expect(signin.get_by_label("Password")).to_be_focused()
    signin.get_by_label("Password").fill("Wrong-password-1")
    signin.get_by_role("button", name="Sign in").click()
    expect(signin.get_by_role("alert")).to_have_text("wrong e-mail or password")
    sign_in(page, email)

    expect(page).to_have_url(re.compile(r"/cart$"))
    expect(page.get_by_test_id("signed-in-as")).to_contain_text(email)
    expect(line(page, "pour-over").get_by_test_id("line-quantity")).to_have_value("2")
    page.get_by_test_id("checkout").click()
    expect(page).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
    order_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("order-status")).to_have_text(
        "CONFIRMED", timeout=STREAM_TIMEOUT_MS)

    other = browser.new_context(viewport={"width": 375, "height": 812})
    try:
        phone = other.new_page()
        phone.set_default_timeout(10_000)
        phone.goto(f"{live_stack.url}/orders")
        expect(phone.get_by_test_id("order-row")).to_have_count(0)
        phone.get_by_test_id("sign-in-link").click()
        sign_in(phone, email)
        expect(phone).to_have_url(re.compile(r"/cart$"))
        expect(phone.get_by_text("Your cart is empty.")).to_be_visible()
        phone.get_by_role("link", name="Orders").click()
        row = phone.locator(f'[data-testid="order-row"][data-order-id="{order_id}"]')
        expect(row).to_contain_text("CONFIRMED")
        expect(row).to_contain_text("$49.00")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375
        row.get_by_role("link").click()
        expect(phone).to_have_url(re.compile(f"/orders/{order_id}$"))
        expect(phone.get_by_text("Pour-over dripper")).to_be_visible()

        phone.get_by_test_id("signed-in-as").click()
        expect(phone.get_by_test_id("account-email")).to_have_text(email)
        phone.get_by_test_id("sign-out").click()
        expect(phone).to_have_url(re.compile(r"/$"))
        expect(phone.get_by_test_id("sign-in-link")).to_be_visible()
        expect_badge(phone, 0, "$0.00")
    finally:
        other.close()


def test_an_account_error_marks_and_focuses_the_field_it_is_about(
        visitor: Page, live_stack: Any) -> None:  # noqa: F811
    page = visitor
    page.goto(f"{live_stack.url}/account")
    signup = page.get_by_test_id("signup-form")
    signup.get_by_label("Email").fill("not-an-email")
    signup.get_by_label("Password").fill(PASSWORD)
    signup.get_by_label("Password").press("Enter")
    expect(signup.get_by_role("alert")).to_have_text("email must be an e-mail address")
    expect(signup.get_by_label("Email")).to_be_focused()
    expect(signup.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    signup.get_by_label("Email").fill(f"focus-{uuid.uuid4().hex[:8]}@example.com")
    signup.get_by_label("Password").fill("alllowercase1")
    signup.get_by_role("button", name="Create account").click()
    expect(signup.get_by_role("alert")).to_have_text("the password needs an uppercase letter")
    expect(signup.get_by_label("Password")).to_be_focused()
    expect(signup.get_by_label("Email")).not_to_have_attribute("aria-invalid", "true")
