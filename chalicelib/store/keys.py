"""Idempotency key records: CART#<cartId> / IDEMPOTENCY#<key>, a remembered response (TTL).

A key record is never written alone: it is one action of the transaction
that makes the change it remembers (carts.add_line_once, orders.checkout).
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.domain import is_live
from chalicelib.idempotency import IdempotentRequest, KeyReused
from chalicelib.store import errors
from chalicelib.store.codec import Item, expires, key, n, s, string


def replay(record: Item, once: IdempotentRequest) -> Item:
    """The response a key record remembers, if it was made for this very request."""
    if string(record, "requestHash") != once.request_hash:
        raise KeyReused(once.key)
    return record["response"]["M"]  # type: ignore[no-any-return]


class DynamoIdempotencyKeys:
    """Key records under the cart they belong to."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, cart_id: str, once: IdempotentRequest) -> Item:
        return key(table.cart_pk(cart_id), table.IDEMPOTENCY_PREFIX + once.key)

    def put_action(self, cart_id: str, once: IdempotentRequest, response: Item,
                   now: str, now_epoch: int) -> Item:
        """The transaction's Put of a key record: it fails while a live record holds the key."""
        return {"Put": {
            "TableName": self._table,
            "Item": {
                **self._key(cart_id, once),
                "requestHash": s(once.request_hash),
                "response": response,
                "createdAt": s(now),
                table.TTL_ATTRIBUTE: n(once.expires_at),
            },
            # DynamoDB deletes expired records late: an expired one is free.
            "ConditionExpression": "attribute_not_exists(pk) OR expiresAt <= :epoch",
            "ExpressionAttributeValues": {":epoch": n(now_epoch)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def replayed(self, failed: errors.ConditionFailed, index: int, cart_id: str,
                 once: IdempotentRequest, now_epoch: int) -> Item | None:
        """The remembered response when the key record (action `index`) cancelled
        the transaction; None when something else did. KeyReused for another request."""
        if not failed.failed(index):
            return None
        record = failed.item_at(index)
        if record is None:  # older SDKs and emulators may leave the old item out
            return self.remembered(cart_id, once, now_epoch)
        return replay(record, once)

    def remembered(self, cart_id: str, once: IdempotentRequest,
                   now_epoch: int) -> Item | None:
        """The response a live key record remembers, None when there is none."""
        with errors.translated():
            record = self._client.get_item(
                TableName=self._table, Key=self._key(cart_id, once), ConsistentRead=True,
            ).get("Item")
        if record is None or not is_live(expires(record), now_epoch):
            return None
        return replay(record, once)
