"""Popularity: how many carts hold each product, kept by the stream.

    CART#<cartId>      SUMMARY              `holds`: the products counted for the cart
                                            (store/carts.py; written with the counts)
    CART#<cartId>      HOLDER#<productId>   migration only: a cart's holdings as counted
                                            before summaries held them
    POPULARITY#<n>     PRODUCT#<productId>  one shard of the product's `inCarts` count
    COUNTS             SNAPSHOT             every product's count, summed from the shards
    COUNTS             LEASE                when the last snapshot computation started

A product's count is the sum of its COUNTER_SHARDS shard items, and equals the
number of cart summaries whose `holds` name it: `holds` changes only in the
transaction that ADDs the difference (`recount_carts`). The stream writes the
carts of a batch whose holdings changed together, with one ADD per product of
their net change (`net_deltas`: a cart taking a product up and another letting
it go write nothing), in as few transactions as fit (`pack`): a batch of a
hundred carts adding one product is one counter write, not a hundred.

No partition key takes every write: each counter update goes to a shard picked
by hashing the product and the transaction's seed (the smallest stream
sequence number of its carts), so one batch after another spreads a hot
product over the shards, and two stream shards that update one product at
once rarely touch the same item; when they do (DynamoDB cancels the
transaction with TransactionConflict) the next attempt moves every ADD to the
next shard, at most COUNTER_ATTEMPTS times, instead of failing its batch. The
choice is a hash, not a random draw, so a replayed batch makes the same
requests.

Requests (what bench/ measures):
    recount_carts   1 TransactWriteItems: each cart's summary Put [+ the holder marks it
                    replaces] + 1 counter ADD per product of the carts' net change; sent
                    again without the carts whose summary moved (cancellation reasons)
    recount         recount_carts of one cart (migration; its shards picked by the cart)
    holder_marks    1 Query (consistent) of a cart's HOLDER# marks (migration)
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
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib import table
from chalicelib.domain import StoreUnavailable
from chalicelib.store import errors
from chalicelib.store.codec import (
    TRANSACTION_ACTIONS,
    TRANSACTION_BYTES,
    Item,
    key,
    n,
    query_all,
    s,
    string,
)

COUNTER_SHARDS = 16
COUNTER_ATTEMPTS = 4
# An ADD on a counter shard, as `pack` counts it (its JSON is some 200 bytes).
COUNTER_BYTES = 400
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
class Recount:
    """One cart's counted write: its summary's Put (store/carts.py `summary_put`,
    conditioned on the version read), +1 / -1 per product whose holding changed, and
    the holder marks it replaces (migration)."""

    cart_id: str
    put: Item
    deltas: Mapping[str, int]
    marks: tuple[Item, ...] = ()
    # Picks the counter shards of a transaction holding it (the smallest seed there):
    # the same for a replayed batch, different from one batch to the next.
    seed: str = ""

    @property
    def actions(self) -> int:
        return 1 + len(self.marks)


def net_deltas(recounts: Iterable[Recount]) -> dict[str, int]:
    """Each product's change over the carts, the ones that cancel out left out."""
    net: dict[str, int] = {}
    for recount in recounts:
        for product_id, delta in recount.deltas.items():
            net[product_id] = net.get(product_id, 0) + delta
    return {product_id: delta for product_id, delta in net.items() if delta}


def _size(item: Item) -> int:
    return len(json.dumps(item, separators=(",", ":")))


def pack(recounts: Sequence[Recount], actions: int = TRANSACTION_ACTIONS,
         size: int = TRANSACTION_BYTES) -> list[list[Recount]]:
    """The carts in as few transactions as fit, in order: each within `actions`
    actions (summary Puts, mark deletions, one ADD per product of the net change)
    and about `size` bytes (each action's JSON, more than DynamoDB counts)."""
    packs: list[list[Recount]] = []
    current: list[Recount] = []
    used = 0  # actions and bytes of the carts' own writes in `current`
    used_bytes = 0
    for recount in recounts:
        mine = _size(recount.put) + sum(_size(mark) for mark in recount.marks)
        counters = len(net_deltas([*current, recount]))
        if current and (used + recount.actions + counters > actions
                        or used_bytes + mine + COUNTER_BYTES * counters > size):
            packs.append(current)
            current, used, used_bytes = [], 0, 0
        current.append(recount)
        used += recount.actions
        used_bytes += mine
    if current:
        packs.append(current)
    return packs


