"""Use cases. Each takes plain values, talks to the repository, returns domain values."""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from chalicelib import caching, idempotency, validation
from chalicelib.catalog import (
    LineView,
    NotEnoughStock,
    OutOfStock,
    PriceChanged,
    ProductWithdrawn,
    Shortage,
    Take,
    check_orderable,
    plan_takes,
    verdict,
    view_line,
)
from chalicelib.domain import (
    CHECKOUT_FIXED_ACTIONS,
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
from chalicelib.store.codec import TRANSACTION_ACTIONS
from chalicelib.store.errors import StoreContended
from chalicelib.store.orders import order_id_for
from chalicelib.store.retry import Deadline
from chalicelib.store.stock import StockHook, StockRefused

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
# A product checkout found sold out is refused in this process without a
# write for this long (a flash sale's late shoppers cost no WCU); a restock
# is seen after it.
SOLD_OUT = caching.cached_read(
    "sold out", 1.0, "nothing: a checkout of a product this process saw sold out is "
    "refused without its transaction")
SOLD_OUT_MEMO_SECONDS = SOLD_OUT.seconds


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

    def __init__(self, clock: Clock = time.time,
                 seconds: float = CATALOG_CACHE_SECONDS) -> None:
        self._clock = clock
        self._seconds = seconds
        self._products: dict[str, Product] = {}
        self._loaded_at = float("-inf")
        self._counts: dict[str, int] = {}
        self._counted_at = float("-inf")
        self._force = False

    def _catalog(self, repo: DynamoCartRepository) -> dict[str, Product]:
        # A changed price, stock or a withdrawn product reaches every warm
        # container's shop page and adds within the window (60 s unless the
        # stage sets CATALOG_CACHE_SECONDS); the cart and checkout read the table.
        if not self._products or self._clock() - self._loaded_at > self._seconds:
            self._products = {product.id: product for product in repo.list_catalog()}
            self._loaded_at = self._clock()
        return self._products

    def get(self, repo: DynamoCartRepository, product_id: str) -> Product:
        """One product (withdrawn ones too, no count); UnknownProduct if not in the catalog."""
        product = self._catalog(repo).get(product_id)
        if product is None:
            raise UnknownProduct(product_id)
        return product

    def all(self, repo: DynamoCartRepository) -> list[Product]:
        return list(self._catalog(repo).values())

    def has(self, repo: DynamoCartRepository, product_id: str) -> bool:
        return product_id in self._catalog(repo)

    def products(self, repo: DynamoCartRepository) -> list[Product]:
        """Every product on sale with its `inCarts`, in the catalog's order."""
        products = [p for p in self._catalog(repo).values() if p.active]
        now = self._clock()
        if self._force or COUNTS.stale(self._counted_at, now):
            self._counts = repo.shared_counts(now, COUNTS_SNAPSHOT.seconds,
                                              COUNTS_LEASE_SECONDS, force=self._force)
            self._counted_at, self._force = now, False
        # The catalog file's order (a shop puts what it features first), then by name.
        return sorted(with_counts(products, self._counts),
                      key=lambda product: (product.position, product.name))

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
        self._sold_out: dict[str, float] = {}
        self.checkout_retries = 0  # internal retries of checkout's transaction, for tests

    def _now(self) -> tuple[str, int]:
        moment = self._clock()
        return iso(moment), int(moment)

    @property
    def catalog(self) -> CatalogCache:
        return self._catalog

    def list_products(self) -> list[Product]:
        """The shop page and GET /api/products: from the per-process cache."""
        return self._catalog.products(self._repo)

    def catalog_products(self) -> list[Product]:
        """Every product in the (cached) catalog, withdrawn ones too: the cart's images."""
        return self._catalog.all(self._repo)

    def add_to_cart(self, cart_id: str, body: object,
                    idempotency_key: str | None = None, new_cart: bool = False) -> CartLine:
        """The line after the add; with a key, applied once and answered alike.
        `new_cart`: the id was made for this request, so the cart has nothing yet."""
        product_id, quantity = validation.add_item(body)
        product = self._catalog.get(self._repo, product_id)
        now, epoch = self._now()
        # Keyed or not, the write applies once: a re-send (botocore's, after a
        # timeout) cannot apply twice (store/carts.py).
        once = idempotency.request_for(idempotency_key, "add_to_cart", body, epoch)
        try:
            check_orderable(product, quantity)
        except (ProductWithdrawn, NotEnoughStock):
            # A keyed retry refused while an earlier try may still land: fence the key.
            line = self._repo.refused(cart_id, product, quantity, once, now, epoch)
            if line is not None:
                return line
            raise
        return self._repo.add_line(cart_id, product, quantity, now, epoch,
                                   expiry_after(epoch), once, new_cart)

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
        try:
            product = self._catalog.get(self._repo, product_id)
        except UnknownProduct:
            # never in the catalog, so in no cart: the route's 404, as before stock
            raise NotInCart(product_id) from None
        check_orderable(product, quantity)
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

    def cart_view(self, cart_id: str | None) -> tuple[list[LineView], int, int]:
        """The lines at today's prices, withdrawn ones marked; item count and subtotal.

        Price, `active` and stock are read from the table, not the per-process
        cache: the cart is where a shopper decides to pay. They come from the
        products' stock shards (one BatchGetItem), which carry copies of price
        and `active`; names and images from the cache. A product the cache does
        not know, or whose shards are gone, is read whole.
        """
        lines, _ = self.display_cart(cart_id)
        known = [self._catalog.get(self._repo, line.product_id) for line in lines
                 if self._catalog.has(self._repo, line.product_id)]
        products = self._repo.priced(known) if known else {}
        rest = [line for line in lines if line.product_id not in products]
        if rest:
            products.update(self._repo.products((line.product_id for line in rest),
                                                consistent=True, shards=self._shards(rest)))
        views = [view_line(line, products.get(line.product_id)) for line in lines]
        orderable = [v for v in views if not v.withdrawn]
        return (views, sum(v.line.quantity for v in orderable),
                sum(v.line_total_cents for v in orderable))

    def checkout(self, cart_id: str, idempotency_key: str | None = None) -> Order:
        """Checkout takes no body: with a key, the request is "check out this cart".

        Stock, today's prices and withdrawn products are checked by the
        transaction itself (store/stock.py); when it refuses, the catalog is
        read to say why (a 409), or, when a stock shard ran dry while others
        hold units, the checkout is tried again with the units where they are.
        A cart that changes between the read and the transaction is read again
        until the request's deadline: the racing add or set wins, and the
        checkout answers 503 (nothing applied) only if the cart never held still.
        The order id is chosen once, before the first attempt: every attempt
        targets the same order item, so an attempt that lands late and a later
        one cannot both place an order (store/orders.py).
        """
        now, epoch = self._now()
        once = idempotency.request_for(idempotency_key, "checkout", None, epoch)
        order_id = order_id_for(cart_id, once)
        deadline = Deadline()
        levels: dict[str, list[int]] = {}
        while True:
            plan = functools.partial(self._takes, levels=levels,
                                     pick=secrets.randbelow(1 << 30))
            try:
                return self._repo.checkout(cart_id, order_id, now, epoch, once,
                                           hooks=[StockHook(self._repo.stock, plan)])
            except (CartChanged, StoreContended):
                deadline.pause("the cart kept changing")
            except StockRefused as refused:
                levels = self._explain(cart_id, refused)
                deadline.pause("the stock kept moving")
            self.checkout_retries += 1
            now, epoch = self._now()

    def _takes(self, lines: Sequence[CartLine], levels: dict[str, list[int]],
               pick: int) -> list[Take]:
        moment = self._clock()
        memo = [line for line in lines if self._sold_out.get(line.product_id, 0) > moment]
        if memo:
            raise OutOfStock([Shortage(line.product_id, line.name, line.quantity, 0)
                              for line in memo])
        spare = TRANSACTION_ACTIONS - CHECKOUT_FIXED_ACTIONS - 2 * len(lines)
        return plan_takes(lines, self._shards(lines), levels, pick, spare)

    def _shards(self, lines: Sequence[CartLine]) -> dict[str, int]:
        """Each line's product's stock shard count, as the catalog cache has it."""
        return {line.product_id: self._catalog.get(self._repo, line.product_id).stock_shards
                if self._catalog.has(self._repo, line.product_id) else 1 for line in lines}

    def _explain(self, cart_id: str, refused: StockRefused) -> dict[str, list[int]]:
        """Raise what the catalog says now; else the shard levels to retry with."""
        lines = refused.lines
        products = self._repo.products((line.product_id for line in lines), consistent=True,
                                       shards=self._shards(lines))
        moment = self._clock()
        for product in products.values():
            if product.stock <= 0:
                self._sold_out[product.id] = moment + SOLD_OUT_MEMO_SECONDS
        problem = verdict(lines, products)
        if isinstance(problem, PriceChanged):
            for change in problem.changes:
                self._repo.reprice_line(cart_id, change.product_id, change.old_cents,
                                        change.new_cents)
        if problem is not None:
            raise problem
        return self._repo.stock_levels({p.id: p.stock_shards for p in products.values()})

    def get_order(self, cart_id: str | None, order_id: str) -> Order:
        try:
            validation.order_id(order_id)
        except InvalidInput as exc:
            raise OrderNotFound(order_id) from exc
        order = self._repo.get_order(cart_id, order_id) if cart_id else None
        if order is None:
            raise OrderNotFound(order_id)
        return order
