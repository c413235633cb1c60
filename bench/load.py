"""(6) The local server under load, beside the raw moto calls behind it.

8 clients for 30 s against `python -m devstack run` (chalice local + moto server +
stream runner), a mix of add / status / display; then the same client count for the
same time making the DynamoDB requests those routes make, straight at the stack's
moto server. Loopback only, bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Section, Table, ms, percentile

CLIENTS = 8
DURATION = 30.0
SLICES = 6
MIX = ("add", "status", "display")
NEW_CART_EVERY = 30  # adds per cart, far below the 99-per-line limit


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    by_op: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    def merge(self, other: Tally) -> None:
        self.latencies += other.latencies
        for op, values in other.by_op.items():
            self.by_op.setdefault(op, []).extend(values)
        self.errors.update(other.errors)

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())


@contextlib.contextmanager
def local_stack() -> Iterator[Any]:
    """`python -m devstack run` on free ports (the e2e tests' launcher), stopped after."""
    from devstack.background import start_stack

    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            yield stack
        finally:
            stack.stop()


Worker = Callable[[int, float, Tally], None]


def _drive(worker: Worker, clients: int, duration: float) -> Tally:
    tallies = [Tally() for _ in range(clients)]
    deadline = time.perf_counter() + duration
    threads = [threading.Thread(target=worker, args=(n, deadline, tallies[n]), daemon=True)
               for n in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 30)
    total = Tally(elapsed=time.perf_counter() - start)
    for tally in tallies:
        total.merge(tally)
    return total


def interleaved(workers: dict[str, Worker], clients: int, duration: float,
                slices: int) -> tuple[dict[str, Tally], list[dict[str, float]]]:
    """Each worker for `duration` seconds in total, in alternating slices.

    moto slows down as its in-memory stream grows (TransactWriteItems deep-copies the
    table, stream included), so back-to-back runs would favour whichever went first.
    """
    totals = {name: Tally() for name in workers}
    per_slice: list[dict[str, float]] = []
    for _ in range(slices):
        rates: dict[str, float] = {}
        for name, worker in workers.items():
            tally = _drive(worker, clients, duration / slices)
            totals[name].merge(tally)
            totals[name].elapsed += tally.elapsed
            rates[name] = len(tally.latencies) / tally.elapsed if tally.elapsed else 0.0
        per_slice.append(rates)
    return totals, per_slice


def http_worker(url: str, clients: int) -> Worker:
    """Each client: its own session (and so its own cart cookie), kept across slices."""
    import requests

    from deploy.catalog import on_sale, seed


    SEED = on_sale(seed())

    sessions = [requests.Session() for _ in range(clients)]
    counters = [[0, 0] for _ in range(clients)]  # [requests made, adds made]
    headers = {"Content-Type": "application/json"}

    def work(n: int, deadline: float, tally: Tally) -> None:
        session, counter = sessions[n], counters[n]
        while time.perf_counter() < deadline:
            op = MIX[counter[0] % len(MIX)]
            counter[0] += 1
            start = time.perf_counter()
            try:
                if op == "add":
                    if counter[1] % NEW_CART_EVERY == 0:
                        session.cookies.clear()
                    product = SEED[(n + counter[1]) % len(SEED)].id
                    counter[1] += 1
                    response = session.post(
                        f"{url}/api/cart/items", headers=headers, timeout=10,
                        data=json.dumps({"productId": product, "quantity": 1}))
                else:
                    path = "/api/cart/status" if op == "status" else "/api/cart"
                    response = session.get(f"{url}{path}", headers=headers, timeout=10)
                ok = response.status_code < 300
                reason = f"HTTP {response.status_code}"
            except Exception as exc:  # count it, go on: the run is bounded in time
                ok, reason = False, type(exc).__name__
            _count(tally, op, time.perf_counter() - start, ok, reason)

    return work


def moto_worker(moto_url: str, table_name: str, clients: int) -> Worker:
    """The DynamoDB requests the three routes make, through the adapter, at moto directly.

    Clients are built up front: building a boto3 client costs ~0.1 s of CPU and
    is not what is being measured.
    """
    import boto3

    from deploy.catalog import on_sale, seed


    SEED = on_sale(seed())
    from chalicelib.domain import expiry_after
    from chalicelib.repository import DynamoCartRepository
    from chalicelib.services import iso

    repos = [DynamoCartRepository(boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local",  # nosec B106
        region_name="us-east-1").client("dynamodb", endpoint_url=moto_url), table_name)
        for _ in range(clients)]
    counters = [[0, 0] for _ in range(clients)]
    carts = [f"bench-raw-{n}-0" for n in range(clients)]

    def work(n: int, deadline: float, tally: Tally) -> None:
        repo, counter = repos[n], counters[n]
        while time.perf_counter() < deadline:
            op = MIX[counter[0] % len(MIX)]
            counter[0] += 1
            now = time.time()
            start = time.perf_counter()
            try:
                if op == "add":
                    if counter[1] % NEW_CART_EVERY == 0:
                        carts[n] = f"bench-raw-{n}-{counter[1]}"
                    product = SEED[(n + counter[1]) % len(SEED)]
                    counter[1] += 1
                    repo.add_line(carts[n], product, 1, iso(now), int(now),
                                  expiry_after(int(now)))
                elif op == "status":
                    repo.get_summary(carts[n], int(now))
                else:
                    repo.list_lines(carts[n], int(now))
                ok, reason = True, ""
            except Exception as exc:  # count it, go on
                ok, reason = False, type(exc).__name__
            _count(tally, op, time.perf_counter() - start, ok, reason)

    return work


