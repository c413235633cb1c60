"""Request records: what makes every cart write land at most once.

    CART#<cartId>   IDEMPOTENCY#<key>   a shopper's Idempotency-Key: the request's
                                        hash and, once known, its answer (TTL 24 h)
    CART#<cartId>   REQUEST#<token>     a token the API minted for one request
                                        without a key (TTL 1 h)

A record is written with the change it guards: its Put (attribute_not_exists)
is one action of that transaction (carts.py, orders.py). A retry with the same
key (or a write that landed late) is cancelled by the record it finds, so it
applies nothing, and the caller answers from the record (or reads the line).

A refusal (409) must be as definite: when a keyed request is refused, an
earlier try with the same key may still be in flight and land later. So the
refusal fences the key first: a record with `refusedAt` (ms) and no answer
(`fence`). Every try sent before it is cancelled by it, whenever it lands; a
try sent after it (`startedMs` later) may replace it and apply, once.

Requests per operation (what bench/ measures):
    put_action    none of its own (one action of the caller's transaction)
    answer        1 UpdateItem (a keyed add remembers the line it made)
    fence         1 PutItem (a keyed request refused: the key's tries before it never land)
    remembered    1 GetItem (consistent)
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.domain import StoreUnavailable, is_live
from chalicelib.idempotency import IdempotentRequest, KeyReused
from chalicelib.store import errors
from chalicelib.store.codec import Item, expires, key, n, s, string

# A record's key is free to take: no record, an expired one (DynamoDB deletes them
# late), or a refusal's fence set before the try that takes it started.
_FREE = "attribute_not_exists(pk) OR expiresAt <= :epoch OR refusedAt < :started"

# What `replayed` returns for a request that applied and remembers no answer
# (a minted token, or a keyed add whose answer is not written yet).
APPLIED: Item = {}


def refused(record: Item | None) -> bool:
    """A fence a refusal left: nothing applied under the key."""
    return bool(record and "refusedAt" in record)


def replay(record: Item, once: IdempotentRequest) -> Item:
    """The response a record remembers (APPLIED if none), if made for this very request."""
    if refused(record):
        # A later try of this key was refused meanwhile and fenced this one off.
        raise StoreUnavailable("a later try of this Idempotency-Key was answered first")
    if string(record, "requestHash") != once.request_hash:
        raise KeyReused(once.key)
    response = record.get("response")
    return response["M"] if response else APPLIED  # type: ignore[no-any-return]


class DynamoIdempotencyKeys:
    """Request records under the cart they belong to."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _key(self, cart_id: str, once: IdempotentRequest) -> Item:
        prefix = table.REQUEST_PREFIX if once.minted else table.IDEMPOTENCY_PREFIX
        return key(table.cart_pk(cart_id), prefix + once.key)

    def put_action(self, cart_id: str, once: IdempotentRequest, response: Item | None,
                   now: str, now_epoch: int) -> Item:
        """The transaction's Put of a record: it fails while a live record holds the key."""
        item: Item = {
            **self._key(cart_id, once),
            "requestHash": s(once.request_hash),
            "createdAt": s(now),
            table.TTL_ATTRIBUTE: n(once.expires_at),
        }
        if response is not None:
            item["response"] = response
        return {"Put": {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": _FREE,
            "ExpressionAttributeValues": {":epoch": n(now_epoch),
                                          ":started": n(once.started_ms)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }}

    def fence(self, cart_id: str, once: IdempotentRequest, now: str, now_epoch: int,
              now_ms: int) -> Item | None:
        """Before a keyed request is refused: no earlier try of its key may land after.

        None: fenced, the refusal is definite. Otherwise an earlier try applied
        meanwhile: its remembered response (APPLIED if none), to answer instead.
        """
        try:
            with errors.translated():
                self._client.put_item(
                    TableName=self._table,
                    Item={**self._key(cart_id, once), "requestHash": s(once.request_hash),
                          "createdAt": s(now), "refusedAt": n(now_ms),
                          table.TTL_ATTRIBUTE: n(once.expires_at)},
                    ConditionExpression=_FREE,  # an older fence gives way to this one
                    ExpressionAttributeValues={":epoch": n(now_epoch), ":started": n(now_ms)},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except errors.ConditionFailed as failed:
            if failed.item is None:
                return self.remembered(cart_id, once, now_epoch)
            return replay(failed.item, once)
        return None

    def answer(self, cart_id: str, once: IdempotentRequest, response: Item) -> None:
        """Remember the answer of a keyed request whose transaction could not hold it."""
        if once.minted:
            return  # only this request could ask again, and it is answering now
        with errors.translated():
            self._client.update_item(
                TableName=self._table, Key=self._key(cart_id, once),
                UpdateExpression="SET #r = if_not_exists(#r, :r)",
                ConditionExpression="requestHash = :h",
                ExpressionAttributeNames={"#r": "response"},
                ExpressionAttributeValues={":r": response, ":h": s(once.request_hash)},
            )

    def replayed(self, failed: errors.ConditionFailed, index: int, cart_id: str,
                 once: IdempotentRequest, now_epoch: int) -> Item | None:
        """When the record (action `index`) cancelled the transaction, the request
        applied before: its remembered response, or APPLIED. None when something
        else cancelled it. KeyReused when the key was used for another request."""
        if not failed.failed(index):
            return None
        record = failed.item_at(index)
        if record is None:  # older SDKs and emulators may leave the old item out
            return self.remembered(cart_id, once, now_epoch)
        return replay(record, once)

    def remembered(self, cart_id: str, once: IdempotentRequest,
                   now_epoch: int) -> Item | None:
        """The response a live record remembers (APPLIED if none); None when there is none."""
        with errors.translated():
            record = self._client.get_item(
                TableName=self._table, Key=self._key(cart_id, once), ConsistentRead=True,
            ).get("Item")
        if record is None or not is_live(expires(record), now_epoch) or refused(record):
            return None
        return replay(record, once)
