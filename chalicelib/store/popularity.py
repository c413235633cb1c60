"""Popularity: how many carts hold each product, kept by the stream.

    CART#<cartId>      HOLDER#<productId>   does this cart hold the product; the
                                            stream sequence last applied (TTL once let go)
    POPULARITY#<n>     PRODUCT#<productId>  one shard of the product's `inCarts` count

A product's count is the sum of its COUNTER_SHARDS shard items. No partition
key takes every write: each holder mark lives under its cart, and each
counter update goes to a shard picked by hashing the first cart it carries, so
updates spread evenly and two stream shards that update one product at once
(different carts) rarely touch the same item; when they do (DynamoDB cancels
one transaction with TransactionConflict) the loser moves to the next shard,
at most COUNTER_ATTEMPTS times, instead of failing its batch. The choice is a
hash, not a random draw, so a replayed batch makes the same requests.

Requests per batch (what bench/ measures):
    apply_holdings  1 BatchGetItem of the batch's holder marks (consistent, <= 100 keys)
                    + 1 TransactWriteItems per product whose holders changed
                      (its holder marks + one counter shard ADD of the net delta)
    counts          COUNTER_SHARDS Queries (eventually consistent, keys and counts only)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from chalicelib import table
from chalicelib.domain import StoreUnavailable
from chalicelib.store import errors
from chalicelib.store.codec import Item, key, n, query_all, s, string

COUNTER_SHARDS = 16
COUNTER_ATTEMPTS = 4
# A transaction holds at most 100 actions: one counter and 99 holder marks.
_MARKS_PER_TRANSACTION = 99
_BATCH_GET_KEYS = 100
# Stream sequence numbers are up to 40 digits, past a number's 38: stored as text,
# zero-padded so that text order is number order.
SEQUENCE_WIDTH = 40


def sequence_text(sequence: int) -> str:
    return str(sequence).zfill(SEQUENCE_WIDTH)


@dataclass(frozen=True)
class Holding:
    """Whether a cart holds a product after the stream record `sequence`."""

    cart_id: str
    product_id: str
    holds: bool
    sequence: int


class DynamoPopularity:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _mark_key(cart_id: str, product_id: str) -> Item:
        return key(table.cart_pk(cart_id), table.HOLDER_PREFIX + product_id)

    def counts(self) -> dict[str, int]:
        """Each product's `inCarts`, summed over its counter shards."""
        totals: dict[str, int] = {}
        with errors.translated():
            for shard in range(COUNTER_SHARDS):
                for item in query_all(
                    self._client,
                    TableName=self._table,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues={":pk": s(table.counter_pk(shard))},
                    ProjectionExpression="sk, inCarts",
                ):
                    product_id = string(item, "sk").removeprefix(table.PRODUCT_PREFIX)
                    totals[product_id] = totals.get(product_id, 0) + int(item["inCarts"]["N"])
        return totals

    def apply_holdings(self, holdings: Iterable[Holding], hold_expires_at: int) -> list[str]:
        """Move holder marks to the given states and the counts with them, exactly once.

        Give the last holding per (cart, product) of a batch: a mark already at
        that sequence or past it is left alone, so a replayed batch or a
        duplicated record changes nothing. Returns the products that could
        not be updated (StoreUnavailable for each is logged by the caller);
        their holdings must be delivered again.
        """
        latest: dict[tuple[str, str], Holding] = {}
        for holding in holdings:
            pair = (holding.cart_id, holding.product_id)
            if pair not in latest or latest[pair].sequence < holding.sequence:
                latest[pair] = holding
        by_product: dict[str, list[Holding]] = {}
        for holding in latest.values():
            by_product.setdefault(holding.product_id, []).append(holding)
        marks = self._read_marks(list(latest))
        failed: list[str] = []
        for product_id, product_holdings in by_product.items():
            for start in range(0, len(product_holdings), _MARKS_PER_TRANSACTION):
                chunk = product_holdings[start:start + _MARKS_PER_TRANSACTION]
                try:
                    self._apply(product_id, chunk, marks, hold_expires_at)
                except StoreUnavailable:
                    failed.append(product_id)
                    break
        return failed

    def _read_marks(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        found: dict[tuple[str, str], Item] = {}
        for start in range(0, len(pairs), _BATCH_GET_KEYS):
            request: dict[str, Any] = {self._table: {
                "Keys": [self._mark_key(*pair) for pair in pairs[start:start + _BATCH_GET_KEYS]],
                "ConsistentRead": True,
            }}
            while request:
                with errors.translated():
                    response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    cart_id = string(item, "pk").removeprefix(table.CART_PREFIX)
                    product_id = string(item, "sk").removeprefix(table.HOLDER_PREFIX)
                    found[(cart_id, product_id)] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    def _apply(self, product_id: str, holdings: list[Holding],
               marks: dict[tuple[str, str], Item], hold_expires_at: int) -> None:
        """One transaction: the marks that move and one counter shard's net delta.

        Each mark is written on the condition that it is as read, so a
        concurrent replay of the same records cancels the transaction; it
        is then read again. A mark whose state is unchanged still takes the
        newer sequence, so an older record replayed later cannot flip it.
        """
        first = f"{holdings[0].cart_id}/{product_id}".encode()
        start = int.from_bytes(hashlib.sha256(first).digest()[:4], "big")
        for attempt in range(COUNTER_ATTEMPTS):
            actions: list[Item] = []
            delta = 0
            for holding in holdings:
                old = marks.get((holding.cart_id, holding.product_id))
                if old is not None and string(old, "seq") >= sequence_text(holding.sequence):
                    continue  # already applied, or a newer record was
                held = bool(old is not None and old.get("holds", {}).get("BOOL"))
                delta += int(holding.holds) - int(held)
                actions.append(self._mark_action(holding, old, hold_expires_at))
            if not actions:
                return
            if delta:
                shard = (start + attempt) % COUNTER_SHARDS
                actions.append({"Update": {
                    "TableName": self._table,
                    "Key": key(table.counter_pk(shard), table.product_sk(product_id)),
                    "UpdateExpression": "ADD inCarts :delta",
                    "ExpressionAttributeValues": {":delta": n(delta)},
                }})
            try:
                with errors.translated():
                    self._client.transact_write_items(TransactItems=actions)
                return
            except errors.ConditionFailed:
                # A replay of these records moved a mark meanwhile: read them again.
                pairs = [(h.cart_id, h.product_id) for h in holdings]
                marks = {**marks, **self._read_marks(pairs)}
            except StoreUnavailable:
                # TransactionConflict on the counter (another stream shard's batch
                # holds it) or a throttled shard: the next attempt picks another.
                continue
        raise StoreUnavailable(f"popularity of {product_id}: {COUNTER_ATTEMPTS} attempts")

    def _mark_action(self, holding: Holding, old: Item | None, hold_expires_at: int) -> Item:
        values: dict[str, Any] = {":h": {"BOOL": holding.holds},
                                  ":seq": s(sequence_text(holding.sequence))}
        # A mark that holds lives as long as the line does, so it never expires;
        # one that let go is kept a while only to recognise replays.
        if holding.holds:
            update = "SET holds = :h, seq = :seq REMOVE expiresAt"
        else:
            update = "SET holds = :h, seq = :seq, expiresAt = :exp"
            values[":exp"] = n(hold_expires_at)
        if old is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "seq = :was"
            values[":was"] = old["seq"]
        return {"Update": {
            "TableName": self._table,
            "Key": self._mark_key(holding.cart_id, holding.product_id),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }}
