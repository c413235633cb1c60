"""The flash-sale model: one product, 5,000 checkouts/s, against DynamoDB's per-item limits.

Self-contained: `figures()` returns the numbers (other sections may quote
them), `run()` prints them as a bench section. The checkout's transaction
shape is measured: one real checkout of a one-line cart on moto, its
TransactItems captured and sized; the rest is arithmetic on DynamoDB's
documented limits, stated beside each figure.

The design it checks (chalicelib/catalog.py, store/stock.py): a product's
stock lives in K allotment shards, items with their own partition keys;
each checkout takes its units from one shard it picks at random, inside the
transaction that places the order. A checkout whose shard ran dry reads
the shards (one consistent BatchGetItem) and tries once more where units
are left; once the product is sold out, each warm API process refuses it
without a write for SOLD_OUT_MEMO_SECONDS.
"""

from __future__ import annotations

import json
import math
from typing import Any

PARTITION_WCU = 1000  # per second, per partition; an item lives in one partition
PARTITION_RCU = 3000
TRANSACTION_WCU_PER_KB = 2  # a write in a transaction costs twice a plain one
TARGET_UTILISATION = 0.5  # per shard: room for a random pick's imbalance and retries
RATE = 5000.0  # checkouts/s at the sale's start
UNITS = 100  # the sale
LATENCY_S = 0.05  # one checkout request, for how many Lambda processes are warm


def _wcu(item: dict[str, Any]) -> int:
    """Write units of one transactional action on an item of this (DynamoDB JSON) size."""
    size = len(json.dumps(item, separators=(",", ":")).encode())
    return TRANSACTION_WCU_PER_KB * max(1, math.ceil(size / 1024))


def measure_transaction() -> dict[str, Any]:
    """Checkout of a one-line cart on moto: its actions and their write units."""
    from bench.common import in_process_stack

    captured: list[list[dict[str, Any]]] = []
    with in_process_stack() as stack:
        one_kettle = json.dumps({"productId": "kettle", "quantity": 1})
        added = stack.request("POST", "/api/cart/items", body=one_kettle)
        cookie = added.headers["Set-Cookie"].split(";", 1)[0]

        def capture(params: dict[str, Any], **_: Any) -> None:
            captured.append(params["TransactItems"])

        stack.dynamodb.meta.events.register(
            "provide-client-params.dynamodb.TransactWriteItems", capture)
        placed = stack.request("POST", "/api/cart/checkout", cookie)
        assert placed.status_code == 201, placed.body  # nosec B101: a bench's own check
    actions = captured[-1]
    kinds = [next(iter(a)) for a in actions]
    stock = [a for a in actions if next(iter(a)) == "Update"
             and a["Update"]["Key"]["pk"]["S"].startswith("STOCK#")]
    stock_item = {**stock[0]["Update"]["Key"], "productId": {"S": "kettle"},
                  "shard": {"N": "0"}, "units": {"N": "100"}, "priceCents": {"N": "5900"},
                  "active": {"BOOL": True}}
    return {
        "actions": len(actions),
        "kinds": kinds,
        "stock_actions": len(stock),
        "stock_wcu": _wcu(stock_item),
        "wcu": sum(_wcu(next(iter(a.values())).get("Item") or next(iter(a.values()))["Key"])
                   for a in actions),
    }