def _count(tally: Tally, op: str, elapsed: float, ok: bool, reason: str) -> None:
    if ok:
        tally.latencies.append(elapsed)
        tally.by_op.setdefault(op, []).append(elapsed)
    else:
        tally.errors[f"{op}: {reason}"] += 1


SEQUENTIAL_ROUNDS = 40


def _sequential(url: str, rounds: int, errors: Counter[str]) -> dict[str, list[float]]:
    import requests

    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    body = json.dumps({"productId": "kettle", "quantity": 1})
    out: dict[str, list[float]] = {"add": [], "status": []}
    for i in range(rounds):
        if i % NEW_CART_EVERY == 0:
            session.cookies.clear()
        for op in out:
            start = time.perf_counter()
            try:
                if op == "add":
                    response = session.post(f"{url}/api/cart/items", headers=headers,
                                            data=body, timeout=10)
                else:
                    response = session.get(f"{url}/api/cart/status", headers=headers,
                                           timeout=10)
            except requests.RequestException as exc:
                errors[f"{op}: {type(exc).__name__}"] += 1
                continue
            if response.status_code >= 300:
                errors[f"{op}: HTTP {response.status_code}"] += 1
                continue
            out[op].append(time.perf_counter() - start)
    return out


def sequential_latency(stack: Any) -> Table:
    """One client, one request at a time, on a kept-alive connection."""
    table = Table(["one client, sequential", "add p50 ms", "status p50 ms", "errors"])
    errors: Counter[str] = Counter()
    by_op = _sequential(stack.url, SEQUENTIAL_ROUNDS, errors)
    failed = ", ".join(f"{k} ×{v}" for k, v in errors.items()) or "0"
    table.add("devstack's chalice local", ms(percentile(by_op["add"], 50)),
              ms(percentile(by_op["status"], 50)), failed)
    return table


GROWTH_STEPS = (0, 1000, 2000)


def moto_stream_growth() -> Table:
    """moto's TransactWriteItems against the number of records its stream holds.

    In-process (mock_aws), the app's table: the stack's moto server has the same code.
    """
    import statistics

    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from bench.common import in_process_stack

    table = Table(["records in moto's stream", "TransactWriteItems (2 items) p50 ms",
                   "GetItem p50 ms"])
    with in_process_stack() as stack:
        client, name = stack.dynamodb, stack.table_name
        shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[name].stream_shard
        if shard is None:
            raise RuntimeError("the table has no stream")
        product = {"pk": {"S": "CATALOG"}, "sk": {"S": "PRODUCT#kettle"}}
        update = {"TableName": name, "Key": product, "UpdateExpression": "ADD inCarts :d",
                  "ExpressionAttributeValues": {":d": {"N": "0"}}}
        other = {**update, "Key": {"pk": {"S": "CATALOG"}, "sk": {"S": "PRODUCT#tote"}}}

        def timed(call: Callable[[], Any]) -> float:
            start = time.perf_counter()
            call()
            return time.perf_counter() - start

        for target in GROWTH_STEPS:
            if target == 0:
                shard.items.clear()
            while len(shard.items) < target:
                client.update_item(
                    TableName=name, Key={"pk": {"S": "CART#g"}, "sk": {"S": "LINE#x"}},
                    UpdateExpression="ADD quantity :one",
                    ExpressionAttributeValues={":one": {"N": "1"}})
            tx = statistics.median(timed(lambda: client.transact_write_items(
                TransactItems=[{"Update": update}, {"Update": other}])) for _ in range(3))
            get = statistics.median(timed(lambda: client.get_item(
                TableName=name, Key=product)) for _ in range(3))
            table.add(f"{len(shard.items):,}", ms(tx), ms(get))
    return table


