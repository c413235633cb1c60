"""The catalog: CATALOG / PRODUCT#<productId>, one item per product.

Requests per operation (what bench/ measures):
    list_products  1 Query of CATALOG (paged) + the counts (store/popularity.py)
    list_catalog   1 Query of CATALOG (paged), no counts
    seed_products  1 PutItem per product (conditional: only missing products),
                   or 1 UpdateItem per product with reseed=True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from chalicelib import table
from chalicelib.domain import Product
from chalicelib.store import errors
from chalicelib.store.codec import key, n, product_from_item, query_all, s
from chalicelib.store.popularity import DynamoPopularity


class DynamoCatalog:
    def __init__(self, client: Any, table_name: str,
                 popularity: DynamoPopularity | None = None) -> None:
        self._client = client
        self._table = table_name
        self._popularity = popularity or DynamoPopularity(client, table_name)

    def list_catalog(self) -> list[Product]:
        """The products with no counts (in_carts 0): names, prices, images."""
        with errors.translated():
            items = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(table.CATALOG_PK)},
            )
        return [product_from_item(item) for item in items]

    def list_products(self) -> list[Product]:
        """The products with their `inCarts` counts."""
        return with_counts(self.list_catalog(), self._popularity.counts())

    def seed_products(self, products: Iterable[Product], *, reseed: bool = False) -> list[str]:
        """Write the products the catalog lacks; the ids written.

        A live product is never overwritten (a deploy must not undo an
        operator's price change) unless `reseed` is set: then every product's
        name, description, price and image are rewritten. Either way each
        product's count is kept (it lives in the counter shards).
        """
        written: list[str] = []
        for product in products:
            try:
                with errors.translated():
                    if reseed:
                        self._rewrite(product)
                    else:
                        self._client.put_item(
                            TableName=self._table,
                            Item=self._item(product),
                            ConditionExpression="attribute_not_exists(pk)",
                        )
            except errors.ConditionFailed:
                continue  # already in the catalog: left as it is
            written.append(product.id)
        return written

    def _item(self, product: Product) -> dict[str, Any]:
        return {
            **key(table.CATALOG_PK, table.product_sk(product.id)),
            "productId": s(product.id), "name": s(product.name),
            "description": s(product.description), "priceCents": n(product.price_cents),
            "image": s(product.image),
        }

    def _rewrite(self, product: Product) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=key(table.CATALOG_PK, table.product_sk(product.id)),
            UpdateExpression=(
                "SET productId = :id, #n = :name, description = :d, "
                "priceCents = :p, image = :img"
            ),
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={
                ":id": s(product.id), ":name": s(product.name),
                ":d": s(product.description), ":p": n(product.price_cents),
                ":img": s(product.image),
            },
        )


def with_counts(products: list[Product], counts: dict[str, int]) -> list[Product]:
    """Each product with its count; products withdrawn from the catalog are left out."""
    return [dataclasses.replace(p, in_carts=max(0, counts.get(p.id, 0))) for p in products]
