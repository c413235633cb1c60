"""Popularity: how many carts hold each product.

    PRODUCT#<id>    HOLDER#<cartId>   does this cart hold the product (TTL once let go)
    CATALOG         PRODUCT#<id>      its `inCarts` count

Requests per operation (what bench/ measures):
    record_holding  1 TransactWriteItems (holder mark + count) per change
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.store import errors
from chalicelib.store.codec import key, n


class DynamoPopularity:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record_holding(self, product_id: str, cart_id: str, holds: bool,
                       sequence: int, expires_at: int) -> bool:
        """Move the (product, cart) holder mark and the product's count together.

        The mark remembers the last stream sequence applied, so a duplicated
        or replayed record changes nothing. False when there was nothing to do.
        """
        # The mark must be in the other state: present-and-false or absent
        # for a new holder, present-and-true for one that lets go.
        expected = "(attribute_not_exists(holds) OR holds = :was)" if holds else "holds = :was"
        # A mark that holds lives as long as the line does, so it never expires;
        # one that let go is kept a while only to recognise replays.
        values: dict[str, Any] = {":h": {"BOOL": holds}, ":seq": n(sequence),
                                  ":was": {"BOOL": not holds}}
        if holds:
            update = "SET holds = :h, seq = :seq REMOVE expiresAt"
        else:
            update = "SET holds = :h, seq = :seq, expiresAt = :exp"
            values[":exp"] = n(expires_at)
        try:
            with errors.translated():
                self._client.transact_write_items(TransactItems=[
                    {"Update": {
                        "TableName": self._table,
                        "Key": key(table.PRODUCT_PREFIX + product_id,
                                   table.HOLDER_PREFIX + cart_id),
                        "UpdateExpression": update,
                        "ConditionExpression": (
                            f"{expected} AND (attribute_not_exists(seq) OR seq < :seq)"
                        ),
                        "ExpressionAttributeValues": values,
                    }},
                    {"Update": {
                        "TableName": self._table,
                        "Key": key(table.CATALOG_PK, table.product_sk(product_id)),
                        "UpdateExpression": "ADD inCarts :delta",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":delta": n(1 if holds else -1)},
                    }},
                ])
        except errors.ConditionFailed as failed:
            if failed.failed(0):
                return False
            raise
        return True
