"""A cart's lines and its summary.

    CART#<cartId>   LINE#<productId>   one cart line (TTL)
    CART#<cartId>   SUMMARY            what cart-status reads, kept by the stream (TTL)

Requests per operation (what bench/ measures):
    add_line        1 UpdateItem; a new line also 1 Query (Select COUNT) for the cap
                    (+1 PutItem when it replaces an expired line, +1 DeleteItem
                    when a new line past the cap is taken back)
    add_line_once   1 GetItem + 1 TransactWriteItems (line + key record) per attempt;
                    a new line also 1 Query (Select COUNT)
    set_quantity    1 UpdateItem;  remove_line  1 DeleteItem
    list_lines      1 Query (consistent);  get_summary  1 GetItem (consistent)
    put_summary     1 PutItem (conditional on its sequence);  renew_line  1 UpdateItem
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from chalicelib import table
from chalicelib.domain import (
    MAX_LINES,
    CartChanged,
    CartLine,
    CartSummary,
    NotInCart,
    Product,
    QuantityLimitExceeded,
    TooManyLines,
    headroom,
    is_live,
)
from chalicelib.idempotency import IdempotentRequest
from chalicelib.store import errors
from chalicelib.store.codec import (
    Item,
    expires,
    integer,
    key,
    line_from_item,
    line_to_map,
    n,
    query_all,
    s,
    string,
)
from chalicelib.store.keys import DynamoIdempotencyKeys

_LINE_FIELDS = {"#q": "quantity", "#n": "name"}
# Attempts of a keyed add whose line changed between its read and its write:
# adds racing on one line each win a round, so the bound is about the number
# of concurrent adds on one line a shopper can make; a jittered pause between
# attempts (at most ADD_ONCE_PAUSE_MS) spreads them out. Worst case ~2 s, well
# inside the API function's timeout.
ADD_ONCE_ATTEMPTS = 60
ADD_ONCE_PAUSE_MS = 100


def _unchanged(old: Item | None) -> Item:
    """Condition a write on the item being exactly as read (or still absent)."""
    if old is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    parts = ["attribute_exists(pk)"]
    for i, attribute in enumerate(("quantity", "updatedAt", table.TTL_ATTRIBUTE)):
        names[f"#a{i}"] = attribute
        if attribute in old:
            parts.append(f"#a{i} = :a{i}")
            values[f":a{i}"] = old[attribute]
        else:
            parts.append(f"attribute_not_exists(#a{i})")
    condition: Item = {"ConditionExpression": " AND ".join(parts),
                       "ExpressionAttributeNames": names}
    if values:
        condition["ExpressionAttributeValues"] = values
    return condition


class DynamoCarts:
    """Cart lines and summaries in the single table."""

    def __init__(self, client: Any, table_name: str,
                 keys: DynamoIdempotencyKeys | None = None) -> None:
        self._client = client
        self._table = table_name
        self._keys = keys or DynamoIdempotencyKeys(client, table_name)

    @staticmethod
    def _line_key(cart_id: str, product_id: str) -> Item:
        return key(table.cart_pk(cart_id), table.line_sk(product_id))

    def add_line(self, cart_id: str, product: Product, quantity: int,
                 now: str, now_epoch: int, expires_at: int) -> CartLine:
        """Add quantity to the line in one conditional UpdateItem.

        A line it creates is counted against MAX_LINES afterwards, and taken
        back if it went past: no read comes before the write, and the cap holds
        for every answer given (adds racing past it all get the 409).
        """
        line_key = self._line_key(cart_id, product.id)
        try:
            with errors.translated():
                response = self._client.update_item(
                    TableName=self._table,
                    Key=line_key,
                    UpdateExpression=(
                        "SET #q = if_not_exists(#q, :zero) + :q, productId = :pid, "
                        "#n = :name, unitPriceCents = :price, updatedAt = :now, "
                        "expiresAt = :exp"
                    ),
                    ConditionExpression=(
                        "(attribute_not_exists(#q) OR #q <= :room) AND "
                        "(attribute_not_exists(expiresAt) OR expiresAt > :epoch)"
                    ),
                    ExpressionAttributeNames=_LINE_FIELDS,
                    ExpressionAttributeValues={
                        ":zero": n(0), ":q": n(quantity), ":pid": s(product.id),
                        ":name": s(product.name), ":price": n(product.price_cents),
                        ":now": s(now), ":exp": n(expires_at),
                        ":room": n(headroom(quantity)), ":epoch": n(now_epoch),
                    },
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except errors.ConditionFailed as failed:
            old = failed.item or {}
            if is_live(expires(old), now_epoch):
                raise QuantityLimitExceeded(integer(old, "quantity")) from failed
            # The line expired but DynamoDB has not deleted it yet: start afresh.
            line = self._replace_expired_line(line_key, old, product, quantity, now,
                                              expires_at)
            self._within_cap(cart_id, line_key, line, now_epoch)
            return line
        old_item: Item | None = response.get("Attributes")
        line = CartLine(product.id, product.name, product.price_cents,
                        integer(old_item, "quantity") + quantity, now, expires_at)
        if old_item is None:
            self._within_cap(cart_id, line_key, line, now_epoch)
        return line

    def count_lines(self, cart_id: str, now_epoch: int) -> int:
        """The cart's live lines, counted by DynamoDB (one consistent Query, keys only)."""
        with errors.translated():
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :line)",
                FilterExpression="attribute_not_exists(expiresAt) OR expiresAt > :epoch",
                ExpressionAttributeValues={
                    ":pk": s(table.cart_pk(cart_id)), ":line": s(table.LINE_PREFIX),
                    ":epoch": n(now_epoch),
                },
                Select="COUNT",
                ConsistentRead=True,
            )
        # A cart under the cap fits one page (1 MB) many times over.
        return int(response["Count"])

    def _within_cap(self, cart_id: str, line_key: Item, line: CartLine,
                    now_epoch: int) -> None:
        """Take back a line just created past MAX_LINES, and refuse the add."""
        if self.count_lines(cart_id, now_epoch) <= MAX_LINES:
            return
        try:
            with errors.translated():
                # Only if it is still just what this add made of it.
                self._client.delete_item(
                    TableName=self._table, Key=line_key,
                    ConditionExpression="#q = :q AND updatedAt = :now",
                    ExpressionAttributeNames={"#q": "quantity"},
                    ExpressionAttributeValues={":q": n(line.quantity),
                                               ":now": s(line.updated_at)},
                )
        except errors.ConditionFailed:
            return  # another add landed on the line: it is in the cart for good
        raise TooManyLines(cart_id)

    def _replace_expired_line(self, line_key: Item, old: Item, product: Product,
                              quantity: int, now: str, expires_at: int) -> CartLine:
        line = CartLine(product.id, product.name, product.price_cents, quantity, now)
        try:
            with errors.translated():
                self._client.put_item(
                    TableName=self._table,
                    Item={**line_key, **line_to_map(line)["M"], "updatedAt": s(now),
                          "expiresAt": n(expires_at)},
                    ConditionExpression="expiresAt = :old",
                    ExpressionAttributeValues={":old": old["expiresAt"]},
                )
        except errors.ConditionFailed as failed:
            raise CartChanged("the line changed while it was renewed") from failed
        return line

    def set_quantity(self, cart_id: str, product_id: str, quantity: int,
                     now: str, now_epoch: int, expires_at: int) -> CartLine:
        """Set a live line's quantity; NotInCart when there is none."""
        try:
            with errors.translated():
                response = self._client.update_item(
                    TableName=self._table,
                    Key=self._line_key(cart_id, product_id),
                    UpdateExpression="SET #q = :q, updatedAt = :now, expiresAt = :exp",
                    ConditionExpression="attribute_exists(#q) AND expiresAt > :epoch",
                    ExpressionAttributeNames={"#q": "quantity"},
                    ExpressionAttributeValues={
                        ":q": n(quantity), ":now": s(now), ":exp": n(expires_at),
                        ":epoch": n(now_epoch),
                    },
                    ReturnValues="ALL_NEW",
                )
        except errors.ConditionFailed as failed:
            raise NotInCart(product_id) from failed
        return line_from_item(response["Attributes"])

    def remove_line(self, cart_id: str, product_id: str) -> None:
        """Delete the line; deleting an absent line is not an error."""
        with errors.translated():
            self._client.delete_item(TableName=self._table,
                                     Key=self._line_key(cart_id, product_id))

    def list_lines(self, cart_id: str, now_epoch: int) -> list[CartLine]:
        return [line_from_item(item) for item in self.live_line_items(cart_id, now_epoch)]

    def live_line_items(self, cart_id: str, now_epoch: int) -> list[Item]:
        """The cart's live line items, read consistently (one Query, paged)."""
        with errors.translated():
            items = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :line)",
                ExpressionAttributeValues={
                    ":pk": s(table.cart_pk(cart_id)), ":line": s(table.LINE_PREFIX),
                },
                ConsistentRead=True,
            )
        return [item for item in items if is_live(expires(item), now_epoch)]

    def renew_line(self, cart_id: str, product_id: str, expires_at: int,
                   now_epoch: int) -> None:
        """Push a live line's expiry out to the cart's; never shorten or revive one."""
        try:
            with errors.translated():
                self._client.update_item(
                    TableName=self._table,
                    Key=self._line_key(cart_id, product_id),
                    UpdateExpression="SET expiresAt = :exp",
                    ConditionExpression="expiresAt < :exp AND expiresAt > :epoch",
                    ExpressionAttributeValues={":exp": n(expires_at), ":epoch": n(now_epoch)},
                )
        except errors.ConditionFailed:
            pass  # already renewed, or gone: nothing to do

    def add_line_once(self, cart_id: str, product: Product, quantity: int, now: str,
                      now_epoch: int, expires_at: int, once: IdempotentRequest) -> CartLine:
        """add_line, applied once per key; a retry gets the line the first call made.

        A transaction returns no new values, so the line is read and then
        written on the condition that it is unchanged, in one transaction with
        the key record that remembers the resulting line. Adds racing on the
        line are retried here, not answered with a 409.
        """
        line_key = self._line_key(cart_id, product.id)
        old: Item | None = None
        read = False
        counted = False
        for attempt in range(ADD_ONCE_ATTEMPTS):
            if not read:
                with errors.translated():
                    old = self._client.get_item(
                        TableName=self._table, Key=line_key, ConsistentRead=True).get("Item")
            live = old is not None and is_live(expires(old), now_epoch)
            held = integer(old, "quantity") if live else 0
            if held > headroom(quantity):
                remembered = self._keys.remembered(cart_id, once, now_epoch)
                if remembered is not None:
                    return line_from_item(remembered)
                raise QuantityLimitExceeded(held)
            if not live and not counted:
                if self.count_lines(cart_id, now_epoch) >= MAX_LINES:
                    remembered = self._keys.remembered(cart_id, once, now_epoch)
                    if remembered is not None:
                        return line_from_item(remembered)
                    raise TooManyLines(cart_id)
                counted = True
            line = CartLine(product.id, product.name, product.price_cents,
                            held + quantity, now, expires_at)
            item = {**line_key, **line_to_map(line)["M"], "updatedAt": s(now),
                    "expiresAt": n(expires_at)}
            try:
                with errors.translated():
                    self._client.transact_write_items(TransactItems=[
                        self._keys.put_action(cart_id, once, line_to_map(line), now,
                                              now_epoch),
                        {"Put": {"TableName": self._table, "Item": item, **_unchanged(old),
                                 "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                    ])
            except errors.ConditionFailed as failed:
                remembered = self._keys.replayed(failed, 0, cart_id, once, now_epoch)
                if remembered is not None:
                    return line_from_item(remembered)
                # The line changed since it was read: DynamoDB says how it is now
                # (if it does not, read it again), and the next try waits a little.
                old = failed.item_at(1)
                read = old is not None
                time.sleep(secrets.randbelow(1 + min(ADD_ONCE_PAUSE_MS, 10 * (attempt + 1))) / 1000)
                continue
            return line
        raise CartChanged(cart_id)

    def get_summary(self, cart_id: str, now_epoch: int) -> CartSummary | None:
        with errors.translated():
            item = self._client.get_item(
                TableName=self._table,
                Key=key(table.cart_pk(cart_id), table.SUMMARY_SK),
                ConsistentRead=True,
            ).get("Item")
        if item is None or not is_live(expires(item), now_epoch):
            return None
        return CartSummary(
            item_count=integer(item, "itemCount"),
            subtotal_cents=integer(item, "subtotalCents"),
            updated_at=string(item, "updatedAt") or None,
        )

    def put_summary(self, cart_id: str, summary: CartSummary, expires_at: int,
                    sequence: str = "") -> bool:
        """Write the summary built from the stream up to `sequence` (zero-padded text).

        A summary never goes backwards: the put is conditional on the stored
        one being from an older record, so a slow or replayed invocation that
        read the lines before a newer one wrote them changes nothing. False then.
        """
        item = {
            **key(table.cart_pk(cart_id), table.SUMMARY_SK),
            "itemCount": n(summary.item_count),
            "subtotalCents": n(summary.subtotal_cents),
            "expiresAt": n(expires_at),
            "seq": s(sequence),
        }
        if summary.updated_at:
            item["updatedAt"] = s(summary.updated_at)
        try:
            with errors.translated():
                self._client.put_item(
                    TableName=self._table, Item=item,
                    ConditionExpression="attribute_not_exists(seq) OR seq < :seq",
                    ExpressionAttributeValues={":seq": s(sequence)},
                )
        except errors.ConditionFailed:
            return False
        return True

    def reprice_line(self, cart_id: str, product_id: str, old_cents: int,
                     new_cents: int) -> bool:
        """Put today's price on a line that still holds the old one; False if it did not."""
        try:
            with errors.translated():
                self._client.update_item(
                    TableName=self._table,
                    Key=self._line_key(cart_id, product_id),
                    UpdateExpression="SET unitPriceCents = :new",
                    ConditionExpression="unitPriceCents = :old",
                    ExpressionAttributeValues={":new": n(new_cents), ":old": n(old_cents)},
                )
        except errors.ConditionFailed:
            return False  # removed, or repriced by another checkout meanwhile
        return True
