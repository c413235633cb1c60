"""Managing the catalog of the running local stack, and what shoppers see of it.

`make catalog FILE=...` runs `python -m deploy.catalog FILE --moto-port
$(MOTO_PORT)`; these tests run that command against the live stack's moto.
The stack's catalog cache is 2 s here (tests/e2e/conftest.py), 60 s by
default. Each test uses products of its own (uuid ids): the stack is shared.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess  # nosec B404: the project's own command line
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from chalicelib.domain import Product
from deploy import catalog as catalog_file
from tests.e2e.helpers import wait_until
from tests.e2e.test_browser import (  # noqa: F401, F811  (its fixtures, shared)
    browser_type_launch_args,
    card,
    line,
    visitor,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,name,description,priceCents,stock,active,image\n"


def make_catalog(stack: Any, path: Path) -> subprocess.CompletedProcess[str]:
    """What `make catalog FILE=path` runs, against this stack's moto."""
    return subprocess.run(  # nosec B603: our own module, no shell
        [sys.executable, "-m", "deploy.catalog", str(path), "--moto-port",
         str(stack.moto_port)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        check=False)


def products(stack: Any) -> dict[str, Any]:
    with urllib.request.urlopen(f"{stack.url}/api/products", timeout=10) as response:  # nosec
        return {p["id"]: p for p in json.loads(response.read())["products"]}


def product(name: str, **fields: Any) -> Product:
    values: dict[str, Any] = {"id": f"e2e-{name}-{uuid.uuid4().hex[:8]}",
                              "name": f"Test {name}", "description": "For a test.",
                              "price_cents": 1000, "image": "product.svg", "stock": 50}
    values.update(fields)
    return Product(**values)


def load(stack: Any, *items: Product) -> None:
    """What `make catalog` does with a file holding these products."""
    repo = catalog_file.DynamoCatalog(stack.dynamodb(), "chalice-cart-local")
    catalog_file.apply(repo, list(items), out=lambda line: None)


def test_make_catalog_validates_the_whole_file_then_upserts_it(live_stack, tmp_path):
    lamp = f"e2e-lamp-{uuid.uuid4().hex[:8]}"
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"{lamp},Lamp,Warm.,1500,4,true,\n"
                   "e2e-x,X,Y,12.50,1,true,\n")
    failed = make_catalog(live_stack, bad)
    assert failed.returncode == 2
    assert "line 3: priceCents (integer cents) must be" in failed.stderr
    assert "nothing written" in failed.stderr
    assert lamp not in products(live_stack)

    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"{lamp},Lamp,Warm.,1500,4,true,\n")
    first = make_catalog(live_stack, good)
    assert first.returncode == 0, first.stderr
    assert f"added      {lamp}: Lamp, $15.00, stock 4" in first.stdout
    again = make_catalog(live_stack, good)
    assert "0 added, 0 changed, 0 withdrew, 1 unchanged" in again.stdout

    good.write_text(HEADER + f"{lamp},Lamp,Warm.,1500,4,false,\n")
    withdrawn = make_catalog(live_stack, good)
    assert f"withdrew   {lamp}: Lamp" in withdrawn.stdout
    assert "espresso-cup" in products(live_stack)  # not in the file: untouched


def test_a_price_change_shows_in_the_cart_before_the_order(visitor: Page, live_stack) -> None:  # noqa: F811
    mill = product("mill", price_cents=1000)
    load(live_stack, mill)
    wait_until(lambda: mill.id in products(live_stack), timeout=10)
    visitor.goto(f"{live_stack.url}/")
    card(visitor, mill.id).get_by_test_id("add-to-cart").click()
    expect(visitor.get_by_test_id("cart-count")).to_have_text("1")

    load(live_stack, dataclasses.replace(mill, price_cents=1500))
    visitor.goto(f"{live_stack.url}/cart")
    expect(line(visitor, mill.id)).to_contain_text("$15.00 each")
    expect(line(visitor, mill.id).get_by_test_id("price-changed")).to_have_text(
        re.compile(r"Price changed: was \$10\.00"))

    visitor.get_by_test_id("checkout").click()
    expect(visitor.locator("#error-checkout")).to_contain_text(
        "prices changed since the cart was shown")
    expect(line(visitor, mill.id).get_by_test_id("price-changed")).to_be_hidden()
    visitor.get_by_test_id("checkout").click()
    expect(visitor).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
    expect(visitor.get_by_text("$15.00").first).to_be_visible()


def test_a_sold_out_product_says_so_on_the_shop_page(visitor: Page, live_stack) -> None:  # noqa: F811
    lantern = product("lantern", stock=2)
    load(live_stack, lantern)
    wait_until(lambda: lantern.id in products(live_stack), timeout=10)
    visitor.goto(f"{live_stack.url}/")
    expect(card(visitor, lantern.id).get_by_test_id("availability")).to_have_text("only 2 left")

    load(live_stack, dataclasses.replace(lantern, stock=0))
    wait_until(lambda: products(live_stack)[lantern.id]["soldOut"], timeout=10)
    visitor.reload()
    expect(card(visitor, lantern.id).get_by_test_id("availability")).to_have_text("sold out")
    expect(card(visitor, lantern.id).get_by_test_id("add-to-cart")).to_be_disabled()


def test_a_withdrawn_line_is_marked_and_removed_from_the_cart(visitor: Page, live_stack) -> None:  # noqa: F811
    cup = product("cup")
    load(live_stack, cup)
    wait_until(lambda: cup.id in products(live_stack), timeout=10)
    visitor.goto(f"{live_stack.url}/")
    card(visitor, cup.id).get_by_test_id("add-to-cart").click()
    card(visitor, "filters").get_by_test_id("add-to-cart").click()
    expect(visitor.get_by_test_id("cart-count")).to_have_text("2")

    load(live_stack, dataclasses.replace(cup, active=False))
    visitor.goto(f"{live_stack.url}/cart")
    expect(line(visitor, cup.id).get_by_test_id("withdrawn")).to_have_text(
        re.compile("No longer available"))
    expect(visitor.locator('[data-role="subtotal"]')).to_have_text("$6.50")
    line(visitor, cup.id).get_by_test_id("remove-line").click()
    expect(visitor.get_by_test_id("cart-line")).to_have_count(1)
    visitor.get_by_test_id("checkout").click()
    expect(visitor).to_have_url(re.compile(r"/orders/[0-9a-f]{32}$"))
