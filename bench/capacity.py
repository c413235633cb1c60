"""(1) DynamoDB requests and request units per API operation and per stream batch."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.calls import Call, CallRecorder, UnitModel
from bench.common import InProcessStack, Section, Table, in_process_stack

FOLLOWUPS = ("cart_summary", "order_confirmation")
BATCH_SIZES = (1, 10, 25)
WRITE_CALLS = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")
# What each operation must do in today's design: (write requests, read requests, why the
# reads). Every cart write is one TransactWriteItems with its request record (at most
# once, issue 16); a read beside it only where the design needs one.
EXPECTED: dict[str, tuple[int, int, str]] = {
    "products": (0, 1, "the catalog, from the per-process cache when warm"),
    "add": (1, 2, "the line before (create it or add to it) and after (the answer: a "
                  "transaction returns no values)"),
    "set": (1, 1, "the line after (the answer)"),
    "remove": (1, 0, ""),
    "display": (0, 2, "the lines, then today's prices and stock from the products' stock "
                      "shards"),
    "status": (0, 1, "the summary"),
    "checkout": (1, 1, "the lines it orders"),
    "order": (0, 1, "the order"),
}
REPEATS = 3


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    body: str | None = None
    needs_order: bool = False


def add_body(product_id: str, quantity: int = 1) -> str:
    return json.dumps({"productId": product_id, "quantity": quantity})


OPERATIONS = (
    Operation("products", "GET", "/api/products"),
    Operation("add", "POST", "/api/cart/items", add_body("kettle")),
    Operation("set", "PUT", "/api/cart/items/kettle", json.dumps({"quantity": 3})),
    Operation("remove", "DELETE", "/api/cart/items/kettle"),
    Operation("display", "GET", "/api/cart"),
    Operation("status", "GET", "/api/cart/status"),
    Operation("checkout", "POST", "/api/cart/checkout"),
    Operation("order", "GET", "/api/orders/{order_id}", needs_order=True),
)


def _expect_created(response: Any) -> None:
    if response.status_code != 201:
        raise RuntimeError(f"expected 201, got {response.status_code}: {response.body!r}")


def new_cart(stack: InProcessStack) -> str:
    """A cart holding 2 espresso cups and 1 kettle, with its summary; its cookie."""
    first = stack.request("POST", "/api/cart/items", body=add_body("espresso-cup", 2))
    _expect_created(first)
    cookie = str(first.headers["Set-Cookie"].split(";", 1)[0])
    second = stack.request("POST", "/api/cart/items", cookie, add_body("kettle", 1))
    _expect_created(second)
    from chalicelib import runtime
    from chalicelib.domain import CartSummary, expiry_after

    cart_id = cookie.split("=", 1)[1].split(".", 1)[0]
    runtime.repository().put_summary(
        cart_id, CartSummary(3, 2 * 1200 + 5900, "2026-01-01T00:00:00.000Z"),
        expiry_after(2_000_000_000))
    return cookie


def place_order(stack: InProcessStack, cookie: str) -> str:
    response = stack.request("POST", "/api/cart/checkout", cookie)
    _expect_created(response)
    return str(json.loads(response.body)["orderId"])


def describe(calls: list[Call]) -> str:
    return " + ".join(call.operation for call in calls) or "none"


def tally(units: UnitModel, calls: list[Call]) -> tuple[float, float, str]:
    reads = writes = 0.0
    reported: list[str] = []
    for call in calls:
        r, w = units.units(call)
        reads += r
        writes += w
        reported.append("-" if call.consumed is None else f"{call.consumed:g}")
    return reads, writes, " + ".join(reported) or "-"


def _expected(name: str) -> str:
    writes, reads, why = EXPECTED[name]
    parts = ([f"{writes} write"] if writes else []) + (
        [f"≤ {reads} read{'s' if reads > 1 else ''}"] if reads else [])
    return " + ".join(parts) + (f" ({why})" if why else "")


def measure_operations(stack: InProcessStack, recorder: CallRecorder,
                       units: UnitModel) -> tuple[Table, dict[str, Any]]:
    table = Table(["operation", "route", "DynamoDB calls", "requests",
                   "read units", "write units", "moto's ConsumedCapacity",
                   "target: one request / as the design needs"])
    data: dict[str, Any] = {}
    # Steady state: the catalog cache is warm before anything is counted.
    new_cart(stack)
    for op in OPERATIONS:
        seen: list[list[Call]] = []
        for _ in range(REPEATS):
            cookie = new_cart(stack)
            path = op.path
            if op.needs_order:
                path = path.format(order_id=place_order(stack, cookie))
            if op.method == "GET":
                # A cache whose seconds ran out during moto's slow answers is refilled
                # here, not in the counted request (section 7 prices the refills).
                stack.request(op.method, path, cookie, op.body)
            recorder.take()
            recorder.active = True
            response = stack.request(op.method, path, cookie, op.body)
            recorder.active = False
            if response.status_code >= 300:
                raise RuntimeError(f"{op.name}: HTTP {response.status_code} {response.body!r}")
            seen.append(recorder.take())
        shapes = {describe(calls) for calls in seen}
        calls = max(seen, key=len)
        reads, writes, reported = tally(units, calls)
        write_calls = sum(call.operation in WRITE_CALLS for call in calls)
        want_writes, want_reads, _ = EXPECTED[op.name]
        ok = write_calls <= want_writes and len(calls) - write_calls <= want_reads
        one = len(calls) <= 1
        table.add(op.name, f"{op.method} {op.path}", " / ".join(sorted(shapes)),
                  len(calls), f"{reads:g}", f"{writes:g}", reported,
                  f"{'holds' if one else 'misses'} / {_expected(op.name)}: "
                  f"{'holds' if ok else 'misses'}")
        data[op.name] = {"calls": [c.operation for c in calls], "requests": len(calls),
                         "write_requests": write_calls, "read_units": reads,
                         "write_units": writes, "ok": ok, "one": one}
    return table, data


def measure_stream_batches(stack: InProcessStack, recorder: CallRecorder,
                           units: UnitModel) -> tuple[Table, dict[str, Any]]:
    import boto3

    from bench.footprint import as_dynamodb_emits, filter_patterns, passes
    from chalicelib import followups, runtime
    from devstack.streams import StreamReader

    reader = StreamReader(boto3.client("dynamodbstreams"), stack.stream_arn)
    table = Table(["carts K", "records", "follow-up", "DynamoDB calls", "requests",
                   "read units", "write units", "summary writes ≤ K"])
    data: dict[str, Any] = {}
    for k in BATCH_SIZES:
        reader.read()  # start from a quiet stream
        for _ in range(k):
            new_cart(stack)
        # What Lambda delivers: DynamoDB's records (not moto's), through the mapping's
        # filter patterns (cart lines and new orders), at most the deployed batch size.
        records = [r for r in as_dynamodb_emits(reader.read())
                   if passes(filter_patterns(), r)][:100]
        for name in FOLLOWUPS:
            recorder.take()
            recorder.active = True
            # Each follow-up alone, as process_stream runs it among the others.
            result = dict(followups.FOLLOWUPS)[name](records, runtime.repository())
            recorder.active = False
            calls = recorder.take()
            if result != {"batchItemFailures": []}:
                raise RuntimeError(f"{name} failed records: {result}")
            counts = Counter(call.operation for call in calls)
            reads, writes, _ = tally(units, calls)
            # A summary is written alone (PutItem) or with its counters (a transaction).
            summary_writes = counts.get("PutItem", 0) + counts.get("TransactWriteItems", 0)
            check = (f"{summary_writes} ≤ {k}: "
                     f"{'holds' if summary_writes <= k else 'misses'}"
                     if name == "cart_summary" else "")
            table.add(k, len(records), name,
                      ", ".join(f"{n}×{op}" for op, n in sorted(counts.items())) or "none",
                      len(calls), f"{reads:g}", f"{writes:g}", check)
            data[f"{name}@{k}"] = {"requests": len(calls), "counts": dict(counts),
                                   "records": len(records), "read_units": reads,
                                   "write_units": writes}
    return table, data


def run(section: Section, _results: dict[str, Section] | None = None) -> None:
    import boto3

    with in_process_stack() as stack:
        units = UnitModel(boto3.client("dynamodb"))
        recorder = CallRecorder(stack.dynamodb, units=units)
        try:
            op_table, op_data = measure_operations(stack, recorder, units)
            batch_table, batch_data = measure_stream_batches(stack, recorder, units)
        finally:
            recorder.detach()
    section.tables += [op_table, batch_table]
    section.data.update(operations=op_data, batches=batch_data)
    writes = [name for name, (w, _, _) in EXPECTED.items() if w]
    one_write = all(op_data[name]["write_requests"] == 1 for name in writes)
    as_designed = [name for name, d in op_data.items() if d["ok"]]
    more = [f"{name} {d['requests']}" for name, d in op_data.items() if not d["one"]]
    summary_ok = all(
        d["counts"].get("PutItem", 0) + d["counts"].get("TransactWriteItems", 0)
        <= int(key.split("@")[1])
        for key, d in batch_data.items() if key.startswith("cart_summary"))
    section.result = (
        f"every cart write ({', '.join(writes)}) is one write request, a TransactWriteItems: "
        f"{'holds' if one_write else 'misses'}; one request per operation: "
        f"{len(op_data) - len(more)}/{len(op_data)} hold, misses for {', '.join(more)} "
        f"(reads the design needs beside the write, see notes); "
        f"{len(as_designed)}/{len(op_data)} make no more than the design says; "
        f"cart_summary writes ≤ K summaries per batch: {'holds' if summary_ok else 'misses'}."
    )
    section.notes += [
        "Counts come from the app's own botocore client (`before-call` / `after-call` hooks); "
        "ReturnConsumedCapacity=\"TOTAL\" is injected by a `provide-client-params` hook, "
        "the adapter is unchanged.",
        "moto does not compute consumed capacity: it answers a fixed placeholder (1, or 0.5 "
        "for GetItem) on the operations it decorates and nothing on UpdateItem or "
        "TransactWriteItems. The read/write unit columns are therefore **computed** from the "
        "actual item sizes per DynamoDB's rules (names + values; writes bill the larger of "
        "the item before and after in 1 KB units; strongly consistent reads bill the summed "
        "size of the items read in 4 KB units, eventually consistent half; transactions "
        "bill every item twice).",
        "Checkout is one read plus one TransactWriteItems: the transaction must name every "
        "line it deletes and condition each delete on the quantity and updatedAt it read, so "
        "a concurrent add or change cancels the order instead of slipping past it. DynamoDB "
        "cannot delete 'every item under this partition key' without knowing the keys, so "
        "the read is required; one request would need the whole cart in one item (and then "
        "a 400 KB ceiling and one hot item per cart). The target of one request does not "
        "fit checkout; two is its floor in this data model.",
        "Add, set and remove are each one TransactWriteItems that also Puts the request's "
        "record (its Idempotency-Key, or a token the API mints), so a botocore re-send or a "
        "late-landing attempt applies nothing (issue 16). Add reads the line first "
        "(consistent GetItem): a live line is updated, a missing or expired one is created "
        "and counted in the cart's header, two different transactions; the read only picks "
        "which, the write's conditions hold it to what it read. A transaction returns no "
        "values, so add and set read the line they answer with (consistent GetItem). The "
        "one-request target therefore misses for add (3) and set (2); the write itself is "
        "one request.",
        "Display (GET /api/cart) reads the lines (Query), then today's price, `active` and "
        "stock of the products they hold from their stock shards (one BatchGetItem), not "
        "from the per-process cache: the cart is where a shopper decides to pay. Two "
        "requests, so the one-request target misses there by design. Products is served "
        "from the catalog cache when warm (no request); what a refill reads, and how often, "
        "is section 7's (its caches table). Reads are counted after one unrecorded request "
        "of the same route, so a cache whose lifetime ran out during moto's slow answers is "
        "not counted as the route's own.",
        "Stream batches: each cart takes two adds (of new lines); the batch is what Lambda "
        "would deliver: moto's records corrected to DynamoDB's and passed through the "
        "mapping's filter patterns (chalicelib.followups: cart lines and new orders), so 2 "
        "records per cart. cart_summary reads each touched cart's summary (GetItem) and "
        "lines (Query) once and writes its summary once: a PutItem, or, when the products "
        "the cart holds changed (here: always, two new lines), one TransactWriteItems with "
        "the summary and a counter ADD per product that changed.",
    ]


Runner = Callable[[Section, dict[str, Section]], None]
