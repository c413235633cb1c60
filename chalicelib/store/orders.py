"""Orders: CART#<cartId> / ORDER#<orderId>, reachable only from their cart.

Requests per operation (what bench/ measures):
    checkout       1 Query (the lines, consistent) + 1 TransactWriteItems
                   (order Put + one Delete per line [+ a keyed request's
                   key record Put] [+ the hooks' actions]); again from the Query while the
                   cart changes; an empty cart: + 1 GetItem of the order (consistent)
    get_order      1 GetItem (consistent: the order page follows checkout's 201 at once)
    confirm_order  1 UpdateItem

The order is the request's record. Its id is the request's: minted once per
request without a key (services.py keeps it across its own retries), derived
from the cart and the key with one (`order_id_for`), and its Put is
conditioned on `attribute_not_exists`. So an attempt that lands late, a
re-send and a keyed retry all meet the order placed first, and are answered
with it (the old item the cancelled Put returns, or a consistent GetItem). A
keyed checkout also writes the key's record (store/keys.py, without a
response): it is what makes the key one request's, whatever the operation.

The checkout transaction hook: a `CheckoutHook` adds its own actions to the
transaction (a catalog ConditionCheck, a stock decrement...) and turns the
cancellation of one of them into a domain error, so whatever it guards is
decided by DynamoDB in the same transaction that places the order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Sequence
from typing import Any, Protocol

from chalicelib import table
from chalicelib.domain import (
    CURRENCY,
    CartChanged,
    CartLine,
    DomainError,
    EmptyCart,
    Order,
    TooManyLines,
)
from chalicelib.idempotency import IdempotentRequest, KeyReused
from chalicelib.store import errors
from chalicelib.store.carts import DynamoCarts
from chalicelib.store.codec import (
    TRANSACTION_ACTIONS,
    Item,
    key,
    line_from_item,
    line_to_map,
    n,
    order_from_item,
    s,
    string,
)
from chalicelib.store.keys import DynamoIdempotencyKeys

# Checkout's transaction (within codec.TRANSACTION_ACTIONS) takes the order, one
# delete per line and, with an Idempotency-Key, the key's record
# (domain.MAX_LINES keeps carts well inside), and whatever the hooks add.
# The order Put's index in checkout's transaction.
_ORDER = 0


def order_id_for(cart_id: str, once: IdempotentRequest) -> str:
    """The id of the order a checkout request places: 32 hex digits, as every order id.

    Without a key, minted afresh: call it once per request, so that the request's
    own attempts all target one order item. With a key, derived from the cart
    and the key, so a retry with the key targets the order the first placed;
    no one can compute it without the cart id.
    """
    if once.minted:
        return secrets.token_hex(16)
    return hashlib.sha256(f"order\0{cart_id}\0{once.key}".encode()).hexdigest()[:32]


def _as_placed(item: Item) -> Order:
    """The order as checkout answered it when it placed it (confirmed since, maybe)."""
    return dataclasses.replace(order_from_item(item), status="PLACED", confirmed_at=None)


class CheckoutHook(Protocol):
    """Extra actions in checkout's transaction, and what their refusal means."""

    def actions(self, cart_id: str, lines: Sequence[CartLine], now_epoch: int) -> list[Item]:
        """TransactItems to add (ConditionCheck, Update...); [] for none."""
        ...

    def refused(self, index: int, reason: str, item: Item | None) -> DomainError | None:
        """The domain error for its action `index` (of those it returned) cancelled with
        `reason` and the old `item`; None to treat it as the cart having changed."""
        ...


