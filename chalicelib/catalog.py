"""The catalog's promises to a shopper: today's price, withdrawn products, stock on hand.

Pure rules, no IO. The catalog itself is operator data (catalog/products.csv,
loaded by `make catalog`); the store keeps it in CATALOG and STOCK# items
(chalicelib/store/catalog.py, chalicelib/store/stock.py).

Stock is held in allotment shards: a product's units are split over
`stock_shards` items in different partitions, so a flash sale's checkouts
spread their writes instead of queueing on one item (bench/flash_sale.py has
the model). A checkout takes a line's units from one shard when it can, from
several when no single shard has enough (`allocate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.domain import CartLine, DomainError, Product

# "Only N left" from this many units down; 0 is "sold out".
LOW_STOCK_THRESHOLD = 10
# A product's shards are read in one BatchGetItem (at most 100 keys) and a
# line split over them must fit checkout's transaction (domain.MAX_LINES).
MAX_STOCK_SHARDS = 100


@dataclass(frozen=True)
class Shortage:
    product_id: str
    name: str
    wanted: int
    left: int


@dataclass(frozen=True)
class PriceChange:
    product_id: str
    name: str
    old_cents: int
    new_cents: int


class ProductWithdrawn(DomainError):
    """The product was withdrawn from the catalog: it cannot be added or checked out."""

    def __init__(self, products: Sequence[tuple[str, str]]) -> None:
        self.products = tuple(products)  # (id, name)
        super().__init__(", ".join(name for _, name in self.products))


class PriceChanged(DomainError):
    """A line's price is not the catalog's any more; the lines now carry the new prices."""

    def __init__(self, changes: Sequence[PriceChange]) -> None:
        self.changes = tuple(changes)
        super().__init__(", ".join(
            f"{c.name} {money(c.old_cents)} -> {money(c.new_cents)}" for c in self.changes))


class OutOfStock(DomainError):
    """Checkout wants more units than are on hand (nothing was written)."""

    def __init__(self, shortages: Sequence[Shortage]) -> None:
        self.shortages = tuple(shortages)
        super().__init__(", ".join(
            f"{s.name}: {left_text(s.left)}" for s in self.shortages))


class NotEnoughStock(DomainError):
    """An add or set asks for more than is on hand (as the catalog cache last saw it)."""

    def __init__(self, product: Product, wanted: int) -> None:
        self.product = product
        self.wanted = wanted
        super().__init__(f"{product.name}: {left_text(product.stock)}")


def money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def left_text(units: int) -> str:
    return "sold out" if units <= 0 else f"only {units} left"


def availability(stock: int) -> str | None:
    """What a shop shows under a product: "sold out", "only N left", or nothing."""
    if stock <= 0:
        return "sold out"
    if stock <= LOW_STOCK_THRESHOLD:
        return f"only {stock} left"
    return None


def check_orderable(product: Product, quantity: int) -> None:
    """An add or set of `quantity` units (the line's new total) is allowed."""
    if not product.active:
        raise ProductWithdrawn([(product.id, product.name)])
    if quantity > product.stock:
        raise NotEnoughStock(product, quantity)


def split_evenly(units: int, shards: int) -> list[int]:
    """`units` over `shards` allotments, the first ones one larger when it does not divide."""
    base, extra = divmod(units, shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]


def allocate(levels: Sequence[int], quantity: int, start: int) -> dict[int, int] | None:
    """Units to take from each shard for `quantity`, or None when all of them hold too little.

    The shard at `start` first (a checkout's own pick, so concurrent checkouts
    spread), then the next ones around; one shard whenever one holds enough,
    so a split (more actions in the transaction) happens only near the end.
    """
    if sum(max(0, level) for level in levels) < quantity:
        return None
    order = [(start + i) % len(levels) for i in range(len(levels))]
    for shard in order:
        if levels[shard] >= quantity:
            return {shard: quantity}
    taken: dict[int, int] = {}
    needed = quantity
    for shard in sorted(order, key=lambda s: -levels[s]):
        take = min(needed, levels[shard])
        if take > 0:
            taken[shard] = take
            needed -= take
        if needed == 0:
            break
    return taken


@dataclass(frozen=True)
class LineView:
    """A cart line as the shopper should see it now: today's price, withdrawn, stock."""

    line: CartLine
    price_cents: int  # the catalog's price now (the line's own when unknown)
    withdrawn: bool
    stock: int | None  # units on hand, None when the product is gone from the catalog

    @property
    def price_changed(self) -> bool:
        return self.price_cents != self.line.unit_price_cents

    @property
    def line_total_cents(self) -> int:
        return self.price_cents * self.line.quantity

    @property
    def availability(self) -> str | None:
        return None if self.withdrawn or self.stock is None else availability(self.stock)


def view_line(line: CartLine, product: Product | None) -> LineView:
    if product is None:
        return LineView(line, line.unit_price_cents, True, None)
    return LineView(line, product.price_cents, not product.active, product.stock)


def view_totals(views: Sequence[LineView]) -> tuple[int, int]:
    """Item count and subtotal at today's prices; withdrawn lines are not counted."""
    orderable = [v for v in views if not v.withdrawn]
    return (sum(v.line.quantity for v in orderable),
            sum(v.line_total_cents for v in orderable))


@dataclass(frozen=True)
class Take:
    """One stock action of a checkout: `quantity` units from one shard at the line's price."""

    product_id: str
    shard: int
    quantity: int
    price_cents: int


def plan_takes(lines: Sequence[CartLine], shards: dict[str, int],
               levels: dict[str, list[int]], pick: int, spare: int = 0) -> list[Take]:
    """The stock actions for a checkout of `lines`.

    Without known `levels` (the first try) each line takes from one shard,
    `pick` (a random number) choosing which; with them (after a shard came up
    short) the units are allocated where they are. A line whose product has
    too few units left keeps one take, whose condition fails and says so.
    A split costs actions in the transaction: at most `spare` more than one
    per line (past that, the line waits for a later try, its take failing).
    """
    takes: list[Take] = []
    for line in lines:
        count = max(1, shards.get(line.product_id, 1))
        start = pick % count
        known = levels.get(line.product_id)
        allocation = allocate(known, line.quantity, start) if known else None
        if allocation and len(allocation) - 1 > spare:
            allocation = None
        spare -= len(allocation) - 1 if allocation else 0
        for shard, units in sorted((allocation or {start: line.quantity}).items()):
            takes.append(Take(line.product_id, shard, units, line.unit_price_cents))
    return takes


def verdict(lines: Sequence[CartLine], products: dict[str, Product]) -> DomainError | None:
    """Why a checkout of `lines` cannot go through as the catalog is now, or None.

    Withdrawn products first (nothing can fix them but removing the line),
    then changed prices, then stock.
    """
    gone = [(line.product_id, line.name) for line in lines
            if line.product_id not in products or not products[line.product_id].active]
    if gone:
        return ProductWithdrawn(gone)
    changes = [PriceChange(line.product_id, line.name, line.unit_price_cents,
                           products[line.product_id].price_cents)
               for line in lines if products[line.product_id].price_cents != line.unit_price_cents]
    if changes:
        return PriceChanged(changes)
    short = [Shortage(line.product_id, line.name, line.quantity, products[line.product_id].stock)
             for line in lines if products[line.product_id].stock < line.quantity]
    return OutOfStock(short) if short else None
