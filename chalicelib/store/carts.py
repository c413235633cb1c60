"""A cart's lines and their header (its summary: store/summaries.py).

    CART#<cartId>   LINES              lineCount (an upper bound on the live lines:
                                       counted up with each line made, corrected at
                                       the cap), rev (+1 per line made; TTL)
    CART#<cartId>   LINE#<productId>   one cart line (TTL)

Every write is one TransactWriteItems, applied at most once however often it
is sent: its ClientRequestToken makes DynamoDB apply it once in 10 minutes
(store/retry.py `transact`), so botocore's re-send after a timeout, or an
attempt that lands late, applies nothing. A shopper's Idempotency-Key asks
for more (the same answer for 24 hours, on another request too): the
transaction of a keyed write also Puts the key's record (store/keys.py),
holding the answer, and a retry is cancelled by it and answered from it.

An add reads the line first (one consistent GetItem) to pick its one write:
a live line's update (`quantity + q`, conditioned on room, not on what was
read, so adds racing on one line all apply), or a new line counted in the
header. The read picks; the write's condition decides. The cap on distinct
lines is the header's condition `lineCount < MAX_LINES`, evaluated by
DynamoDB in the transaction that creates the line. The count goes up exactly
and down lazily: removing a line (remove, set to 0, checkout) leaves the
header alone, so its count is an upper bound that only runs high (a sign-in's
move still counts its lines off: it writes both headers anyway). A header
DynamoDB has not got (a cart older than the header, or one whose header
expired) is made from a consistent count of the live lines; one at the cap is
corrected from that count, on the condition that its `rev` has not moved (no
line was made since), before an add is refused. So the cap is never passed
and never refuses an add with room, and a removal or a checkout writes one
item fewer. Conflicts that applied nothing are retried inside the request
(store/retry.py), never answered 409.

Requests per operation (what bench/ measures; WCU for items under 1 KB; a
transaction bills 2 WCU per item; [+2 WCU]: a keyed request's record):
    add_line      1 GetItem (the line, consistent: 1 RCU), then
                  existing line: 1 TransactWriteItems (line: 2 WCU [+2]); unkeyed
                  + 1 GetItem (the line after); keyed, conditioned on the quantity read,
                  the record holding the answer [when the line moved since: the unkeyed
                  form again + 1 GetItem + 1 UpdateItem: the record keeps the answer]
                  new line: 1 TransactWriteItems (header + line: 4 WCU [+2])
                  a new cart's first add (its id made for this request): no read, 1
                  TransactWriteItems (the header's Put + line: 4 WCU [+2])
                  [a cart's first line, or a stale header: + 1 Query (COUNT)
                  + 1 PutItem or UpdateItem of the header]
    set_quantity  1 TransactWriteItems (line: 2 WCU [+2]) + 1 GetItem
    remove_line   1 TransactWriteItems (the line's Delete: 2 WCU [+2])
    list_lines    1 Query (consistent);  renew_line, reprice_line  1 UpdateItem
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib import idempotency, table
from chalicelib.catalog import NotEnoughStock
from chalicelib.domain import (
    CART_TTL_SECONDS,
    MAX_LINES,
    CartLine,
    NotInCart,
    Product,
    QuantityLimitExceeded,
    StoreUnavailable,
    TooManyLines,
    headroom,
    is_live,
)
from chalicelib.idempotency import IdempotentRequest
from chalicelib.store import errors, retry
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
)
from chalicelib.store.keys import APPLIED, DynamoIdempotencyKeys
from chalicelib.store.retry import Deadline
from chalicelib.store.summaries import CartSummaries

_LINE_FIELDS = {"#q": "quantity", "#n": "name"}


class _Raced(Exception):
    """Another write changed what this attempt relied on; nothing applied: try again."""


class _Moved(_Raced):
    """A keyed add's line moved since it was read: add on top of it instead, once."""


