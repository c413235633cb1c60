"""The catalog: CATALOG / PRODUCT#<productId>, one item per product.

Requests per operation (what bench/ measures):
    list_products  1 Query of CATALOG (paged)
    seed_products  1 PutItem per product (conditional: only missing products),
                   or 1 UpdateItem per product with reseed=True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib import table
from chalicelib.domain import Product
from chalicelib.store import errors
from chalicelib.store.codec import integer, key, n, product_from_item, query_all, s


class DynamoCatalog:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def list_products(self) -> list[Product]:
        with errors.translated():
            items = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(table.CATALOG_PK)},
            )
        return [product_from_item(item, integer(item, "inCarts")) for item in items]

    def seed_products(self, products: Iterable[Product], *, reseed: bool = False) -> list[str]:
        """Write the products the catalog lacks; the ids written.

        A live product is never overwritten (a deploy must not undo an
        operator's price change) unless `reseed` is set: then every product's
        name, description, price and image are rewritten. Either way each
        product's `inCarts` count is kept.
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
            "image": s(product.image), "inCarts": n(0),
        }

    def _rewrite(self, product: Product) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=key(table.CATALOG_PK, table.product_sk(product.id)),
            UpdateExpression=(
                "SET productId = :id, #n = :name, description = :d, "
                "priceCents = :p, image = :img, "
                "inCarts = if_not_exists(inCarts, :zero)"
            ),
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={
                ":id": s(product.id), ":name": s(product.name),
                ":d": s(product.description), ":p": n(product.price_cents),
                ":img": s(product.image), ":zero": n(0),
            },
        )
