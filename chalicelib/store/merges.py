"""Moving cart lines from an anonymous cart into an account's cart.

    CART#<anonymous>  LINE#<productId>   deleted, on the condition it is as read
    CART#<account>    LINE#<productId>   written with the summed quantity, on the
                                         condition that it too is as read (or absent)

Both halves of a line's move are in one transaction, so a retried or
concurrent sign-in never adds a line twice (the second finds the anonymous
line gone, and its transaction is cancelled), and an add that lands between
the read and the write cancels it too, so it is read again rather than lost.

One account per anonymous cart, ever: before anything moves, the sign-in
claims the anonymous cart for the account,

    CART#<anonymous>  ADOPTEDBY          `accountCart`, put on the condition that no
                                         other account holds the claim (no TTL)

so a second account signing in on the same browser (a shared computer) adopts
neither the lines nor the orders the first one adopted, whatever cookie the
browser still holds.

The lines' headers (store/carts.py) change in the same transaction: the
account's counts the lines it gains (refused past MAX_LINES), the anonymous
cart's the lines it loses.

Requests per operation (what bench/ measures):
    claim        1 conditional PutItem
    move_lines   1 TransactWriteItems per 49 lines (2 actions per line + 2 headers;
                 the limit is 100)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import table
from chalicelib.domain import CartChanged, CartLine
from chalicelib.store import errors
from chalicelib.store.carts import header_change
from chalicelib.store.codec import TRANSACTION_ACTIONS, Item, key, n, s

ACTIONS_PER_MOVE = 2
HEADER_ACTIONS = 2


@dataclass(frozen=True)
class LineMove:
    """One line's move, with both lines as they were read."""

    anonymous: CartLine
    account: CartLine | None
    quantity: int        # the account line's quantity afterwards
    name: str            # name and price from the catalog, never from a client
    unit_price_cents: int


def _as_read(line: CartLine) -> Item:
    """Condition a write on a live line being exactly as read."""
    values: Item = {":q": n(line.quantity)}
    condition = "#q = :q"
    if line.updated_at:
        condition += " AND updatedAt = :u"
        values[":u"] = s(line.updated_at)
    else:
        condition += " AND attribute_not_exists(updatedAt)"
    return {"ConditionExpression": condition,
            "ExpressionAttributeNames": {"#q": "quantity"},
            "ExpressionAttributeValues": values}


class DynamoCartMerges:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _actions(self, anonymous_cart: str, account_cart: str, move: LineMove,
                 now: str, now_epoch: int, expires_at: int) -> list[Item]:
        product_id = move.anonymous.product_id
        if move.account is None:
            # DynamoDB deletes expired lines late: an expired one is free to replace.
            target: Item = {"ConditionExpression": "attribute_not_exists(pk) OR expiresAt <= :e",
                            "ExpressionAttributeValues": {":e": n(now_epoch)}}
        else:
            target = _as_read(move.account)
        return [
            {"Put": {
                "TableName": self._table,
                "Item": {
                    **key(table.cart_pk(account_cart), table.line_sk(product_id)),
                    "productId": s(product_id), "name": s(move.name),
                    "unitPriceCents": n(move.unit_price_cents), "quantity": n(move.quantity),
                    "updatedAt": s(now), table.TTL_ATTRIBUTE: n(expires_at),
                },
                **target,
            }},
            {"Delete": {
                "TableName": self._table,
                "Key": key(table.cart_pk(anonymous_cart), table.line_sk(product_id)),
                **_as_read(move.anonymous),
            }},
        ]

    def claim(self, anonymous_cart: str, account_cart: str) -> bool:
        """Bind the anonymous cart to this account; False if another account holds it.

        Claiming again for the same account succeeds: a retried sign-in, or the
        account signing in again on the browser that still holds lines it left behind.
        """
        try:
            with errors.translated():
                self._client.put_item(
                    TableName=self._table,
                    Item={**key(table.cart_pk(anonymous_cart), table.ADOPTED_BY_SK),
                          "accountCart": s(account_cart)},
                    ConditionExpression="attribute_not_exists(pk) OR accountCart = :account",
                    ExpressionAttributeValues={":account": s(account_cart)},
                )
        except errors.ConditionFailed:
            return False
        return True

    def move_lines(self, anonymous_cart: str, account_cart: str, moves: Sequence[LineMove],
                   now: str, now_epoch: int, expires_at: int,
                   counted: tuple[int, int] = (0, 0)) -> None:
        """Apply the moves; CartChanged if a line changed since it was read.

        Each transaction holds whole moves, so whatever a cancelled one left
        behind is still in the anonymous cart, for the next attempt to read.
        `counted`: the live lines read in the anonymous and the account cart,
        which stand in for a header either has not got.
        """
        per_transaction = (TRANSACTION_ACTIONS - HEADER_ACTIONS) // ACTIONS_PER_MOVE
        for start in range(0, len(moves), per_transaction):
            batch = moves[start:start + per_transaction]
            actions = [action for move in batch
                       for action in self._actions(anonymous_cart, account_cart, move,
                                                   now, now_epoch, expires_at)]
            gained = sum(1 for move in batch if move.account is None)
            if gained:
                actions.append(header_change(self._table, account_cart, gained,
                                             counted[1], expires_at))
            actions.append(header_change(self._table, anonymous_cart, -len(batch),
                                         counted[0]))
            try:
                with errors.translated():
                    self._client.transact_write_items(TransactItems=actions)
            except errors.ConditionFailed as failed:
                raise CartChanged(anonymous_cart) from failed
