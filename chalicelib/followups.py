"""Stream follow-ups: what happens after a write lands in the table.

One stream function (app.process_stream) runs every follow-up on each batch.
Delivery is at least once, so each is idempotent, and each aggregates over
the batch instead of writing per record:

    cart_summary        per cart the batch touched: 1 GetItem of its summary + 1 Query of
                        its lines (consistent); then 1 PutItem of the summary if the
                        products it holds are those the summary counted (none if it would
                        not change). The carts whose holdings changed are written
                        together: as few TransactWriteItems as fit (store/popularity.py
                        `pack`), each holding their summaries (each conditional on being
                        as read) and ONE counter shard ADD per product of their net
                        change; a cart whose summary moved is read again and the rest
                        sent again, still merged
                        [+ 1 Query of its HOLDER# marks while a cart predates `holds`]
    order_confirmation  1 conditional UpdateItem per order placed

Order: Lambda delivers each stream shard's records in order, and with a
ParallelizationFactor above 1 it still keeps the records of one partition
key (one cart: its lines, orders and summary) in order within one batch at a
time. Every follow-up here is per cart or commutes across carts (a counter's
ADD), so per-key order is all they need.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib import table
from chalicelib.domain import CartSummary, StoreUnavailable, expiry_after, totals
from chalicelib.repository import DynamoCartRepository, line_from_item
from chalicelib.services import Clock, epoch_of, iso
from chalicelib.store.codec import TRANSACTION_ACTIONS, Item, string
from chalicelib.store.popularity import Recount, pack, sequence_text
from chalicelib.store.summaries import summary_holds

log = logging.getLogger("chalice-cart.followups")
Record = dict[str, Any]
# A summary moved by another invocation between its read and its write is read again.
SUMMARY_ATTEMPTS = 4
# A cart expires 30 days after its last write, but TTL is per item: lines
# that lag the cart's newest line by more than this are renewed with it.
RENEW_SLACK_SECONDS = 3600
# Concurrent batches per stream shard (the deploy puts it on the mapping). Lambda
# keeps per-partition-key order at any factor, and the follow-ups need no more
# (see above), so the factor only buys throughput: a batch takes about one
# GetItem + Query + one write per cart, so a shard at one
# batch at a time drains some 100 records/s; 10 (Lambda's maximum) keeps up
# with a table's partition writing at 1,000 WCU/s.
PARALLELIZATION_FACTOR = 10
# Who signs the REMOVE of an item whose TTL passed.
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


# Lambda event filtering (the deploy puts these on the stream mapping; the local
# runner applies them too): only cart lines and new orders need a follow-up.
# The follow-ups' own writes (summaries, counters) are never
# delivered, so they cost no invocation. A record that matches any pattern is
# delivered.
STREAM_FILTER_PATTERNS: tuple[dict[str, Any], ...] = (
    {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": table.CART_PREFIX}]},
                           "sk": {"S": [{"prefix": table.LINE_PREFIX}]}}}},
    {"eventName": ["INSERT"],
     "dynamodb": {"Keys": {"pk": {"S": [{"prefix": table.CART_PREFIX}]},
                           "sk": {"S": [{"prefix": table.ORDER_PREFIX}]}}}},
)


class PoisonRecord(ValueError):
    """A record this follow-up can never process, however often it is retried."""


@dataclass(frozen=True)
class LineChange:
    cart_id: str
    product_id: str
    sequence: int
    held_before: bool
    held_after: bool
    event_time: str
    event_epoch: int
    # DynamoDB's TTL process deleted the line: not a write by the shopper.
    by_ttl: bool = False


def _sequence(record: Record) -> str:
    return str(record.get("dynamodb", {}).get("SequenceNumber", "0"))


def _key(record: Record) -> tuple[str, str]:
    keys = record["dynamodb"]["Keys"]
    return keys["pk"]["S"], keys["sk"]["S"]


def _holds(image: dict[str, Any] | None) -> bool:
    if not image or "quantity" not in image:
        return False
    return line_from_item(image).quantity > 0


def _by_ttl(record: Record) -> bool:
    identity = record.get("userIdentity") or {}
    return bool(identity.get("type") == "Service"
                and identity.get("principalId") == TTL_PRINCIPAL)


def parse_line_change(record: Record) -> LineChange | None:
    """A cart-line change, None for any other item; PoisonRecord if unreadable."""
    try:
        pk, sk = _key(record)
        if not (pk.startswith(table.CART_PREFIX) and sk.startswith(table.LINE_PREFIX)):
            return None
        stream = record["dynamodb"]
        new_image = stream.get("NewImage")
        old_image = stream.get("OldImage")
        created = float(stream["ApproximateCreationDateTime"])
        # A user's write stamps the line; a removal or a TTL renewal does not,
        # so only a removal falls back to the stream's own (coarser) clock.
        # The epoch comes from the same stamp, so the cart's expiry matches the
        # expiresAt the write itself set (the stream's clock may be a second later).
        if new_image and "updatedAt" in new_image:
            event_time = str(new_image["updatedAt"]["S"])
            event_epoch = epoch_of(event_time)
        else:
            event_time = iso(created)
            event_epoch = int(created)
        return LineChange(
            cart_id=pk.removeprefix(table.CART_PREFIX),
            product_id=sk.removeprefix(table.LINE_PREFIX),
            sequence=int(stream["SequenceNumber"]),
            held_before=_holds(old_image),
            held_after=_holds(new_image),
            event_time=event_time,
            event_epoch=event_epoch,
            by_ttl=_by_ttl(record),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonRecord(str(exc)) from exc


def _failure(sequences: Iterable[str]) -> dict[str, Any]:
    ordered = sorted(set(sequences), key=int)
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in ordered]}


def _report(name: str, record: Record, exc: Exception) -> None:
    log.error(json.dumps({
        "event": "stream_record_failed",
        "followup": name,
        "sequenceNumber": record.get("dynamodb", {}).get("SequenceNumber"),
        "eventID": record.get("eventID"),
        "error": type(exc).__name__,
        "detail": str(exc)[:200],
    }))


def _line_changes(records: list[Record], followup: str,
                  failed: list[str]) -> Iterator[tuple[Record, LineChange]]:
    """The batch's cart-line changes; an unreadable record is reported and failed."""
    for record in records:
        try:
            change = parse_line_change(record)
        except PoisonRecord as exc:
            _report(followup, record, exc)
            failed.append(_sequence(record))
            continue
        if change is not None:
            yield record, change


