"""Test data in one place: bodies, cookies and stream plumbing the tests share."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import cookies
from deploy.catalog import seed

# The seed catalog (catalog/products.csv), as `make run` and a deploy start with it.
FULL_SEED = tuple(seed())
# What the moto tests seed: the file's first products. moto copies the whole
# table on every transaction (every cart write is one), so each catalog item
# costs every test time; the e2e stack serves the whole file.
SEED = FULL_SEED[:9]
TABLE_NAME = "chalice-cart-test"
COOKIE_SECRET = "test-secret-not-for-anything-else"
ESPRESSO = SEED[0]
KETTLE = SEED[2]
JSON = {"Content-Type": "application/json"}


def add_body(product_id: str = ESPRESSO.id, quantity: int = 1, **extra: Any) -> str:
    return json.dumps({"productId": product_id, "quantity": quantity, **extra})


def cookie_for(cart_id: str, issued: int, secret: str = COOKIE_SECRET) -> str:
    return f"{cookies.COOKIE_NAME}={cookies.sign(secret.encode(), cart_id, issued)}"


def cookie_from(response: Any) -> str:
    """The `name=value` part of a response's Set-Cookie."""
    header = response.headers["Set-Cookie"]
    return str(header.split(";", 1)[0])
