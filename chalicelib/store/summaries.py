"""A cart's summary: what cart-status reads, kept by the stream function.

    CART#<cartId>   SUMMARY   itemCount, subtotalCents, updatedAt; `seq` (the stream
                              position it was built to); `holds` (the products it
                              counted in the popularity counters, store/popularity.py);
                              `cartExpiresAt`; a TTL only once it holds none

Every write of a summary is conditioned on the version the stream read
(`summary_condition`), so the holdings it counted change once, by whoever
moved it from what it read (followups.py).

Requests (what bench/ measures):
    read_summary, get_summary   1 GetItem (consistent)
    put_summary                 1 PutItem (conditional on the version read); none when
                                the summary would not change
    summary_put                 none of its own (the Put for a counted transaction)
"""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.domain import CartSummary, is_live
from chalicelib.store import errors
from chalicelib.store.codec import Item, integer, key, n, s, string

# The products a summary counted for its cart (a map product -> true); a summary without
# it was written before summaries counted, when HOLDER# marks did (store/popularity.py).
HOLDS = "holds"
# Until when cart-status shows the summary; its TTL (expiresAt) only once it counts nothing.
SUMMARY_EXPIRY = "cartExpiresAt"


def summary_expiry(item: Item) -> int | None:
    """When the summary stops showing: the earlier of its cart's expiry and its TTL."""
    found = [int(item[name]["N"]) for name in (SUMMARY_EXPIRY, table.TTL_ATTRIBUTE)
             if name in item]
    return min(found, default=None)


def summary_holds(item: Item | None) -> frozenset[str] | None:
    """The products the summary counted; None if it predates counting (or is absent)."""
    if item is None or HOLDS not in item:
        return None
    return frozenset(item[HOLDS].get("M", {}))


def summary_condition(seen: Item | None) -> Item:
    """A write's condition that the summary is exactly the version `seen` (its `seq`
    only ever grows; a summary migrated from marks keeps its seq and gains `holds`)."""
    if seen is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    values: Item = {}
    if "seq" in seen:
        condition = "seq = :was"
        values[":was"] = seen["seq"]
    else:
        condition = "attribute_not_exists(seq)"
    if HOLDS not in seen:
        condition += " AND attribute_not_exists(holds)"
    result: Item = {"ConditionExpression": condition}
    if values:
        result["ExpressionAttributeValues"] = values
    return result


def _without_seq(item: Item) -> Item:
    return {name: value for name, value in item.items() if name != "seq"}


class CartSummaries:
    """The summary item of each cart (DynamoCarts holds the client and table)."""

    _client: Any
    _table: str

    def read_summary(self, cart_id: str) -> Item | None:
        """The summary item as stored (one consistent GetItem), for the stream's rewrite."""
        with errors.translated():
            item: Item | None = self._client.get_item(
                TableName=self._table,
                Key=key(table.cart_pk(cart_id), table.SUMMARY_SK),
                ConsistentRead=True,
            ).get("Item")
        return item

    def get_summary(self, cart_id: str, now_epoch: int) -> CartSummary | None:
        item = self.read_summary(cart_id)
        if item is None or not is_live(summary_expiry(item), now_epoch):
            return None
        return CartSummary(
            item_count=integer(item, "itemCount"),
            subtotal_cents=integer(item, "subtotalCents"),
            updated_at=string(item, "updatedAt") or None,
        )

    def summary_put(self, cart_id: str, summary: CartSummary, expires_at: int,
                    sequence: str, holds: frozenset[str], seen: Item | None) -> Item:
        """The Put of the summary built from the stream up to `sequence` (zero-padded
        text), holding the products `holds` counted for the cart; on the condition that
        the stored summary is still `seen` (None: there is none), so the holds counted
        change once, by whoever moved the summary from what it read.

        A summary that counts products has no TTL (DynamoDB must not delete holdings
        the counts still carry); `cartExpiresAt` says until when cart-status shows it.
        """
        item: Item = {
            **key(table.cart_pk(cart_id), table.SUMMARY_SK),
            "itemCount": n(summary.item_count),
            "subtotalCents": n(summary.subtotal_cents),
            SUMMARY_EXPIRY: n(expires_at),
            "seq": s(sequence),
            HOLDS: {"M": {product_id: {"BOOL": True} for product_id in sorted(holds)}},
        }
        if not holds:
            item[table.TTL_ATTRIBUTE] = n(expires_at)
        if summary.updated_at:
            item["updatedAt"] = s(summary.updated_at)
        put: Item = {"TableName": self._table, "Item": item}
        put.update(summary_condition(seen))
        return put

    def put_summary(self, cart_id: str, summary: CartSummary, expires_at: int,
                    sequence: str = "", holds: frozenset[str] = frozenset(),
                    seen: Item | None = None) -> bool:
        """Write `summary_put` alone (the holds counted do not change); False if the
        summary moved since it was read. A summary that would not change is not
        written: its `seq` only says how far it was built, and the summary is built from
        the lines as they are, so a replay finds it unchanged again."""
        put = self.summary_put(cart_id, summary, expires_at, sequence, holds, seen)
        if seen is not None and _without_seq(put["Item"]) == _without_seq(seen):
            return True
        try:
            with errors.translated():
                self._client.put_item(**put)
        except errors.ConditionFailed:
            return False
        return True