@dataclass
class _Cart:
    """One cart the batch touched: its records, their changes, their sequence span."""

    cart_id: str
    records: list[Record]
    changes: list[LineChange]

    @property
    def sequence(self) -> str:
        return sequence_text(max(change.sequence for change in self.changes))

    @property
    def first(self) -> str:
        return sequence_text(min(change.sequence for change in self.changes))


def summarize_carts(records: list[Record], repo: DynamoCartRepository,
                    clock: Clock = time.time) -> dict[str, Any]:
    """Rewrite the summary of each cart the batch touched; the carts whose holdings
    changed are written together, with one counter ADD per product (`_write_counted`).

    A cart whose summary moved meanwhile is read again, at most SUMMARY_ATTEMPTS
    times; a cart that cannot be written fails its own records, not the others'.
    """
    failed: list[str] = []
    carts: dict[str, _Cart] = {}
    for record, change in _line_changes(records, "cart_summary", failed):
        cart = carts.setdefault(change.cart_id, _Cart(change.cart_id, [], []))
        cart.records.append(record)
        cart.changes.append(change)

    def fail(cart: _Cart, exc: Exception) -> None:
        _report("cart_summary", cart.records[0], exc)
        failed.extend(_sequence(record) for record in cart.records)

    pending = list(carts.values())
    for _ in range(SUMMARY_ATTEMPTS):
        counted: list[Recount] = []
        moved: set[str] = set()
        for cart in pending:
            try:
                outcome = _summarize_once(cart, repo, clock())
            except Exception as exc:  # one cart's failure must not sink the batch
                fail(cart, exc)
                continue
            if isinstance(outcome, Recount):
                counted.append(outcome)
            elif not outcome:
                moved.add(cart.cart_id)
        for cart_id, error in _write_counted(counted, repo, moved).items():
            fail(carts[cart_id], error)
        pending = [cart for cart in pending if cart.cart_id in moved]
        if not pending:
            break
    for cart in pending:
        fail(cart, StoreUnavailable(
            f"summary of cart {cart.cart_id}: moved {SUMMARY_ATTEMPTS} times"))
    return _failure(failed)


def _write_counted(counted: list[Recount], repo: DynamoCartRepository,
                   moved: set[str]) -> dict[str, Exception]:
    """The counted writes in as few transactions as fit (store/popularity.py `pack`);
    adds to `moved` the carts whose summary moved, answers the carts that failed.

    The store busy or contended every attempt fails the transaction's carts (a retry
    of the batch will do); any other error is sought out cart by cart, so that one
    cart DynamoDB refuses fails alone.
    """
    failures: dict[str, Exception] = {}
    for group in pack(counted):
        try:
            moved |= repo.popularity.recount_carts(group)
        except StoreUnavailable as exc:
            failures.update((recount.cart_id, exc) for recount in group)
        except Exception as exc:
            if len(group) == 1:
                failures[group[0].cart_id] = exc
                continue
            for recount in group:
                failures.update(_write_counted([recount], repo, moved))
    return failures