def figures(rate: float = RATE, units: int = UNITS, stock_wcu: int = 2,
            memo_seconds: float | None = None) -> dict[str, Any]:
    """The sale's numbers for `rate` checkouts/s and `units` units (stock_wcu: measured)."""
    if memo_seconds is None:
        from chalicelib.services import SOLD_OUT_MEMO_SECONDS

        memo_seconds = SOLD_OUT_MEMO_SECONDS
    item_takes = PARTITION_WCU / stock_wcu  # takes/s one shard item absorbs at most
    one_item = rate * stock_wcu
    shards = math.ceil(rate / (item_takes * TARGET_UTILISATION))
    per_shard = rate / shards
    processes = math.ceil(rate * LATENCY_S)
    sold_out_after = units / rate
    # After the sale: each warm process reads the K shards once per memo window.
    reads_per_shard = processes / memo_seconds
    return {
        "rate": rate, "units": units, "stock_wcu": stock_wcu,
        "item_takes_per_s": item_takes,
        "one_item_wcu": one_item, "one_item_share": one_item / PARTITION_WCU,
        "shards": shards, "per_shard_takes": per_shard,
        "per_shard_wcu": per_shard * stock_wcu,
        "per_shard_share": per_shard * stock_wcu / PARTITION_WCU,
        "sold_out_after_s": sold_out_after,
        "units_per_shard": units / shards,
        "warm_processes": processes,
        "sold_out_reads_per_shard": reads_per_shard,
        "sold_out_read_share": reads_per_shard / PARTITION_RCU,
    }


def run(section: Any, results: dict[str, Any] | None = None) -> None:
    from bench.common import Table

    shape = measure_transaction()
    sale = figures(stock_wcu=shape["stock_wcu"])
    table = Table(["checkout of a 1-line cart (measured)", "value"])
    table.add("actions in its transaction", f"{shape['actions']} ({', '.join(shape['kinds'])})")
    table.add("stock updates", shape["stock_actions"])
    table.add("write units (transactional, by item size)", shape["wcu"])
    table.add("write units of one stock take", shape["stock_wcu"])
    section.tables.append(table)
    model = Table(["flash sale, one product", "one stock item", f"{sale['shards']} shards"])
    model.add("checkouts/s", f"{sale['rate']:,.0f}", f"{sale['per_shard_takes']:,.0f} per shard")
    model.add("WCU/s on the hottest item", f"{sale['one_item_wcu']:,.0f}",
              f"{sale['per_shard_wcu']:,.0f}")
    model.add("share of 1,000 WCU/s", f"{sale['one_item_share']:.0%}",
              f"{sale['per_shard_share']:.0%}")
    model.add(f"{sale['units']} units sold out after", f"{sale['sold_out_after_s'] * 1000:.0f} ms",
              f"{sale['units_per_shard']:.1f} units per shard")
    model.add("reads/s per shard once sold out", "-",
              f"{sale['sold_out_reads_per_shard']:,.0f} "
              f"({sale['sold_out_read_share']:.0%} of 3,000 RCU)")
    section.tables.append(model)
    section.data.update(shape=shape, figures=sale)
    section.result = (
        f"{sale['rate']:,.0f} checkouts/s on one stock item would need "
        f"{sale['one_item_wcu']:,.0f} WCU/s ({sale['one_item_share']:.0%} of a partition); "
        f"{sale['shards']} allotment shards keep each at {sale['per_shard_share']:.0%}; "
        f"checkout is {shape['actions']} actions / {shape['wcu']} WCU for one line.")
    section.notes += [
        "Model, not measurement: a shard item takes at most 1,000 WCU/s (its partition's "
        f"limit) / {shape['stock_wcu']} WCU per transactional take = "
        f"{sale['item_takes_per_s']:,.0f} takes/s; K = rate / (that x "
        f"{TARGET_UTILISATION:.0%}), the headroom for a random pick's imbalance and for "
        "transactions conflicting on one item (TransactionConflict, retried in the request).",
        "A cancelled checkout is counted as if it wrote (conservative). Once sold out, "
        f"each of ~{sale['warm_processes']} warm API processes ({sale['rate']:,.0f}/s x "
        f"{LATENCY_S * 1000:.0f} ms) reads the shards once per sold-out memo window and "
        "refuses the product without a write until it ends.",
        "A product's shard count is the catalog file's stockShards column (default 1): "
        "an operator who plans a sale gives its product the K this table states.",
        "Measured on the scaled-down functional test (tests/functional/test_flash_sale.py): "
        "exactly the stock sold, every other checkout a 409, internal retries counted.",
    ]
