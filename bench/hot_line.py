"""(10) Keyed against unkeyed adds on one hot line, side by side in one run.

16 threads add to one line of one cart through the service (the app's own
botocore client, moto in-process, one call at a time: moto is not
thread-safe, so the threads interleave between calls, never inside one).
Both kinds are one transaction with a request record (store/carts.py); a
keyed add also remembers its answer. The old keyed path read the line and
wrote it on the condition it was unchanged, so racing adds retried (issue
16: 14x slower, 409 after 60 tries).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import Section, Table, in_process_stack, percentile

THREADS = 16
LIMIT = 3.0


@contextlib.contextmanager
def serialized(client: Any) -> Iterator[None]:
    """moto answers one call at a time (it is not thread-safe); botocore runs as usual."""
    from moto.core.models import botocore_stubber

    lock = threading.Lock()

    def one_at_a_time(**kwargs: Any) -> Any:
        with lock:
            return botocore_stubber(**kwargs)

    events = client.meta.events
    events.unregister("before-send", botocore_stubber)
    events.register("before-send", one_at_a_time)
    try:
        yield
    finally:
        events.unregister("before-send", one_at_a_time)
        events.register("before-send", botocore_stubber)


def _round(service: Any, cart_id: str, adds: int, keyed: bool) -> tuple[float, list[float]]:
    from chalicelib.services import CartService

    assert isinstance(service, CartService)  # nosec B101
    latencies: list[float] = []

    def add(i: int) -> None:
        started = time.perf_counter()
        service.add_to_cart(cart_id, {"productId": "kettle", "quantity": 1},
                            f"bench-{cart_id}-{i}" if keyed else None)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(add, range(adds)))
    return time.perf_counter() - started, latencies


def run(section: Section, _results: dict[str, Section] | None = None,
        adds: int = 80) -> None:
    from chalicelib import runtime

    table = Table(["adds (16 threads, one line)", "unkeyed s", "keyed s", "keyed / unkeyed",
                   "unkeyed p99 ms", "keyed p99 ms", f"≤ {LIMIT:g}x"])
    from bench.footprint import cheaper_moto_transactions

    # moto deep-copies the table before each transaction (DynamoDB does nothing like
    # it): the cheaper copy keeps both kinds' cost about their own calls.
    with cheaper_moto_transactions(), in_process_stack() as stack, \
            serialized(stack.dynamodb):
        service = runtime.cart_service()
        service.add_to_cart("warm", {"productId": "kettle", "quantity": 1})
        # Interleaved rounds, each on a fresh cart (a line holds at most 99).
        totals = {False: 0.0, True: 0.0}
        tails: dict[bool, list[float]] = {False: [], True: []}
        for n in range(2):
            for keyed in (False, True):
                cart_id = f"hot-{n}-{int(keyed)}"
                service.add_to_cart(cart_id, {"productId": "kettle", "quantity": 1})
                seconds, latencies = _round(service, cart_id, adds // 2, keyed)
                totals[keyed] += seconds
                tails[keyed] += latencies
    ratio = totals[True] / totals[False]
    table.add(adds, f"{totals[False]:.2f}", f"{totals[True]:.2f}", f"{ratio:.2f}x",
              f"{percentile(tails[False], 99) * 1000:.0f}",
              f"{percentile(tails[True], 99) * 1000:.0f}",
              "holds" if ratio <= LIMIT else "misses")
    section.tables.append(table)
    section.data.update(ratio=ratio, unkeyed=totals[False], keyed=totals[True])
    section.result = (f"keyed {ratio:.2f}x unkeyed on one hot line "
                      f"({'holds' if ratio <= LIMIT else 'misses'} ≤ {LIMIT:g}x).")
    section.notes.append(
        "An add reads its line (consistent GetItem: a live line is updated, a missing one "
        "created), makes one TransactWriteItems (the request record and the line's "
        "update) and reads the line for its answer; a keyed add also writes its answer "
        "into its key record (one UpdateItem). The update is conditioned on the line's "
        "bounds, not on what was read, so adds racing on one live line all apply and none "
        "retries on moto. On DynamoDB, adds racing on one item may be cancelled with "
        "TransactionConflict; they are retried inside the request until its deadline "
        "(store/retry.py), then answered 503 with Retry-After, never 409.")