def _summarize_once(cart: _Cart, repo: DynamoCartRepository,
                    now: float) -> bool | Recount:
    """Rewrite the summary from the live lines: True if written (or already written),
    False if it moved since it was read (nothing applied), or the Recount to write if
    the products the cart holds are not those the summary counted."""
    cart_id, changes, sequence = cart.cart_id, cart.changes, cart.sequence
    seen = repo.carts.read_summary(cart_id)
    if seen is not None and string(seen, "seq") >= sequence:
        return True  # this batch, or a newer one, wrote it already
    counted = summary_holds(seen)
    marks: list[Item] = []
    if counted is None:  # no summary, or one from before summaries counted: marks did
        marks = repo.popularity.holder_marks(cart_id)
        counted = frozenset(string(mark, "sk").removeprefix(table.HOLDER_PREFIX)
                            for mark in marks)
    lines = repo.list_lines(cart_id, int(now))
    cart_totals = totals(lines)
    # Only the shopper's writes move the cart's clock: a TTL removal is the
    # cart ageing, and must neither stamp it nor give its other lines 30 more days.
    writes = [change for change in changes if not change.by_ttl]
    stamps = [change.event_time for change in writes] + [line.updated_at for line in lines]
    expiries = [line.expires_at for line in lines if line.expires_at]
    if writes:
        last_write = max(change.event_epoch for change in writes)
        expiries.append(expiry_after(last_write))
    cart_expiry = max(expiries, default=int(now))
    for line in lines:
        if line.expires_at and cart_expiry - line.expires_at > RENEW_SLACK_SECONDS:
            repo.renew_line(cart_id, line.product_id, cart_expiry, int(now))
    summary = CartSummary(cart_totals.item_count, cart_totals.subtotal_cents,
                          max(filter(None, stamps), default=None))
    holds = frozenset(line.product_id for line in lines if line.quantity > 0)
    deltas = {product_id: 1 for product_id in holds - counted}
    deltas.update({product_id: -1 for product_id in counted - holds})
    if not deltas and not marks:
        return repo.put_summary(cart_id, summary, cart_expiry, sequence, holds, seen)
    if marks and len(deltas) + len(marks) >= TRANSACTION_ACTIONS:
        # Too many for one transaction: first move the marks' holdings into the
        # summary at its old sequence, then count the changes from there.
        repo.popularity.recount(cart_id, repo.carts.summary_put(
            cart_id, summary, cart_expiry, string(seen, "seq"), counted, seen), {}, marks)
        return False
    put = repo.carts.summary_put(cart_id, summary, cart_expiry, sequence, holds, seen)
    return Recount(cart_id, put, deltas, tuple(marks), seed=cart.first)


def confirm_orders(records: list[Record], repo: DynamoCartRepository,
                   clock: Clock = time.time) -> dict[str, Any]:
    """An order PLACED becomes CONFIRMED, once."""
    return _each(records, "order_confirmation", lambda record: _confirm(record, repo, clock))


def _confirm(record: Record, repo: DynamoCartRepository, clock: Clock) -> None:
    try:
        pk, sk = _key(record)
        if not (pk.startswith(table.CART_PREFIX) and sk.startswith(table.ORDER_PREFIX)):
            return
        image = record["dynamodb"].get("NewImage")
        if not image or image["status"]["S"] != "PLACED":
            return
        order_id = image["orderId"]["S"]
    except (KeyError, TypeError) as exc:
        raise PoisonRecord(str(exc)) from exc
    repo.confirm_order(pk.removeprefix(table.CART_PREFIX), order_id, iso(clock()))


def _each(records: list[Record], name: str,
          handle: Callable[[Record], None]) -> dict[str, Any]:
    """Handle records in order; a failed record is reported, the rest go on.

    Later records of an item whose earlier record failed are held back too,
    so the retry sees that item's changes in their original order.
    """
    failed: list[str] = []
    failed_items: set[str] = set()
    for record in records:
        item = json.dumps(record.get("dynamodb", {}).get("Keys"), sort_keys=True)
        if item in failed_items:
            failed.append(_sequence(record))
            continue
        try:
            handle(record)
        except Exception as exc:  # report the record, go on with the rest
            _report(name, record, exc)
            failed.append(_sequence(record))
            failed_items.add(item)
    return _failure(failed)


Followup = Callable[[list[Record], DynamoCartRepository], dict[str, Any]]
FOLLOWUPS: tuple[tuple[str, Followup], ...] = (
    ("cart_summary", lambda records, repo: summarize_carts(records, repo)),
    ("order_confirmation", lambda records, repo: confirm_orders(records, repo)),
)


def process_batch(records: list[Record], repo: DynamoCartRepository) -> dict[str, Any]:
    """Every follow-up over one batch; Lambda retries from the lowest failure reported.

    Each follow-up is idempotent, so the records after that point, which
    some follow-ups already handled, are safe to run through them again.
    """
    failed: list[str] = []
    for _, followup in FOLLOWUPS:
        failed.extend(f["itemIdentifier"] for f in followup(records, repo)["batchItemFailures"])
    return _failure([min(failed, key=int)] if failed else [])
