"""Use cases. Each takes plain values, talks to the repository, returns domain values."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib import caching, idempotency, validation
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
from chalicelib.store.catalog import with_counts
from chalicelib.store.errors import StoreContended
from chalicelib.store.retry import Deadline

Clock = Callable[[], float]
CATALOG = caching.cached_read(
    "catalog", 60.0, "Query CATALOG: every product's name, price and image")
# The shop page asks for the counts again over ~4.5 s after an add
# (static/app.js), so the shopper sees the count move: each container reads the
# shared snapshot at most once a second, and the snapshot is summed from the
# counter shards at most every two seconds, by one container for all.
COUNTS = caching.cached_read(
    "counts", 1.0, "Query COUNTS: the shared snapshot of every product's inCarts")
COUNTS_SNAPSHOT = caching.cached_read(
    "counts snapshot", 2.0, "the lease (UpdateItem), COUNTER_SHARDS Queries of the "
    "counter shards, the snapshot (PutItem)", scope="table")
# A container that took the lease and died holds it this long at most.
COUNTS_LEASE_SECONDS = 5.0
CATALOG_CACHE_SECONDS = CATALOG.seconds
COUNTS_CACHE_SECONDS = COUNTS.seconds


def iso(epoch: float) -> str:
    """UTC, millisecond precision: sorts as text in time order."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_of(stamp: str) -> int:
    """The whole second of an `iso()` stamp; ValueError when it is not one."""
    return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp())


class CatalogCache:
    """The catalog per process: names and prices change rarely, counts often.

    Names, prices and images are at most CATALOG_CACHE_SECONDS old; `inCarts`
    at most COUNTS_CACHE_SECONDS older than the shared snapshot, itself at
    most COUNTS_SNAPSHOT's lifetime (plus one computation) older than the
    counter shards, which follow the stream (its iterator age plus one batch).
    One warm process makes one catalog Query a minute and at most one small
    snapshot Query a second, however many pages it serves; one process in
    the whole fleet sums the shards every COUNTS_SNAPSHOT seconds.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._products: dict[str, Product] = {}
        self._loaded_at = float("-inf")
        self._counts: dict[str, int] = {}
        self._counted_at = float("-inf")
        self._force = False

    def _catalog(self, repo: DynamoCartRepository) -> dict[str, Product]:
        # A re-seeded price or a withdrawn product reaches every warm container
        # within CATALOG_CACHE_SECONDS.
        if not self._products or CATALOG.stale(self._loaded_at, self._clock()):
            self._products = {product.id: product for product in repo.list_catalog()}
            self._loaded_at = self._clock()
        return self._products

    def get(self, repo: DynamoCartRepository, product_id: str) -> Product:
        """One product's name and price (no count); UnknownProduct if not in the catalog."""
        product = self._catalog(repo).get(product_id)
        if product is None:
            raise UnknownProduct(product_id)
        return product

    def products(self, repo: DynamoCartRepository) -> list[Product]:
        """Every product with its `inCarts`, by name."""
        products = list(self._catalog(repo).values())
        now = self._clock()
        if self._force or COUNTS.stale(self._counted_at, now):
            self._counts = repo.shared_counts(now, COUNTS_SNAPSHOT.seconds,
                                              COUNTS_LEASE_SECONDS, force=self._force)
            self._counted_at, self._force = now, False
        return sorted(with_counts(products, self._counts), key=lambda product: product.name)

    def expire(self) -> None:
        """Forget all: the next read queries the table (as if every window had passed,
        the shared snapshot's too: it is summed afresh if its lease can be taken)."""
        self._loaded_at = self._counted_at = float("-inf")
        self._force = True


class CartService:
    def __init__(self, repo: DynamoCartRepository, catalog: CatalogCache,
                 clock: Clock = time.time) -> None:
        self._repo = repo
        self._catalog = catalog
        self._clock = clock

    def _now(self) -> tuple[str, int]:
        moment = self._clock()
        return iso(moment), int(moment)

    @property
    def catalog(self) -> CatalogCache:
        return self._catalog

    def list_products(self) -> list[Product]:
        """The shop page and GET /api/products: from the per-process cache."""
        return self._catalog.products(self._repo)

    def add_to_cart(self, cart_id: str, body: object,
                    idempotency_key: str | None = None) -> CartLine:
        """The line after the add; with a key, applied once and answered alike."""
        product_id, quantity = validation.add_item(body)
        product = self._catalog.get(self._repo, product_id)
        now, epoch = self._now()
        # Keyed or not, the write carries a record of this request: a re-send
        # (botocore's, after a timeout) cannot apply twice.
        once = idempotency.request_for(idempotency_key, "add_to_cart", body, epoch)
        return self._repo.add_line(cart_id, product, quantity, now, epoch,
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
        now, epoch = self._now()
        if quantity == 0:
            self._repo.remove_line(cart_id, product_id, now, epoch)
            return None
        return self._repo.set_quantity(cart_id, product_id, quantity, now, epoch,
                                       expiry_after(epoch))

    def remove_from_cart(self, cart_id: str | None, product_id: str) -> None:
        """Idempotent; a malformed id is refused even when there is no cart."""
        validation.product_id(product_id)
        if cart_id is not None:
            now, epoch = self._now()
            self._repo.remove_line(cart_id, product_id, now, epoch)

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
        """Checkout takes no body: with a key, the request is "check out this cart".

        A cart that changes between the read and the transaction is read again
        until the request's deadline: the racing add or set wins, and the
        checkout answers 503 (nothing applied) only if the cart never held still.
        """
        now, epoch = self._now()
        once = idempotency.request_for(idempotency_key, "checkout", None, epoch)
        order_id = secrets.token_hex(16)
        deadline = Deadline()
        while True:
            try:
                return self._repo.checkout(cart_id, order_id, now, epoch, once)
            except (CartChanged, StoreContended):
                deadline.pause("the cart kept changing")
            now, epoch = self._now()

    def get_order(self, cart_id: str | None, order_id: str) -> Order:
        try:
            validation.order_id(order_id)
        except InvalidInput as exc:
            raise OrderNotFound(order_id) from exc
        order = self._repo.get_order(cart_id, order_id) if cart_id else None
        if order is None:
            raise OrderNotFound(order_id)
        return order
