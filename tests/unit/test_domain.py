"""The cart's rules, with no IO at all."""

from __future__ import annotations

import pytest

from chalicelib import validation
from chalicelib.domain import (
    CART_TTL_SECONDS,
    CartLine,
    InvalidInput,
    expiry_after,
    headroom,
    is_live,
    totals,
)
from chalicelib.services import iso


def test_totals_count_quantities_not_lines():
    lines = [CartLine("a", "A", 250, 3), CartLine("b", "B", 1999, 1)]
    result = totals(lines)
    assert (result.item_count, result.subtotal_cents) == (4, 2749)


def test_totals_of_nothing_are_zero():
    assert totals([]).item_count == 0 and totals([]).subtotal_cents == 0


def test_an_item_is_live_until_its_ttl_passes():
    assert is_live(None, 100)
    assert is_live(101, 100)
    assert not is_live(100, 100)
    assert expiry_after(100) == 100 + CART_TTL_SECONDS == 100 + 30 * 24 * 3600


def test_headroom_keeps_a_line_at_99():
    assert headroom(1) == 98 and headroom(99) == 0


def test_iso_timestamps_sort_as_text():
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(1.2345) == "1970-01-01T00:00:01.234Z"
    assert iso(9.999) < iso(10.0)


def test_add_item_accepts_a_product_and_quantity():
    assert validation.add_item({"productId": "kettle", "quantity": 99}) == ("kettle", 99)


@pytest.mark.parametrize("body, message", [
    (None, "JSON object"),
    ([], "JSON object"),
    ("kettle", "JSON object"),
    ({}, "missing field(s): productId, quantity"),
    ({"productId": "kettle"}, "missing field(s): quantity"),
    ({"productId": "kettle", "quantity": 1, "colour": "red"}, "unknown field(s): colour"),
    ({"productId": "kettle", "quantity": 1, "priceCents": 1}, "prices come from the catalog"),
    ({"productId": "kettle", "quantity": 1, "unitPrice": 1}, "prices come from the catalog"),
    ({"productId": "kettle", "quantity": 0}, "between 1 and 99"),
    ({"productId": "kettle", "quantity": 100}, "between 1 and 99"),
    ({"productId": "kettle", "quantity": -1}, "between 1 and 99"),
    ({"productId": "kettle", "quantity": 1.5}, "whole number"),
    ({"productId": "kettle", "quantity": "2"}, "whole number"),
    ({"productId": "kettle", "quantity": True}, "whole number"),
    ({"productId": 7, "quantity": 1}, "productId"),
    ({"productId": "", "quantity": 1}, "productId"),
    ({"productId": "../etc", "quantity": 1}, "productId"),
    ({"productId": "x" * 65, "quantity": 1}, "productId"),
])
def test_add_item_rejects_bad_bodies_with_a_reason(body, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        validation.add_item(body)


def test_set_quantity_allows_zero_and_rejects_100():
    assert validation.set_quantity({"quantity": 0}) == 0
    with pytest.raises(InvalidInput):
        validation.set_quantity({"quantity": 100})
    with pytest.raises(InvalidInput, match="unknown field"):
        validation.set_quantity({"quantity": 1, "productId": "kettle"})


class CatalogOf:
    def __init__(self, *products):
        self.products = list(products)
        self.loads = 0

    def list_catalog(self):
        self.loads += 1
        return list(self.products)

    def counts(self):
        self.counted = getattr(self, "counted", 0) + 1
        return {p.id: 3 for p in self.products}

    def shared_counts(self, now, max_age, lease_seconds, force=False):
        self.forced = getattr(self, "forced", 0) + int(force)
        return self.counts()


def test_the_catalog_cache_reloads_once_stale():
    from chalicelib.domain import Product
    from chalicelib.services import CATALOG_CACHE_SECONDS, CatalogCache

    now = [1000.0]
    repo = CatalogOf(Product("kettle", "Kettle", "", 5900, "k.svg"))
    cache = CatalogCache(clock=lambda: now[0])
    assert cache.get(repo, "kettle").price_cents == 5900
    repo.products = [Product("kettle", "Kettle", "", 6100, "k.svg")]
    assert cache.get(repo, "kettle").price_cents == 5900 and repo.loads == 1
    now[0] += CATALOG_CACHE_SECONDS + 1
    assert cache.get(repo, "kettle").price_cents == 6100 and repo.loads == 2
    with pytest.raises(Exception, match="grinder"):
        cache.get(repo, "grinder")
    assert repo.loads == 2


def test_counts_are_cached_for_seconds_and_names_for_a_minute():
    from chalicelib.domain import Product
    from chalicelib.services import COUNTS_CACHE_SECONDS, CatalogCache

    now = [1000.0]
    repo = CatalogOf(Product("kettle", "Kettle", "", 5900, "k.svg"))
    cache = CatalogCache(clock=lambda: now[0])
    assert [p.in_carts for p in cache.products(repo)] == [3]
    assert cache.products(repo) and (repo.loads, repo.counted) == (1, 1)
    now[0] += COUNTS_CACHE_SECONDS + 1
    cache.products(repo)
    assert (repo.loads, repo.counted) == (1, 2)
