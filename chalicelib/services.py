"""Use cases. Each takes plain values, talks to the repository, returns domain values."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib import idempotency, validation
from chalicelib.domain import (
    EMPTY_SUMMARY,
    CartChanged,
    CartLine,
    CartSummary,
    CartTotals,
    InvalidInput,
    NotInCart,
    Order,
    OrderNotFound,
    Product,
    UnknownProduct,
    expiry_after,
    totals,
)
from chalicelib.repository import DynamoCartRepository

Clock = Callable[[], float]
CATALOG_CACHE_SECONDS = 60.0
CHECKOUT_ATTEMPTS = 3


def iso(epoch: float) -> str:
    """UTC, millisecond precision: sorts as text in time order."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class CatalogCache:
    """Names and prices per process; the catalog changes rarely, carts often."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._products: dict[str, Product] = {}
        self._loaded_at = float("-inf")

    def get(self, repo: DynamoCartRepository, product_id: str) -> Product:
        product = self._products.get(product_id)
        stale = self._clock() - self._loaded_at > CATALOG_CACHE_SECONDS
        # One Query per process per CATALOG_CACHE_SECONDS: a re-seeded price or
        # a withdrawn product reaches every warm container within a minute.
        if not self._products or stale:
            self.refresh(repo.list_products())
            product = self._products.get(product_id)
        if product is None:
            raise UnknownProduct(product_id)
        return product

    def refresh(self, products: list[Product]) -> None:
        self._products = {product.id: product for product in products}
        self._loaded_at = self._clock()


class CartService:
    def __init__(self, repo: DynamoCartRepository, catalog: CatalogCache,
                 clock: Clock = time.time) -> None:
        self._repo = repo
        self._catalog = catalog
        self._clock = clock

    def _now(self) -> tuple[str, int]:
        moment = self._clock()
        return iso(moment), int(moment)

    def list_products(self) -> list[Product]:
        products = self._repo.list_products()
        self._catalog.refresh(products)
        return sorted(products, key=lambda product: product.name)

    def add_to_cart(self, cart_id: str, body: object,
                    idempotency_key: str | None = None) -> CartLine:
        """The line after the add; with a key, applied once and answered alike."""
        product_id, quantity = validation.add_item(body)
        product = self._catalog.get(self._repo, product_id)
        now, epoch = self._now()
        if idempotency_key is None:
            return self._repo.add_line(cart_id, product, quantity, now, epoch,
                                       expiry_after(epoch))
        once = idempotency.idempotent_request(idempotency_key, "add_to_cart", body, epoch)
        return self._repo.add_line_once(cart_id, product, quantity, now, epoch,
                                        expiry_after(epoch), once)

    def set_quantity(self, cart_id: str | None, product_id: str,
                     body: object) -> CartLine | None:
        """The updated line, or None when quantity 0 removed it (or there was none)."""
        quantity = validation.set_quantity(body)
        validation.product_id(product_id)
        if cart_id is None:
            if quantity == 0:
                return None
            raise NotInCart(product_id)
        if quantity == 0:
            self._repo.remove_line(cart_id, product_id)
            return None
        now, epoch = self._now()
        return self._repo.set_quantity(cart_id, product_id, quantity, now, epoch,
                                       expiry_after(epoch))

    def remove_from_cart(self, cart_id: str | None, product_id: str) -> None:
        """Idempotent; a malformed id is refused even when there is no cart."""
        validation.product_id(product_id)
        if cart_id is not None:
            self._repo.remove_line(cart_id, product_id)

    def display_cart(self, cart_id: str | None) -> tuple[list[CartLine], CartTotals]:
        if cart_id is None:
            return [], totals(())
        _, epoch = self._now()
        lines = sorted(self._repo.list_lines(cart_id, epoch), key=lambda line: line.name)
        return lines, totals(lines)

    def cart_status(self, cart_id: str | None) -> CartSummary:
        if cart_id is None:
            return EMPTY_SUMMARY
        _, epoch = self._now()
        return self._repo.get_summary(cart_id, epoch) or EMPTY_SUMMARY

    def checkout(self, cart_id: str, idempotency_key: str | None = None) -> Order:
        """Checkout takes no body: with a key, the request is "check out this cart"."""
        for attempt in range(CHECKOUT_ATTEMPTS):
            now, epoch = self._now()
            once = None
            if idempotency_key is not None:
                once = idempotency.idempotent_request(idempotency_key, "checkout", None, epoch)
            try:
                return self._repo.checkout(cart_id, secrets.token_hex(16), now, epoch, once)
            except CartChanged:
                if attempt == CHECKOUT_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def get_order(self, cart_id: str | None, order_id: str) -> Order:
        try:
            validation.order_id(order_id)
        except InvalidInput as exc:
            raise OrderNotFound(order_id) from exc
        order = self._repo.get_order(cart_id, order_id) if cart_id else None
        if order is None:
            raise OrderNotFound(order_id)
        return order