class DynamoPopularity:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

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

    def holder_marks(self, cart_id: str) -> list[Item]:
        """The cart's holder marks that hold (one consistent Query): what the counts carry
        for a cart whose summary predates `holds` (migration only; none are written now)."""
        with errors.translated():
            items = query_all(
                self._client,
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :holder)",
                ExpressionAttributeValues={":pk": s(table.cart_pk(cart_id)),
                                           ":holder": s(table.HOLDER_PREFIX)},
                ConsistentRead=True,
            )
        return [item for item in items if item.get("holds", {}).get("BOOL")]

    def recount(self, cart_id: str, summary_put: Item, deltas: Mapping[str, int],
                marks: Sequence[Item] = ()) -> bool:
        """One cart's `recount_carts`, its shards picked by the cart; False if its
        summary or a mark moved since it was read (nothing applied: read again)."""
        return not self.recount_carts([Recount(cart_id, summary_put, deltas, tuple(marks),
                                               seed=cart_id)])

    def recount_carts(self, recounts: Sequence[Recount]) -> frozenset[str]:
        """One transaction: every cart's summary Put (conditioned on the version read)
        and holder-mark deletions (each conditioned on being as read), and ONE counter
        shard ADD per product of the carts' net change (a +1 and a -1 cancel).

        Answers the carts whose summary or a mark moved since it was read: they are
        left out (DynamoDB names them in the cancellation reasons) and the rest sent
        again, so the rest land and the moved carts are read again by the caller. A
        counter shard held by another transaction (TransactionConflict) or throttled:
        the next attempt moves every ADD to the next shard, at most COUNTER_ATTEMPTS
        times, then StoreUnavailable (nothing applied).
        """
        seed = min((recount.seed for recount in recounts), default="")
        pending = list(recounts)
        moved: set[str] = set()
        attempt = 0
        while pending:
            actions, owners = self._actions(pending, seed, attempt)
            if len(actions) > TRANSACTION_ACTIONS:
                raise ValueError(f"{len(pending)} carts need {len(actions)} actions")
            try:
                with errors.translated():
                    self._client.transact_write_items(TransactItems=actions)
                break
            except errors.ConditionFailed as exc:
                hit = {owner for index, owner in enumerate(owners)
                       if owner is not None and exc.failed(index)}
                # No reason given (never seen): every cart is read again.
                hit = hit or {recount.cart_id for recount in pending}
                moved |= hit
                pending = [recount for recount in pending if recount.cart_id not in hit]
            except StoreUnavailable:
                attempt += 1
                if attempt >= COUNTER_ATTEMPTS:
                    carts = ", ".join(sorted(recount.cart_id for recount in pending))
                    raise StoreUnavailable(
                        f"counts of carts {carts}: {COUNTER_ATTEMPTS} attempts") from None
        return frozenset(moved)

    def _actions(self, recounts: Sequence[Recount], seed: str,
                 attempt: int) -> tuple[list[Item], list[str | None]]:
        """The transaction's actions and, for each, the cart it writes (None: a counter)."""
        actions: list[Item] = []
        owners: list[str | None] = []
        for recount in recounts:
            actions.append({"Put": recount.put})
            actions += [self._mark_delete(mark) for mark in recount.marks]
            owners += [recount.cart_id] * (1 + len(recount.marks))
        for product_id, delta in sorted(net_deltas(recounts).items()):
            actions.append(self._counter_add(seed, product_id, delta, attempt))
            owners.append(None)
        return actions, owners

    def _counter_add(self, seed: str, product_id: str, delta: int, attempt: int) -> Item:
        first = f"{seed}/{product_id}".encode()
        start = int.from_bytes(hashlib.sha256(first).digest()[:4], "big")
        shard = (start + attempt) % COUNTER_SHARDS
        return {"Update": {
            "TableName": self._table,
            "Key": key(table.counter_pk(shard), table.product_sk(product_id)),
            "UpdateExpression": "ADD inCarts :delta",
            "ExpressionAttributeValues": {":delta": n(delta)},
        }}

    def _mark_delete(self, mark: Item) -> Item:
        return {"Delete": {
            "TableName": self._table,
            "Key": {"pk": mark["pk"], "sk": mark["sk"]},
            "ConditionExpression": "seq = :was",
            "ExpressionAttributeValues": {":was": mark["seq"]},
        }}
