"""Time to live on the local store: what expires on AWS expires on the laptop too.

moto records a table's TTL setting but never deletes an expired item. The
sweeper runs in the moto server process (devstack/motoserver.py) and, every
`interval` seconds (60 by default: `make run TTL_SWEEP=...`), deletes each
item whose TTL attribute (`expiresAt`) is a number of epoch seconds now past,
the way DynamoDB's TTL process does:

- the delete's stream record is a `REMOVE` signed by the service
  (`userIdentity` {Type: Service, PrincipalId: dynamodb.amazonaws.com}), so
  the follow-ups tell it from a shopper's remove (chalicelib/followups.py);
- an attribute that is not a number, or more than five years in the past, is
  left alone, as AWS leaves it.

So an idempotency record, an abandoned cart's lines and summary, a let-go
holder mark are gone at most `interval` seconds (plus one sweep) after they
expire; AWS promises "within a few days", usually minutes. Reads never wait
for it: the app already treats an item past its expiry as absent.

The same sweep drops stream records past DynamoDB Streams' 24-hour retention
(devstack.moto_memory.trim_stream): a day-long session's memory stays bounded.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from devstack.moto_memory import trim_stream

DEFAULT_INTERVAL = 60.0
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
# DynamoDB Streams' wire form (GetRecords); Lambda's event spells it type/principalId.
TTL_IDENTITY = {"PrincipalId": TTL_PRINCIPAL, "Type": "Service"}
IGNORED_AFTER = 5 * 365 * 24 * 3600  # AWS skips items that expired over five years ago


def _tables() -> list[Any]:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return [table for backend in dynamodb_backends[DEFAULT_ACCOUNT_ID].values()
            for table in list(backend.tables.values())]


def _expiry(item: Any, attribute: str) -> float | None:
    value = item.attrs.get(attribute)
    if value is None or value.type != "N":
        return None
    try:
        return float(value.value)
    except (TypeError, ValueError):
        return None


def expired(table: Any, now: float) -> list[Any]:
    """The items of a table with TTL on whose expiry is past (and not five years past)."""
    ttl = getattr(table, "ttl", None) or {}
    attribute = ttl.get("AttributeName")
    if ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
        return []
    found = []
    for bucket in list(table.items.values()):
        for item in list(bucket.values()) if isinstance(bucket, dict) else [bucket]:
            expiry = _expiry(item, attribute)
            if expiry is not None and now - IGNORED_AFTER <= expiry <= now:
                found.append(item)
    return found


def delete_as_ttl(table: Any, item: Any) -> bool:
    """Delete one item as DynamoDB's TTL process does: a REMOVE signed by the service."""
    shard = getattr(table, "stream_shard", None)
    before = len(shard.items) if shard is not None else 0
    if table.delete_item(item.hash_key, item.range_key) is None:
        return False
    if shard is not None and len(shard.items) > before:
        shard.items[-1].record["userIdentity"] = dict(TTL_IDENTITY)
    return True


def sweep(now: float) -> tuple[int, int]:
    """Expire every table's expired items and trim its stream; (deleted, trimmed)."""
    deleted = trimmed = 0
    for table in _tables():
        for item in expired(table, now):
            deleted += delete_as_ttl(table, item)
        trimmed += trim_stream(table, now)
    return deleted, trimmed


class Sweeper:
    """Run `sweep` every `interval` seconds under the server's lock, in a thread."""

    def __init__(self, lock: threading.Lock, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.lock = lock
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()

    def sweep_now(self) -> tuple[int, int]:
        with self.lock:
            return sweep(self.clock())

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep_now()
            except Exception as exc:  # keep serving; say why nothing expired
                print(f"devstack moto: TTL sweep failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)

    def start(self) -> None:
        if self.interval > 0:
            threading.Thread(target=self.run, name="ttl-sweeper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
