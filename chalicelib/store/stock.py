"""Stock on hand: STOCK#<productId>#<k> / STOCK, one item per allotment shard.

Each shard holds `units` and copies of the product's `priceCents` and
`active`, written with the product item in one transaction by the catalog
tool. Checkout's transaction takes a line's units from a shard on the
condition that the shard has them at the line's price and the product is
active: stock, today's price and withdrawal are checked in the write itself,
on items spread over partitions, never on the one hot CATALOG partition.

Requests per operation (what bench/ measures):
    levels          1 BatchGetItem per 100 shards (consistent or not)
    take_action     1 Update action inside checkout's TransactWriteItems
    put_actions     1 Put action per shard inside the catalog tool's transaction
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chalicelib import table
from chalicelib.catalog import Take, split_evenly
from chalicelib.domain import CartLine, DomainError, Product, StoreUnavailable
from chalicelib.store import errors
from chalicelib.store.codec import Item, UnprocessedKeys, batch_get_all, integer, key, n, s

BATCH_GET_KEYS = 100  # BatchGetItem's limit


def batch_get(client: Any, table_name: str, keys: list[Item], consistent: bool) -> list[Item]:
    """batch_get_all with the store's error classification."""
    try:
        with errors.translated():
            return batch_get_all(client, table_name, keys, consistent)
    except UnprocessedKeys as exc:
        raise StoreUnavailable(str(exc)) from exc


def shard_key(product_id: str, shard: int) -> Item:
    return key(table.stock_pk(product_id, shard), table.STOCK_SK)


def is_active(item: Item | None) -> bool:
    cell = (item or {}).get("active")
    return bool(cell and cell.get("BOOL"))


class DynamoStock:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def levels(self, shards: dict[str, int], *, consistent: bool) -> dict[str, list[Item | None]]:
        """Each product's shard items (None for a missing one), for {productId: shard count}."""
        keys = [(product_id, shard) for product_id, count in shards.items()
                for shard in range(count)]
        found: dict[tuple[str, int], Item] = {}
        for start in range(0, len(keys), BATCH_GET_KEYS):
            chunk = keys[start:start + BATCH_GET_KEYS]
            for item in batch_get(self._client, self._table,
                                  [shard_key(p, k) for p, k in chunk], consistent):
                found[(item["productId"]["S"], integer(item, "shard"))] = item
        return {product_id: [found.get((product_id, k)) for k in range(count)]
                for product_id, count in shards.items()}

    def totals(self, shards: dict[str, int], *, consistent: bool = False) -> dict[str, int]:
        """Units on hand per product, summed over its shards."""
        return {product_id: sum(shard_items(items))
                for product_id, items in self.levels(shards, consistent=consistent).items()}

    def units(self, shards: dict[str, int]) -> dict[str, list[int]]:
        """Units per shard of each product, read consistently (what checkout retries with)."""
        return {product_id: shard_items(items)
                for product_id, items in self.levels(shards, consistent=True).items()}

    def take_action(self, product_id: str, shard: int, quantity: int,
                    price_cents: int) -> Item:
        """Checkout's action: take `quantity` units if they are there at this price."""
        return {"Update": {
            "TableName": self._table,
            "Key": shard_key(product_id, shard),
            "UpdateExpression": "SET units = units - :q",
            "ConditionExpression": "units >= :q AND priceCents = :p AND active = :yes",
            "ExpressionAttributeValues": {
                ":q": n(quantity), ":p": n(price_cents), ":yes": {"BOOL": True},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def put_actions(self, product: Product, old_shards: int = 0) -> list[Item]:
        """The catalog tool's actions: every shard set to its part of the stock.

        Shards beyond the product's count (it had more before) are emptied, so a
        checkout that still picks one finds nothing there and reads the levels.
        """
        units = split_evenly(product.stock, product.stock_shards)
        units += [0] * max(0, old_shards - product.stock_shards)
        return [{"Put": {"TableName": self._table, "Item": {
            **shard_key(product.id, shard),
            "productId": s(product.id), "shard": n(shard), "units": n(count),
            "priceCents": n(product.price_cents),
            "active": {"BOOL": product.active and shard < product.stock_shards},
        }}} for shard, count in enumerate(units)]


def shard_items(items: Iterable[Item | None]) -> list[int]:
    """Units per shard; a missing or withdrawn shard holds none a checkout can take."""
    return [integer(item, "units") if is_active(item) else 0 for item in items]


class StockRefused(DomainError):
    """A stock action's condition failed: short shard, changed price or withdrawn product.

    Nothing was written; the service reads the catalog to say which (or to
    retry with the units where they are).
    """

    def __init__(self, lines: Sequence[CartLine]) -> None:
        self.lines = tuple(lines)
        super().__init__(", ".join(line.product_id for line in self.lines))


class StockHook:
    """Checkout's stock takes (store/orders.CheckoutHook), planned for one attempt."""

    def __init__(self, stock: DynamoStock,
                 plan: Callable[[Sequence[CartLine]], Sequence[Take]]) -> None:
        self._stock = stock
        self._plan = plan
        self._lines: tuple[CartLine, ...] = ()

    def actions(self, cart_id: str, lines: Sequence[CartLine], now_epoch: int) -> list[Item]:
        self._lines = tuple(lines)
        return [self._stock.take_action(t.product_id, t.shard, t.quantity, t.price_cents)
                for t in self._plan(lines)]

    def refused(self, index: int, reason: str, item: Item | None) -> DomainError | None:
        # The catalog is read for every line: all that is withdrawn, repriced or
        # short is named at once, not only the take that failed first.
        return StockRefused(self._lines)
