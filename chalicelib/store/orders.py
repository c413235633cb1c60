"""Orders: CART#<cartId> / ORDER#<orderId>, reachable only from their cart.

Requests per operation (what bench/ measures):
    checkout       1 Query (the lines, consistent) + 1 TransactWriteItems
                   (order Put + one Delete per line [+ key record Put])
    get_order      1 GetItem (consistent: the order page follows checkout's 201 at once)
    confirm_order  1 UpdateItem
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.domain import CURRENCY, CartChanged, EmptyCart, Order, TooManyLines
from chalicelib.idempotency import IdempotentRequest
from chalicelib.store import errors
from chalicelib.store.carts import DynamoCarts
from chalicelib.store.codec import (
    Item,
    key,
    line_from_item,
    line_to_map,
    n,
    order_from_item,
    s,
)
from chalicelib.store.keys import DynamoIdempotencyKeys

# DynamoDB's limit on one transaction's actions; checkout takes the order, one
# delete per line and the key record (domain.MAX_LINES keeps carts well inside).
TRANSACTION_ACTIONS = 100


class DynamoOrders:
    def __init__(self, client: Any, table_name: str, carts: DynamoCarts,
                 keys: DynamoIdempotencyKeys) -> None:
        self._client = client
        self._table = table_name
        self._carts = carts
        self._keys = keys

    def checkout(self, cart_id: str, order_id: str, now: str, now_epoch: int,
                 once: IdempotentRequest | None = None) -> Order:
        """Place an order from the cart's live lines in one transaction.

        Each line is deleted on the condition that it still holds what the
        order was built from, so a concurrent change cancels the checkout
        instead of slipping in between. With `once`, the key record that
        remembers the order is part of the same transaction.
        """
        items = self._carts.live_line_items(cart_id, now_epoch)
        if not items:
            # An empty cart may be the first checkout's doing: its retry replays.
            remembered = self._keys.remembered(cart_id, once, now_epoch) if once else None
            if remembered is not None:
                return order_from_item(remembered)
            raise EmptyCart(cart_id)
        if len(items) + 2 > TRANSACTION_ACTIONS:
            raise TooManyLines(cart_id)  # a cart from before the cap: never a 500
        lines = [line_from_item(item) for item in items]
        pk = s(table.cart_pk(cart_id))
        order_item = {
            **key(table.cart_pk(cart_id), table.order_sk(order_id)),
            "orderId": s(order_id),
            "status": s("PLACED"),
            "lines": {"L": [line_to_map(line) for line in lines]},
            "itemCount": n(sum(line.quantity for line in lines)),
            "subtotalCents": n(sum(line.line_total_cents for line in lines)),
            "currency": s(CURRENCY),
            "placedAt": s(now),
        }
        actions: list[Item] = [{"Put": {
            "TableName": self._table,
            "Item": order_item,
            "ConditionExpression": "attribute_not_exists(pk)",
        }}]
        for item in items:
            actions.append({"Delete": {
                "TableName": self._table,
                "Key": {"pk": pk, "sk": item["sk"]},
                "ConditionExpression": "#q = :q AND updatedAt = :u",
                "ExpressionAttributeNames": {"#q": "quantity"},
                "ExpressionAttributeValues": {
                    ":q": item["quantity"], ":u": item["updatedAt"],
                },
            }})
        if once is not None:
            response = {"M": {k: v for k, v in order_item.items() if k not in ("pk", "sk")}}
            actions.append(self._keys.put_action(cart_id, once, response, now, now_epoch))
        try:
            with errors.translated():
                self._client.transact_write_items(TransactItems=actions)
        except errors.ConditionFailed as failed:
            if once is not None:
                remembered = self._keys.replayed(failed, len(actions) - 1, cart_id, once,
                                                 now_epoch)
                if remembered is not None:
                    return order_from_item(remembered)
            raise CartChanged(cart_id) from failed
        return order_from_item(order_item)

    def get_order(self, cart_id: str, order_id: str) -> Order | None:
        with errors.translated():
            item = self._client.get_item(
                TableName=self._table,
                Key=key(table.cart_pk(cart_id), table.order_sk(order_id)),
                ConsistentRead=True,
            ).get("Item")
        return order_from_item(item) if item else None

    def confirm_order(self, cart_id: str, order_id: str, now: str) -> bool:
        """PLACED becomes CONFIRMED once; False when it already was."""
        try:
            with errors.translated():
                self._client.update_item(
                    TableName=self._table,
                    Key=key(table.cart_pk(cart_id), table.order_sk(order_id)),
                    UpdateExpression="SET #s = :confirmed, confirmedAt = :now",
                    ConditionExpression="#s = :placed",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":confirmed": s("CONFIRMED"), ":placed": s("PLACED"), ":now": s(now),
                    },
                )
        except errors.ConditionFailed:
            return False
        return True
