"""Seeding the catalog: missing products only, unless an operator asks for a reseed."""

from __future__ import annotations

import dataclasses
import json

from chalicelib import runtime
from tests.factories import SEED
from tests.functional.conftest import request


def prices(client):
    # A seed reaches a warm process's cache within CATALOG_CACHE_SECONDS: let it pass.
    runtime.cart_service().catalog.expire()
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    return {p["id"]: p["priceCents"] for p in products}


def test_a_seed_never_overwrites_a_live_product(client, repo):
    kettle = next(p for p in SEED if p.id == "kettle")
    repo.seed_products([dataclasses.replace(kettle, price_cents=1)], reseed=True)
    assert repo.seed_products(SEED) == []
    assert prices(client)["kettle"] == 1


def test_a_seed_adds_the_products_the_catalog_lacks(client, repo):
    new = dataclasses.replace(SEED[0], id="mug", name="Mug")
    assert repo.seed_products([*SEED, new]) == ["mug"]
    assert prices(client)["mug"] == SEED[0].price_cents


def test_a_reseed_rewrites_prices_and_keeps_the_counts(client, repo, cart, stream):
    stream.drain()
    kettle = next(p for p in SEED if p.id == "kettle")
    assert repo.seed_products([dataclasses.replace(kettle, price_cents=4242)],
                              reseed=True) == ["kettle"]
    runtime.cart_service().catalog.expire()
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    assert {p["id"]: (p["priceCents"], p["inCarts"]) for p in products}["kettle"] == (4242, 1)
