"""The cart's rules: pure values and functions, no IO, no AWS, no HTTP."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CURRENCY = "USD"
MIN_QUANTITY = 1
MAX_QUANTITY = 99
CART_TTL_SECONDS = 30 * 24 * 3600
# Distinct products in one cart. Checkout is one DynamoDB transaction (at most
# 100 actions): the order, one delete and one stock update per line, the cart's
# header and, with an Idempotency-Key, the key's record: at most 2 x lines + 3
# (2 x lines + 2 without a key), so 48 lines would fit; 45 leaves 7 actions for
# lines split over stock shards when no single shard holds them
# (chalicelib/catalog.py; docs/DATA-MODEL.md "Checkout").
MAX_LINES = 45
# Actions checkout's transaction has besides one delete and one take per line, at
# most (the order, the header, a keyed request's key record).
CHECKOUT_FIXED_ACTIONS = 3


class DomainError(Exception):
    """Base of every rule the cart enforces."""


class InvalidInput(DomainError):
    """The request is malformed: wrong shape, type or range."""


class UnknownProduct(DomainError):
    """The product id is not in the catalog."""


class QuantityLimitExceeded(DomainError):
    """The line would hold more than MAX_QUANTITY."""


class TooManyLines(DomainError):
    """The cart would hold more than MAX_LINES distinct products."""


class EmptyCart(DomainError):
    """Checkout of a cart with no lines."""


class CartChanged(DomainError):
    """The cart changed while an operation that needs a stable cart ran."""


class OrderNotFound(DomainError):
    """No such order for this cart."""


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    description: str
    price_cents: int
    image: str
    in_carts: int = 0
    stock: int = 0  # units on hand, summed over the product's allotment shards
    active: bool = True  # False: withdrawn from the catalog (kept for old carts and orders)
    stock_shards: int = 1  # how many STOCK# items hold the units (chalicelib/catalog.py)
    position: int = 0  # where the shop lists it: its line in the catalog file


@dataclass(frozen=True)
class CartLine:
    product_id: str
    name: str
    unit_price_cents: int
    quantity: int
    updated_at: str = ""
    expires_at: int | None = None

    @property
    def line_total_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class CartTotals:
    item_count: int
    subtotal_cents: int


@dataclass(frozen=True)
class CartSummary:
    item_count: int
    subtotal_cents: int
    updated_at: str | None


EMPTY_SUMMARY = CartSummary(item_count=0, subtotal_cents=0, updated_at=None)


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str
    lines: tuple[CartLine, ...]
    item_count: int
    subtotal_cents: int
    placed_at: str
    confirmed_at: str | None = None


def totals(lines: Iterable[CartLine]) -> CartTotals:
    """The badge's count (total quantity) and the subtotal, in cents."""
    count = 0
    subtotal = 0
    for line in lines:
        count += line.quantity
        subtotal += line.line_total_cents
    return CartTotals(item_count=count, subtotal_cents=subtotal)


def is_live(expires_at: int | None, now: int) -> bool:
    """DynamoDB deletes expired items late; a read must not see them."""
    return expires_at is None or expires_at > now


def expiry_after(now: int) -> int:
    return now + CART_TTL_SECONDS


def headroom(quantity_to_add: int) -> int:
    """The largest quantity a line may hold before adding quantity_to_add."""
    return MAX_QUANTITY - quantity_to_add


class NotInCart(DomainError):
    """The product has no live line in this cart."""


class StoreUnavailable(DomainError):
    """The database throttled, failed or timed out: retry (a timed-out write may have landed)."""