def header_expiry(line_expires_at: int) -> int:
    """The header outlives every line it counts: a line's add renews the line's expiry
    alone, so the header keeps a whole cart's TTL of slack beyond the latest it saw."""
    return line_expires_at + CART_TTL_SECONDS


def header_change(table_name: str, cart_id: str, delta: int, counted: int,
                  expires_at: int | None = None) -> Item:
    """A transaction's Update of the header by `delta` lines; `counted` stands in for a
    header DynamoDB has not got. A positive delta is refused past MAX_LINES."""
    names = {"#c": "lineCount"}
    values: Item = {":delta": n(delta), ":counted": n(counted), ":one": n(1)}
    update = "SET #c = if_not_exists(#c, :counted) + :delta"
    if expires_at is not None:
        update += ", expiresAt = :hexp"
        values[":hexp"] = n(header_expiry(expires_at))
    action: Item = {
        "TableName": table_name,
        "Key": key(table.cart_pk(cart_id), table.LINES_SK),
        "UpdateExpression": update + " ADD rev :one",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    if delta > 0:
        action["ConditionExpression"] = "attribute_not_exists(#c) OR #c <= :room"
        values[":room"] = n(MAX_LINES - delta)
        values[":delta"] = n(delta)
    return {"Update": action}


def _live_line(now_epoch: int) -> Item:
    return {"ConditionExpression": "attribute_exists(pk) AND expiresAt > :epoch",
            "ExpressionAttributeValues": {":epoch": n(now_epoch)}}


class DynamoCarts(CartSummaries):
    """Cart lines, their header and summaries in the single table."""

    def __init__(self, client: Any, table_name: str,
                 keys: DynamoIdempotencyKeys | None = None) -> None:
        self._client = client
        self._table = table_name
        self._keys = keys or DynamoIdempotencyKeys(client, table_name)

    @staticmethod
    def _line_key(cart_id: str, product_id: str) -> Item:
        return key(table.cart_pk(cart_id), table.line_sk(product_id))

    @staticmethod
    def _header_key(cart_id: str) -> Item:
        return key(table.cart_pk(cart_id), table.LINES_SK)

    def _transact(self, actions: list[Item], once: IdempotentRequest) -> None:
        """The write; for an unkeyed request, a refusal or a conflict after botocore
        re-sent it is a 503: an earlier attempt may still land, so no new write (it
        would carry a new token) may follow, and no 409 is definite."""
        try:
            retry.transact(self._client, actions)
        except (errors.ConditionFailed, errors.StoreContended) as failed:
            if once.minted and errors.resent(failed):
                raise StoreUnavailable("an earlier attempt of this write may still land") \
                    from failed
            raise

    def _read_line_item(self, cart_id: str, product_id: str) -> Item | None:
        with errors.translated():
            return self._client.get_item(  # type: ignore[no-any-return]
                TableName=self._table, Key=self._line_key(cart_id, product_id),
                ConsistentRead=True).get("Item")

    def _read_line(self, cart_id: str, product_id: str) -> CartLine | None:
        item = self._read_line_item(cart_id, product_id)
        return line_from_item(item) if item else None

    def _record(self, cart_id: str, once: IdempotentRequest, response: Item | None,
                now: str, now_epoch: int) -> list[Item]:
        """The record's Put, for a shopper's key only: an unkeyed write is made
        at most once by its transaction's ClientRequestToken (retry.transact)."""
        if once.minted:
            return []
        return [self._keys.put_action(cart_id, once, response, now, now_epoch)]

    # -- add ---------------------------------------------------------------------

    def add_line(self, cart_id: str, product: Product, quantity: int, now: str,
                 now_epoch: int, expires_at: int,
                 once: IdempotentRequest | None = None, new_cart: bool = False) -> CartLine:
        """Add quantity to the product's line, at most once for `once` (minted if None).

        A keyed retry of an applied add gets the line the first call made. A cart
        made for this request (`new_cart`) has no line to read and no header yet: its
        first attempt creates both, the header on the condition that it is absent.
        """
        once = once or idempotency.minted_request(
            "add_to_cart", {"productId": product.id, "quantity": quantity}, now_epoch)
        deadline = Deadline()
        as_read = True
        fresh = new_cart
        while True:
            try:
                if fresh:
                    fresh = False  # once: if the cart is not new after all, as any other
                    return self._create(cart_id, product, quantity, now, now_epoch,
                                        expires_at, once, fresh=True)
                return self._add(cart_id, product, quantity, now, now_epoch, expires_at, once,
                                 as_read)
            except _Moved:
                as_read = False  # no pause: the next attempt does not depend on a read
            except (errors.StoreContended, _Raced):
                deadline.pause("the line kept changing")
            except (QuantityLimitExceeded, NotEnoughStock, TooManyLines):
                line = self.refused(cart_id, product, quantity, once, now, now_epoch)
                if line is not None:
                    return line
                raise

    def refused(self, cart_id: str, product: Product, quantity: int, once: IdempotentRequest,
                now: str, now_epoch: int) -> CartLine | None:
        """A keyed add about to be refused fences its key first (store/keys.py), so the
        409 is definite; None then. The line, when an earlier try applied meanwhile."""
        if once.minted:
            return None
        answer = self._keys.fence(cart_id, once, now, now_epoch, int(time.time() * 1000))
        return None if answer is None else self._answered(cart_id, product, quantity, answer)

    add_line_once = add_line  # the keyed and the unkeyed add are one write now

    def _answered(self, cart_id: str, product: Product, quantity: int,
                  answer: Item) -> CartLine:
        """The line for a request that applied before (a keyed retry)."""
        if answer is not APPLIED and answer:
            return line_from_item(answer)
        line = self._read_line(cart_id, product.id)
        # Gone since (a checkout took it): what this request added is all we know.
        return line or CartLine(product.id, product.name, product.price_cents, quantity)

    def _add(self, cart_id: str, product: Product, quantity: int, now: str,
             now_epoch: int, expires_at: int, once: IdempotentRequest,
             as_read: bool = True) -> CartLine:
        """Read the line (consistently), then make the one write its state calls for:
        a live line's update, or a new line counted in the header. The read only
        picks the write; the write's condition is what DynamoDB holds it to.

        A keyed add to a live line first adds to the quantity it read (`as_read`), so
        its record holds its answer in the same transaction; if the line moved since,
        it adds on top of whatever is there, then reads the line and writes the answer
        to its record: one retry at most, however many adds race on the line."""
        old = self._read_line_item(cart_id, product.id)
        if old is None or not is_live(expires(old), now_epoch):
            return self._create(cart_id, product, quantity, now, now_epoch, expires_at, once)
        condition = "attribute_exists(#q) AND expiresAt > :epoch AND #q <= :room"
        values: Item = {
            ":q": n(quantity), ":name": s(product.name),
            ":price": n(product.price_cents), ":now": s(now),
            ":exp": n(expires_at), ":epoch": n(now_epoch),
            # The line's new total within 99 and the stock on hand.
            ":room": n(min(headroom(quantity), product.stock - quantity)),
        }
        after = None
        if as_read and not once.minted:
            # A keyed add's record holds its answer, so the line it adds to must be the
            # one read: then the answer is known before the write and lands with it.
            after = CartLine(product.id, product.name, product.price_cents,
                             integer(old, "quantity") + quantity, now, expires_at)
            condition += " AND #q = :read"
            values[":read"] = old["quantity"]
        record = self._record(cart_id, once, None if after is None else line_to_map(after),
                              now, now_epoch)
        try:
            self._transact([*record, {"Update": {
                "TableName": self._table,
                "Key": self._line_key(cart_id, product.id),
                "UpdateExpression": (
                    "SET #q = #q + :q, #n = :name, unitPriceCents = :price, "
                    "updatedAt = :now, expiresAt = :exp"),
                # Unkeyed, not "as read": adds racing on one line all apply, none retries.
                "ConditionExpression": condition,
                "ExpressionAttributeNames": _LINE_FIELDS,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }}], once)
        except errors.ConditionFailed as failed:
            if record:
                answer = self._keys.replayed(failed, 0, cart_id, once, now_epoch)
                if answer is not None:
                    return self._answered(cart_id, product, quantity, answer)
            old = failed.item_at(len(record))
            if old is not None and is_live(expires(old), now_epoch):
                if integer(old, "quantity") > headroom(quantity):
                    raise QuantityLimitExceeded(integer(old, "quantity")) from failed
                if integer(old, "quantity") + quantity > product.stock:
                    raise NotEnoughStock(product, integer(old, "quantity") + quantity) \
                        from failed
                if after is not None:
                    raise _Moved from failed
            raise _Raced from failed  # the line went since it was read: read again
        if after is not None:
            return after
        line = self._read_line(cart_id, product.id)
        if line is None:  # a checkout took it since
            line = CartLine(product.id, product.name, product.price_cents, quantity)
        self._keys.answer(cart_id, once, line_to_map(line))
        return line

    def _create(self, cart_id: str, product: Product, quantity: int, now: str,
                now_epoch: int, expires_at: int, once: IdempotentRequest,
                counted: bool = False, fresh: bool = False) -> CartLine:
        """Create the line and count it in the header, in one transaction; a header that
        cannot be trusted is made from a count first (`counted`: done already). A new
        cart's (`fresh`) header is Put, counting this line, on the condition that the
        cart has none."""
        line = CartLine(product.id, product.name, product.price_cents, quantity, now,
                        expires_at)
        item = {**self._line_key(cart_id, product.id), **line_to_map(line)["M"],
                "updatedAt": s(now), table.TTL_ATTRIBUTE: n(expires_at)}
        record = self._record(cart_id, once, line_to_map(line), now, now_epoch)
        header_at = len(record)
        header: Item = {"Update": {
            "TableName": self._table,
            "Key": self._header_key(cart_id),
            "UpdateExpression": "SET expiresAt = :hexp ADD lineCount :one, rev :one",
            "ConditionExpression": (
                "attribute_exists(lineCount) AND expiresAt > :epoch AND lineCount < :max"),
            "ExpressionAttributeValues": {
                ":hexp": n(header_expiry(expires_at)), ":one": n(1),
                ":epoch": n(now_epoch), ":max": n(MAX_LINES),
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}
        if fresh:
            header = {"Put": {
                "TableName": self._table,
                "Item": {**self._header_key(cart_id), "lineCount": n(1), "rev": n(1),
                         "expiresAt": n(header_expiry(expires_at))},
                "ConditionExpression": "attribute_not_exists(pk)",
            }}
        try:
            self._transact([
                *record,
                header,
                # DynamoDB deletes expired lines late: an expired one is free to replace.
                {"Put": {
                    "TableName": self._table, "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk) OR expiresAt <= :epoch",
                    "ExpressionAttributeValues": {":epoch": n(now_epoch)},
                }},
            ], once)
        except errors.ConditionFailed as failed:
            if record:
                answer = self._keys.replayed(failed, 0, cart_id, once, now_epoch)
                if answer is not None:
                    return self._answered(cart_id, product, quantity, answer)
            if failed.failed(header_at + 1) or fresh:
                # The line was created meanwhile, or the cart is not new: as any other.
                raise _Raced from failed
            if failed.failed(header_at) and not counted:
                try:
                    self._make_room(cart_id, failed.item_at(header_at), now_epoch, expires_at)
                except TooManyLines:
                        raise
                # Not contention: the header is right now, go again at once.
                return self._create(cart_id, product, quantity, now, now_epoch, expires_at,
                                    once, counted=True)
            raise _Raced from failed  # the header moved
        return line

    def _make_room(self, cart_id: str, header: Item | None, now_epoch: int,
                   expires_at: int) -> None:
        """Make the header count the live lines when it cannot be trusted; TooManyLines
        when the cart is full. Returns when the add is worth another attempt."""
        if header is not None and is_live(expires(header), now_epoch) \
                and integer(header, "lineCount") < MAX_LINES:
            return  # it changed since: try again
        counted = self.count_lines(cart_id, now_epoch)
        if counted >= MAX_LINES:
            raise TooManyLines(cart_id)
        try:
            with errors.translated():
                if header is None or not is_live(expires(header), now_epoch):
                    # Every line made since the count would have needed a live header.
                    self._client.put_item(
                        TableName=self._table,
                        Item={**self._header_key(cart_id), "lineCount": n(counted),
                              "rev": n(1), "expiresAt": n(header_expiry(expires_at))},
                        ConditionExpression="attribute_not_exists(pk) OR expiresAt <= :epoch",
                        ExpressionAttributeValues={":epoch": n(now_epoch)})
                else:
                    # Lines removed or expired since they were counted: correct the
                    # count, unless a line was made since the header was read (rev
                    # moved). A removal since leaves the count high, never low.
                    self._client.update_item(
                        TableName=self._table, Key=self._header_key(cart_id),
                        UpdateExpression="SET lineCount = :counted ADD rev :one",
                        ConditionExpression="rev = :rev",
                        ExpressionAttributeValues={":counted": n(counted), ":one": n(1),
                                                   ":rev": header["rev"]})
        except errors.ConditionFailed:
            pass  # someone else got there first: the next attempt reads theirs

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

    # -- set and remove -------------------------------------------------------------

    def set_quantity(self, cart_id: str, product_id: str, quantity: int, now: str,
                     now_epoch: int, expires_at: int,
                     once: IdempotentRequest | None = None) -> CartLine:
        """Set a live line's quantity; NotInCart when there is none."""
        once = once or idempotency.minted_request(
            "set_quantity", {"productId": product_id, "quantity": quantity}, now_epoch)
        record = self._record(cart_id, once, None, now, now_epoch)
        deadline = Deadline()
        while True:
            try:
                self._transact([*record, {"Update": {
                    "TableName": self._table,
                    "Key": self._line_key(cart_id, product_id),
                    "UpdateExpression": "SET #q = :q, updatedAt = :now, expiresAt = :exp",
                    "ConditionExpression": "attribute_exists(#q) AND expiresAt > :epoch",
                    "ExpressionAttributeNames": {"#q": "quantity"},
                    "ExpressionAttributeValues": {
                        ":q": n(quantity), ":now": s(now), ":exp": n(expires_at),
                        ":epoch": n(now_epoch),
                    },
                }}], once)
            except errors.StoreContended:
                deadline.pause()
                continue
            except errors.ConditionFailed as failed:
                if not record or self._keys.replayed(failed, 0, cart_id, once,
                                                     now_epoch) is None:
                        raise NotInCart(product_id) from failed
            break
        line = self._read_line(cart_id, product_id)
        if line is None:  # removed since: the set applied, and this is all it knows
            return CartLine(product_id, "", 0, quantity, now, expires_at)
        return line

    def remove_line(self, cart_id: str, product_id: str, now: str = "",
                    now_epoch: int = 0, once: IdempotentRequest | None = None) -> None:
        """Delete the live line; no live line is not an error. The header is not
        counted down: its count may only run high, and an add that finds it at the cap
        counts the live lines before refusing (`_make_room`)."""
        once = once or idempotency.minted_request(
            "remove_from_cart", {"productId": product_id}, now_epoch)
        record = self._record(cart_id, once, None, now, now_epoch)
        deadline = Deadline()
        while True:
            try:
                self._transact([*record, {"Delete": {
                    "TableName": self._table, "Key": self._line_key(cart_id, product_id),
                    **_live_line(now_epoch)}}], once)
            except errors.StoreContended:
                deadline.pause()
                continue
            except errors.ConditionFailed as failed:
                # The record: applied before. The line: none live, nothing to do.
                if record:
                    self._keys.replayed(failed, 0, cart_id, once, now_epoch)
            return

    # -- reads ---------------------------------------------------------------------

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
