"""The single table, one adapter per aggregate (chalicelib/store/), behind one object.

Services, the stream follow-ups, the deploy's seeding and the local stack
take a `DynamoCartRepository`; each of its parts is a small adapter over the
same table sharing the key layout (table.py) and the AWS error classifier
(store/errors.py):

    catalog      store/catalog.py      the products
    stock        store/stock.py        stock on hand, in allotment shards
    carts        store/carts.py        a cart's lines and its summary
    orders       store/orders.py       orders, placed by checkout
    popularity   store/popularity.py   how many carts hold each product
    keys         store/keys.py         idempotency key records
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import errors
from chalicelib.store.carts import DynamoCarts
from chalicelib.store.catalog import DynamoCatalog
from chalicelib.store.codec import line_from_item
from chalicelib.store.keys import DynamoIdempotencyKeys
from chalicelib.store.orders import DynamoOrders
from chalicelib.store.popularity import DynamoPopularity

__all__ = ["DynamoCartRepository", "line_from_item", "store_errors"]

# Kept for callers outside the adapters (runtime's SSM read): the same classifier.
store_errors = errors.translated


class DynamoCartRepository:
    """Carts, orders, the catalog and its counters in the single table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.keys = DynamoIdempotencyKeys(client, table_name)
        self.popularity = DynamoPopularity(client, table_name)
        self.catalog = DynamoCatalog(client, table_name, self.popularity)
        self.carts = DynamoCarts(client, table_name, self.keys)
        self.orders = DynamoOrders(client, table_name, self.carts, self.keys)
        # The operations, by the names services and follow-ups have always used.
        self.list_products = self.catalog.list_products
        self.list_catalog = self.catalog.list_catalog
        self.counts = self.popularity.counts
        self.shared_counts = self.popularity.shared_counts
        self.seed_products = self.catalog.seed_products
        self.products = self.catalog.products
        self.priced = self.catalog.priced
        self.stock = self.catalog.stock
        self.stock_levels = self.catalog.stock.units
        self.reprice_line = self.carts.reprice_line
        self.add_line = self.carts.add_line
        self.add_line_once = self.carts.add_line_once
        self.refused = self.carts.refused
        self.set_quantity = self.carts.set_quantity
        self.remove_line = self.carts.remove_line
        self.list_lines = self.carts.list_lines
        self.renew_line = self.carts.renew_line
        self.get_summary = self.carts.get_summary
        self.put_summary = self.carts.put_summary
        self.checkout = self.orders.checkout
        self.get_order = self.orders.get_order
        self.confirm_order = self.orders.confirm_order