class DynamoOrders:
    def __init__(self, client: Any, table_name: str, carts: DynamoCarts,
                 keys: DynamoIdempotencyKeys,
                 hooks: Sequence[CheckoutHook] = ()) -> None:
        self._client = client
        self._table = table_name
        self._carts = carts
        self._keys = keys
        self.hooks: list[CheckoutHook] = list(hooks)

    def checkout(self, cart_id: str, order_id: str, now: str, now_epoch: int,
                 once: IdempotentRequest, hooks: Sequence[CheckoutHook] = ()) -> Order:
        """Place an order from the cart's live lines in one transaction.

        Each line is deleted on the condition that it still holds what the
        order was built from (and is live), so a concurrent change cancels the
        checkout (CartChanged: the service reads the cart again) instead of
        slipping in between; the order holds exactly the lines it deleted.
        `order_id` is the request's (`order_id_for`): the order item is the
        request's record. A transaction cancelled by it (an earlier attempt
        landed, a keyed retry) answers the order placed first, as it was placed;
        so does a checkout that finds the cart empty and the order there. With a
        key, the order holds the request's hash (KeyReused for another request),
        and the key's record rides along, so the key is this request's for 24 h
        whatever the operation; a keyed retry is answered from the order for as
        long as it lives.
        `hooks` run after the repository's own: this attempt's (the stock takes).
        """
        items = self._carts.live_line_items(cart_id, now_epoch)
        if not items:
            # An empty cart may be this request's own doing (or a keyed retry's).
            placed = self._placed(cart_id, order_id, once, now_epoch)
            if placed is not None:
                return placed
            raise EmptyCart(cart_id)
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
        if not once.minted:
            order_item["requestHash"] = s(once.request_hash)
        actions: list[Item] = [{"Put": {
            "TableName": self._table,
            "Item": order_item,
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}]
        for item in items:
            actions.append({"Delete": {
                "TableName": self._table,
                "Key": {"pk": pk, "sk": item["sk"]},
                "ConditionExpression": "#q = :q AND updatedAt = :u AND expiresAt > :epoch",
                "ExpressionAttributeNames": {"#q": "quantity"},
                "ExpressionAttributeValues": {
                    ":q": item["quantity"], ":u": item["updatedAt"], ":epoch": n(now_epoch),
                },
            }})
        # The header is not counted down (store/carts.py): its count may run high.
        record_index = None
        if not once.minted:
            # The key's record: small (the order holds the answer), but it makes the
            # key this request's for an add as well (KeyReused either way).
            record_index = len(actions)
            actions.append(self._keys.put_action(cart_id, once, None, now, now_epoch))
        hooked: list[tuple[CheckoutHook, int, int]] = []
        for hook in [*self.hooks, *hooks]:
            extra = hook.actions(cart_id, lines, now_epoch)
            hooked.append((hook, len(actions), len(extra)))
            actions.extend(extra)
        if len(actions) > TRANSACTION_ACTIONS:
            raise TooManyLines(cart_id)  # a cart from before the cap: never a 500
        try:
            with errors.translated():
                self._client.transact_write_items(TransactItems=actions)
        except errors.ConditionFailed as failed:
            if record_index is not None:
                # KeyReused when the key is another request's; else the order answers
                # (or, for a checkout from before the order was the record, the record).
                remembered = self._keys.replayed(failed, record_index, cart_id, once,
                                                 now_epoch)
                if remembered:
                    return order_from_item(remembered)
            if failed.failed(_ORDER):
                old = failed.item_at(_ORDER)
                placed = (self._answer(old, once) if old is not None
                          else self._placed(cart_id, order_id, once, now_epoch))
                if placed is not None:
                    return placed
            for hook, first, count in hooked:
                for index in range(first, first + count):
                    if failed.failed(index):
                        refusal = hook.refused(index - first, failed.reasons[index],
                                               failed.item_at(index))
                        if refusal is not None:
                            raise refusal from failed
            raise CartChanged(cart_id) from failed
        return order_from_item(order_item)

    def _placed(self, cart_id: str, order_id: str, once: IdempotentRequest,
                now_epoch: int) -> Order | None:
        """The request's order if it was placed (a consistent read); None if not.
        KeyReused when a keyed request's key belongs to another request."""
        item = self._order_item(cart_id, order_id)
        if item is not None:
            return self._answer(item, once)
        if not once.minted:
            # KeyReused for an add's key; a record from before the order was the
            # record (it holds the order) answers.
            remembered = self._keys.remembered(cart_id, once, now_epoch)
            if remembered:
                return order_from_item(remembered)
        return None

    @staticmethod
    def _answer(item: Item, once: IdempotentRequest) -> Order:
        """The answer to the request whose order this is: as it was placed."""
        if not once.minted and string(item, "requestHash") != once.request_hash:
            raise KeyReused(once.key)
        return _as_placed(item)

    def _order_item(self, cart_id: str, order_id: str) -> Item | None:
        with errors.translated():
            return self._client.get_item(  # type: ignore[no-any-return]
                TableName=self._table,
                Key=key(table.cart_pk(cart_id), table.order_sk(order_id)),
                ConsistentRead=True,
            ).get("Item")

    def get_order(self, cart_id: str, order_id: str) -> Order | None:
        item = self._order_item(cart_id, order_id)
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
