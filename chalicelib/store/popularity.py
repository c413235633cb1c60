"""Popularity: how many carts hold each product, kept by the stream.

    CART#<cartId>      HOLDER#<productId>   does this cart hold the product; the
                                            stream sequence last applied (TTL once let go)
    POPULARITY#<n>     PRODUCT#<productId>  one shard of the product's `inCarts` count
    COUNTS             SNAPSHOT             every product's count, summed from the shards
    COUNTS             LEASE                when the last snapshot computation started

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
    shared_counts   1 Query of COUNTS (eventually consistent: snapshot and lease);
                    when the snapshot is older than its lifetime and nobody is computing
                    it, 1 conditional UpdateItem (the lease), then `counts` and 1 PutItem

Reading the counts: a shop page wants them a second or two fresh, from every
warm container. Summing the shards costs each container COUNTER_SHARDS
Queries per refresh, so at scale the shards' partitions would carry every
container's reads. Instead the sum is kept as one snapshot item: each
container reads it (one small Query); the first one to find it older than
its lifetime takes the lease (a conditional write, so one wins), sums the
shards and writes the snapshot for all. The shards stay the only truth,
written by the stream exactly once; the snapshot is a copy of them a
moment old, never written onto a product or a shard.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
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
class CountsSnapshot:
    """The shared snapshot as read: counts, when they were summed, the lease."""

    counts: dict[str, int] = field(default_factory=dict)
    computed_ms: int | None = None  # epoch milliseconds the shards were summed at
    lease_ms: int | None = None  # when the last computation started

    def age(self, now: float) -> float:
        return math.inf if self.computed_ms is None else now - self.computed_ms / 1000

    def lease_free(self, now: float, lease_seconds: float) -> bool:
        """Nobody is computing: the last one finished, or it died over a lease ago."""
        return (self.lease_ms is None
                or (self.computed_ms is not None and self.lease_ms <= self.computed_ms)
                or now - self.lease_ms / 1000 > lease_seconds)


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

    def shared_counts(self, now: float, max_age: float, lease_seconds: float,
                      force: bool = False) -> dict[str, int]:
        """Every product's count, at most about `max_age` seconds older than the shards.

        `force` computes afresh if the lease can be taken, whatever the ages.
        A computation that fails (the store is busy) leaves the snapshot as
        it is and answers the one read.
        """
        snapshot = self.read_snapshot()
        if not force and snapshot.age(now) <= max_age:
            return snapshot.counts
        if not force and not snapshot.lease_free(now, lease_seconds):
            return snapshot.counts  # another container is summing the shards now
        started = int(now * 1000)
        try:
            if not self._take_lease(snapshot.lease_ms, started):
                return snapshot.counts
            counts = self.counts()
            self._put_snapshot(counts, started)
        except StoreUnavailable:
            return snapshot.counts
        return counts

    def read_snapshot(self) -> CountsSnapshot:
        with errors.translated():
            items = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(table.COUNTS_PK)},
            )
        by_sk = {string(item, "sk"): item for item in items}
        snapshot, lease = by_sk.get(table.SNAPSHOT_SK), by_sk.get(table.LEASE_SK)
        counts = {product_id: int(cell["N"]) for product_id, cell in
                  (snapshot or {}).get("counts", {}).get("M", {}).items()}
        return CountsSnapshot(
            counts,
            int(snapshot["computedAt"]["N"]) if snapshot else None,
            int(lease["takenAt"]["N"]) if lease else None,
        )

    def _take_lease(self, seen_ms: int | None, now_ms: int) -> bool:
        """True for the one container whose write moved the lease from what it read."""
        values: dict[str, Any] = {":now": n(now_ms)}
        if seen_ms is None:
            condition = "attribute_not_exists(takenAt)"
        else:
            condition = "takenAt = :seen"
            values[":seen"] = n(seen_ms)
        try:
            with errors.translated():
                self._client.update_item(
                    TableName=self._table,
                    Key=key(table.COUNTS_PK, table.LEASE_SK),
                    UpdateExpression="SET takenAt = :now",
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except errors.ConditionFailed:
            return False
        return True

    def _put_snapshot(self, counts: dict[str, int], computed_ms: int) -> None:
        """Never backwards: an older computation finishing late changes nothing."""
        try:
            with errors.translated():
                self._client.put_item(
                    TableName=self._table,
                    Item={**key(table.COUNTS_PK, table.SNAPSHOT_SK),
                          "computedAt": n(computed_ms),
                          # Zero counts are left out: the snapshot stays small.
                          "counts": {"M": {p: n(c) for p, c in counts.items() if c}}},
                    ConditionExpression="attribute_not_exists(computedAt) OR computedAt < :mine",
                    ExpressionAttributeValues={":mine": n(computed_ms)},
                )
        except errors.ConditionFailed:
            pass

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
