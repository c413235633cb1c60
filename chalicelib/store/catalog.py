"""The catalog: CATALOG / PRODUCT#<productId>, one item per product.

A product item holds what the shop shows (name, description, price, image),
`active` (false: withdrawn) and `stockShards`, how many STOCK# allotments
hold its units (store/stock.py). Other items may share the CATALOG
partition: only PRODUCT# items are products.

Requests per operation (what bench/ measures):
    list_products  list_catalog + the counts (store/popularity.py)
    list_catalog   1 Query of CATALOG (paged) + 1 BatchGetItem per 100 stock shards
    products       1 BatchGetItem per 100 keys: the product items and their stock
                   shards together
    seed_products  1 Query of CATALOG + 1 PutItem per missing product (conditional:
                   never over a live one) + 1 BatchWriteItem per 25 of their shards
    upsert         1 TransactWriteItems per product written (product + its shards)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from chalicelib import table
from chalicelib.domain import Product
from chalicelib.store import errors
from chalicelib.store.codec import (
    Item,
    batch_write_all,
    integer,
    key,
    n,
    product_from_item,
    query_all,
    s,
    string,
)
from chalicelib.store.popularity import DynamoPopularity
from chalicelib.store.stock import DynamoStock, batch_get, shard_items, shard_key


class DynamoCatalog:
    def __init__(self, client: Any, table_name: str,
                 popularity: DynamoPopularity | None = None,
                 stock: DynamoStock | None = None) -> None:
        self._client = client
        self._table = table_name
        self._popularity = popularity or DynamoPopularity(client, table_name)
        self.stock = stock or DynamoStock(client, table_name)

    def _product_items(self, consistent: bool = False) -> list[Item]:
        with errors.translated():
            return query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :product)",
                ExpressionAttributeValues={":pk": s(table.CATALOG_PK),
                                           ":product": s(table.PRODUCT_PREFIX)},
                ConsistentRead=consistent,
            )

    def list_catalog(self, consistent: bool = False) -> list[Product]:
        """Every product, withdrawn ones too, with its stock (no counts: in_carts 0)."""
        return self._with_stock([product_from_item(i) for i in self._product_items(consistent)],
                                consistent)

    def list_products(self) -> list[Product]:
        """The products on sale with their `inCarts` counts."""
        return with_counts([p for p in self.list_catalog() if p.active],
                           self._popularity.counts())

    def products(self, product_ids: Iterable[str], *, consistent: bool,
                 shards: dict[str, int] | None = None) -> dict[str, Product]:
        """These products as the table has them now, with stock; absent ids are left out.

        With `shards` (each product's shard count as last seen) the product
        items and their stock shards come in one BatchGetItem; shards a
        product gained since are read after.
        """
        ids = sorted(set(product_ids))
        hint = {i: (shards or {}).get(i, 0) for i in ids}
        keys = [key(table.CATALOG_PK, table.product_sk(i)) for i in ids]
        keys += [shard_key(i, k) for i in ids for k in range(hint[i])]
        items = batch_get(self._client, self._table, keys, consistent)
        found = [product_from_item(i) for i in items if i["pk"]["S"] == table.CATALOG_PK]
        levels: dict[str, list[Item | None]] = {p.id: [None] * p.stock_shards for p in found}
        for item in items:
            product_id, shard = string(item, "productId"), integer(item, "shard")
            if item["pk"]["S"] != table.CATALOG_PK and shard < len(levels.get(product_id, [])):
                levels[product_id][shard] = item
        missing = {p.id: p.stock_shards for p in found if p.stock_shards > hint[p.id]}
        levels.update(self.stock.levels(missing, consistent=consistent) if missing else {})
        return {p.id: dataclasses.replace(p, stock=sum(shard_items(levels[p.id])))
                for p in found}

    def _with_stock(self, products: list[Product], consistent: bool) -> list[Product]:
        totals = self.stock.totals({p.id: p.stock_shards for p in products},
                                   consistent=consistent)
        return [dataclasses.replace(p, stock=totals.get(p.id, 0)) for p in products]

    def seed_products(self, products: Iterable[Product], *, reseed: bool = False) -> list[str]:
        """Write the products the catalog lacks (with their stock); the ids written.

        A live product is never overwritten (a deploy must not undo an
        operator's price change or a sale's stock) unless `reseed` is set: then
        every product is rewritten, stock included. Either way each product's
        count is kept (it lives in the counter shards).
        """
        wanted = list(products)
        if reseed:
            for product in wanted:
                self.upsert(product)
            return [product.id for product in wanted]
        existing = {string(item, "productId") for item in self._product_items(consistent=True)}
        written: list[str] = []
        for product in wanted:
            if product.id in existing:
                continue
            try:
                with errors.translated():
                    self._client.put_item(TableName=self._table, Item=self._item(product),
                                          ConditionExpression="attribute_not_exists(pk)")
            except errors.ConditionFailed:
                continue  # added meanwhile by someone else: left as it is
            written.append(product.id)
        # The shards of the products this seed created, and only those: a
        # product is sold out for the moment between its item and its stock.
        shards = [a["Put"]["Item"] for p in wanted if p.id in written
                  for a in self.stock.put_actions(p)]
        with errors.translated():
            batch_write_all(self._client, self._table, shards)
        return written

    def upsert(self, product: Product, old_shards: int = 0) -> None:
        """Write the product and its stock shards together (the catalog tool's write)."""
        self._transact([{"Put": {"TableName": self._table, "Item": self._item(product)}},
                        *self.stock.put_actions(product, old_shards)])

    def _transact(self, actions: list[Item]) -> None:
        with errors.translated():
            self._client.transact_write_items(TransactItems=actions)

    def _item(self, product: Product) -> Item:
        return {
            **key(table.CATALOG_PK, table.product_sk(product.id)),
            "productId": s(product.id), "name": s(product.name),
            "description": s(product.description), "priceCents": n(product.price_cents),
            "image": s(product.image), "active": {"BOOL": product.active},
            "stockShards": n(product.stock_shards), "position": n(product.position),
        }


def with_counts(products: list[Product], counts: dict[str, int]) -> list[Product]:
    """Each product with its count."""
    return [dataclasses.replace(p, in_carts=max(0, counts.get(p.id, 0))) for p in products]