def _row(table: Table, name: str, tally: Tally) -> None:
    rate = len(tally.latencies) / tally.elapsed if tally.elapsed else 0.0
    table.add(name, tally.requests, f"{rate:.1f}", ms(percentile(tally.latencies, 50)),
              ms(percentile(tally.latencies, 99)), sum(tally.errors.values()))


def run(section: Section, _results: dict[str, Section] | None = None,
        stack: Any = None, duration: float = DURATION, clients: int = CLIENTS) -> None:
    with contextlib.ExitStack() as stop:
        if stack is None:
            stack = stop.enter_context(local_stack())
        # The sequential figures first, while moto is fresh; then the load itself.
        try:
            sequential: Table | None = sequential_latency(stack)
        except Exception as exc:  # a side measurement: report it, keep the load figures
            sequential = None
            section.notes.append(f"The sequential measurement failed: {type(exc).__name__}: "
                                 f"{exc}")
        totals, per_slice = interleaved(
            {"server": http_worker(stack.url, clients),
             "raw": moto_worker(stack.moto_url, stack.table_name, clients)},
            clients, duration, SLICES)
        server, raw = totals["server"], totals["raw"]
    try:
        growth: Table | None = moto_stream_growth()
    except Exception as exc:  # a side experiment: report it, keep the load figures
        growth = None
        section.notes.append(f"The moto stream-growth measurement failed: "
                             f"{type(exc).__name__}: {exc}")
    table = Table(["target", "requests", "requests/s", "p50 ms", "p99 ms", "errors"])
    _row(table, "local server (chalice local → moto server)", server)
    _row(table, "raw moto calls (boto3 → moto server)", raw)
    per_op = Table(["operation", "server p50 ms", "server p99 ms", "raw p50 ms", "raw p99 ms"])
    for op in MIX:
        s, r = server.by_op.get(op, []), raw.by_op.get(op, [])
        per_op.add(op, ms(percentile(s, 50)), ms(percentile(s, 99)),
                   ms(percentile(r, 50)), ms(percentile(r, 99)))
    slices = Table(["slice", *(f"{i + 1}" for i in range(len(per_slice)))])
    slices.add("server requests/s", *(f"{r['server']:.1f}" for r in per_slice))
    slices.add("raw moto requests/s", *(f"{r['raw']:.1f}" for r in per_slice))
    section.tables += [table, per_op, slices, *([sequential] if sequential else []),
                       *([growth] if growth else [])]
    errors = sum(server.errors.values())
    rate = len(server.latencies) / server.elapsed if server.elapsed else 0.0
    raw_rate = len(raw.latencies) / raw.elapsed if raw.elapsed else 0.0
    section.data.update(rps=rate, raw_rps=raw_rate, errors=errors,
                        p50=percentile(server.latencies, 50),
                        p99=percentile(server.latencies, 99))
    section.result = (f"{rate:.1f} requests/s with {clients} clients for {duration:.0f} s, "
                      f"{errors} errors ({'holds' if errors == 0 else 'misses'} the 0-error "
                      f"target); the raw moto calls ran at {raw_rate:.1f}/s "
                      f"({rate / raw_rate if raw_rate else 0:.2f}x of them).")
    if server.errors or raw.errors:
        section.notes.append("Errors: " + ", ".join(
            f"{k} ×{v}" for k, v in (server.errors + raw.errors).most_common(6)))
    if sequential is not None:
        section.notes.append(
            "The sequential table is one client, one request at a time, on a kept-alive "
            "connection. chalice local writes a response's headers and body separately; "
            "devstack starts it with TCP_NODELAY (devstack/chalice_local.py), without which "
            "Nagle's algorithm held every body until the client's delayed ACK (~40 ms).")
    if growth is not None:
        section.notes.append(
            "moto's TransactWriteItems deep-copies the whole table, stream records "
            "included, once per action (to roll back on failure): the stream-growth table "
            "measures it on in-process moto, where every transaction gets slower as the "
            "stream grows. devstack's moto server shares the stream's shards instead "
            "(devstack/motoserver.py), so a long `make run` session does not slow down; "
            "there moto is the ceiling because it answers one request at a time.")
    section.notes.append(
        f"Mix: {', '.join(MIX)} in turn per client; each client keeps its own cookie and "
        f"starts a new cart every {NEW_CART_EVERY} adds. The stream runner keeps "
        "following the table during both runs, as it does under `make run`. The load "
        "generator shares the machine's cores with the server and moto.")
