"""Order history: a cart's own orders and, for an account, the orders it adopted.

    CART#<cartId>    ORDER#<orderId>      an order placed from this cart (orders.py)
    CART#<account>   ORDERREF#<orderId>   `cartId, orderId, placedAt`: an order this
                                          account's shopper placed anonymously, in the
                                          cart named, before signing in

A reference, not a copy: the order stays where checkout put it, so the
confirmation follow-up keeps it current and the history reads its status.

Every read is strongly consistent: a shopper reads the history right after a
checkout or a sign-in wrote it, and an eventually consistent read may miss it.

Requests per operation (what bench/ measures; consistent reads cost twice the RCU):
    orders_of   1 Query (sk begins_with ORDER: orders and references alike)
                + 1 BatchGetItem per 100 references
    link        1 BatchWriteItem per 25 orders
    find        1 GetItem of the order [+ 1 GetItem of the reference + 1 GetItem
                of the order it names]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib import table
from chalicelib.accounts import OrderSummary
from chalicelib.domain import CURRENCY, Order, StoreUnavailable
from chalicelib.store import errors
from chalicelib.store.codec import Item, integer, key, query_all, s, string
from chalicelib.store.orders import DynamoOrders

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
# Unprocessed keys come back when a partition is busy; after this many rounds, a 503.
BATCH_ROUNDS = 5
_SUMMARY_FIELDS = "orderId, #s, placedAt, itemCount, subtotalCents, currency, cartId, sk"
_SUMMARY_NAMES = {"#s": "status"}
# begins_with "ORDER" reads ORDER#<id> and ORDERREF#<id> in one Query.
_ORDER_ITEMS = "ORDER"


def _summary(item: Item) -> OrderSummary:
    return OrderSummary(
        order_id=string(item, "orderId"),
        status=string(item, "status"),
        placed_at=string(item, "placedAt"),
        item_count=integer(item, "itemCount"),
        subtotal_cents=integer(item, "subtotalCents"),
        currency=string(item, "currency") or CURRENCY,
    )


class DynamoOrderHistory:
    def __init__(self, client: Any, table_name: str, orders: DynamoOrders) -> None:
        self._client = client
        self._table = table_name
        self._orders = orders

    def orders_of(self, cart_id: str) -> list[OrderSummary]:
        """The cart's orders and the ones it references, in no particular order."""
        with errors.translated():
            items = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :orders)",
                ExpressionAttributeValues={":pk": s(table.cart_pk(cart_id)),
                                           ":orders": s(_ORDER_ITEMS)},
                ProjectionExpression=_SUMMARY_FIELDS,
                ExpressionAttributeNames=_SUMMARY_NAMES,
                ConsistentRead=True,
            )
        own = [_summary(item) for item in items
               if string(item, "sk").startswith(table.ORDER_PREFIX)]
        references = [key(table.cart_pk(string(item, "cartId")),
                          table.order_sk(string(item, "orderId")))
                      for item in items
                      if string(item, "sk").startswith(table.ORDER_REF_PREFIX)]
        return own + [_summary(item) for item in self._get_all(references)]

    def _get_all(self, keys: list[Item]) -> list[Item]:
        found: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self._table: {
                "Keys": keys[start:start + BATCH_GET_LIMIT],
                "ProjectionExpression": _SUMMARY_FIELDS,
                "ExpressionAttributeNames": _SUMMARY_NAMES,
                "ConsistentRead": True,
            }}
            for _ in range(BATCH_ROUNDS):
                with errors.translated():
                    response = self._client.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(self._table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StoreUnavailable("order history: keys left unprocessed")
        return found

    def link(self, account_cart: str, from_cart: str, orders: Iterable[OrderSummary]) -> None:
        """Reference each order from the account's cart; linking again rewrites the same."""
        puts = [{"PutRequest": {"Item": {
            **key(table.cart_pk(account_cart), table.ORDER_REF_PREFIX + order.order_id),
            "cartId": s(from_cart), "orderId": s(order.order_id),
            "placedAt": s(order.placed_at),
        }}} for order in orders]
        for start in range(0, len(puts), BATCH_WRITE_LIMIT):
            request: dict[str, Any] = {self._table: puts[start:start + BATCH_WRITE_LIMIT]}
            for _ in range(BATCH_ROUNDS):
                with errors.translated():
                    response = self._client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or {}
                if not request:
                    break
            else:
                raise StoreUnavailable("order history: writes left unprocessed")

    def find(self, account_cart: str, order_id: str) -> Order | None:
        """An order the account's cart placed or references; None when it has no such order."""
        order = self._orders.get_order(account_cart, order_id)
        if order is not None:
            return order
        with errors.translated():
            reference = self._client.get_item(
                TableName=self._table,
                Key=key(table.cart_pk(account_cart), table.ORDER_REF_PREFIX + order_id),
                ConsistentRead=True,
            ).get("Item")
        if reference is None:
            return None
        return self._orders.get_order(string(reference, "cartId"), order_id)
