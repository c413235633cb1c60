"""Orders: CART#<cartId> / ORDER#<orderId>, reachable only from their cart.

Requests per operation (what bench/ measures):
    checkout       1 Query (the lines, consistent) + 1 TransactWriteItems
                   (order Put + one Delete per line + one stock Update per line,
                   more when a line is split over stock shards [+ key record Put])
    get_order      1 GetItem (consistent: the order page follows checkout's 201 at once)
    confirm_order  1 UpdateItem
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chalicelib import table
from chalicelib.catalog import Take
from chalicelib.domain import (
    CURRENCY,
    CartChanged,
    CartLine,
    DomainError,
    EmptyCart,
    Order,
    TooManyLines,
)
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
from chalicelib.store.stock import DynamoStock

# DynamoDB's limit on one transaction's actions; checkout takes the order, one
# delete and at least one stock update per line, and the key record
# (domain.MAX_LINES keeps carts inside: docs/DATA-MODEL.md "Checkout").
TRANSACTION_ACTIONS = 100

# The stock actions a checkout of these lines should take (chalicelib/catalog.py).
StockPlan = Callable[[Sequence[CartLine]], Sequence[Take]]


class StockRefused(DomainError):
    """A stock action's condition failed: short shard, changed price or withdrawn product.

    Nothing was written; the service reads the catalog to say which (or to
    retry with the units where they are).
    """

    def __init__(self, lines: Sequence[CartLine]) -> None:
        self.lines = tuple(lines)
        super().__init__(", ".join(line.product_id for line in self.lines))


class DynamoOrders:
    def __init__(self, client: Any, table_name: str, carts: DynamoCarts,
                 keys: DynamoIdempotencyKeys) -> None:
        self._client = client
        self._table = table_name
        self._carts = carts
        self._keys = keys
        self._stock = DynamoStock(client, table_name)

    def checkout(self, cart_id: str, order_id: str, now: str, now_epoch: int,
                 once: IdempotentRequest | None = None,
                 stock: StockPlan | None = None) -> Order:
        """Place an order from the cart's live lines in one transaction.

        Each line is deleted on the condition that it still holds what the
        order was built from, so a concurrent change cancels the checkout
        instead of slipping in between. With `once`, the key record that
        remembers the order is part of the same transaction. `stock` says
        which stock shards to take each line's units from, in the same
        transaction, each on the condition that the units are there at the
        line's price and the product is on sale (StockRefused otherwise).
        """
        items = self._carts.live_line_items(cart_id, now_epoch)
        if not items:
            # An empty cart may be the first checkout's doing: its retry replays.
            remembered = self._keys.remembered(cart_id, once, now_epoch) if once else None
            if remembered is not None:
                return order_from_item(remembered)
            raise EmptyCart(cart_id)
        lines = [line_from_item(item) for item in items]
        takes = list(stock(lines)) if stock else []
        if len(items) + len(takes) + 2 > TRANSACTION_ACTIONS:
            raise TooManyLines(cart_id)  # a cart from before the cap: never a 500
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
        first_take = len(actions)
        actions += [self._stock.take_action(take.product_id, take.shard, take.quantity,
                                            take.price_cents) for take in takes]
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
            if not any(failed.failed(i) for i in range(1, first_take)):
                refused = {takes[i - first_take].product_id
                           for i in range(first_take, first_take + len(takes)) if failed.failed(i)}
                if refused:
                    raise StockRefused([ln for ln in lines if ln.product_id in refused]) from failed
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
