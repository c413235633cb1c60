"""Where the mix's DynamoDB write units go, and what the cost target leaves for them.

Part of section 9 (bench/cost.py). Every figure is the scale model's (section 8:
measured per operation and per stream batch on the real code); this module only
splits the table's write units by who spends them, names the items each writer
writes, and says which standing promise needs each item. The target's budget is
the target minus every other line of the cheaper door's bill, in write units.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import Table
from bench.scale import WRITES, Footprint, Result

# The promise each written item keeps, by the item's key (pk / sk pattern); the
# issue that made it. An item written that is named here by nobody shows "?".
WHY: tuple[tuple[str, str], ...] = (
    ("IDEMPOTENCY#", "a keyed request's answer for 24 h, whatever the operation (16)"),
    ("LINES", "the line cap, decided by DynamoDB in the write that could break it (16)"),
    ("LINE#", "the line"),
    ("ORDER#", "the order: placed by checkout, its own request's record; CONFIRMED by the "
               "stream (2, 16)"),
    ("STOCK", "stock, decided in the checkout's transaction (17)"),
    ("SUMMARY", "cart-status's one GetItem (2); the holdings counted once (11)"),
    ("POPULARITY#", "inCarts, exact: one net ADD per product per batch (2, 20)"),
    ("COUNTS", "the shared counts snapshot and its lease (20)"),
)


def why(pk: str, sk: str) -> str:
    for needle, reason in WHY:
        if needle in sk or (needle.endswith("#") and pk.startswith(needle)):
            return reason
    return "?"


@dataclass(frozen=True)
class Writer:
    name: str
    share: float | None  # of API requests; None for the stream and the caches
    wru: float  # per API request of the mix
    items: tuple[tuple[str, str], ...]


def writers(fp: Footprint, result: Result) -> list[Writer]:
    """The table's write units per API request, by who spends them."""
    rate = result.rate
    out: list[Writer] = []
    for name, share in result.workload.mix:
        op = fp.operations[name]
        wcu = sum(a.wcu for a in op.accesses)
        if name in WRITES or wcu:
            items = tuple(sorted({(a.pk, a.sk) for a in op.accesses if a.wcu}))
            out.append(Writer(name, share, share * wcu, items))
    stream_items = sorted({(a.pk, a.sk) for run in fp.runs for m in run.mappings.values()
                           for a in m.accesses if a.wcu})
    out.append(Writer("stream follow-ups", None,
                      sum(m.wcu_per_s for m in result.mappings) / rate, tuple(stream_items)))
    rest = result.table.wcu / rate - sum(w.wru for w in out)
    if rest > 0.005:
        out.append(Writer("cache refills", None, rest, (("COUNTS", "*"),)))
    return out


def _one_item_cart(wcu: dict[tuple[str, str], float]) -> float:
    """An operation's write units had a cart been one item (its lines in a map, the
    line count and the header in it): its writes to the cart's lines and header
    become one write of that item, in the same transaction as the operation's other
    items, or alone (1 unit: one item needs no transaction to be applied once when
    its write is conditioned on the version it read)."""
    cart = {k: v for k, v in wcu.items() if k[0].startswith("CART#") and k[1].startswith("LINE")}
    others = sum(v for k, v in wcu.items() if k not in cart)
    if not cart:
        return others
    return others + (2.0 if others else 1.0)


def one_item_estimate(fp: Footprint, result: Result, spent: list[Writer]) -> float:
    """Write units per API request under a one-item cart, from the measured figures;
    the stream's and the caches' as `spent` has them (the summary and counters stay)."""
    api = 0.0
    for name, share in result.workload.mix:
        wcu: dict[tuple[str, str], float] = {}
        for a in fp.operations[name].accesses:
            if a.wcu:
                wcu[(a.pk, a.sk)] = wcu.get((a.pk, a.sk), 0.0) + a.wcu
        api += share * _one_item_cart(wcu)
    return api + sum(w.wru for w in spent if w.share is None)


def budget(target: float, total: float, writes_dollars: float, wru_price: float) -> float:
    """Write units per API request the target leaves, every other line as it is."""
    return max(0.0, (target - (total - writes_dollars)) / (1_000_000 * wru_price))


def table(spent: list[Writer], allowed: float) -> tuple[Table, str]:
    """The split (`writers`), and one sentence on it against the budget."""
    total = sum(w.wru for w in spent)
    out = Table(["writer", "share of requests", "WRU per request of the mix", "of the writes",
                 "items it writes (pk / sk)", "the promise each item keeps (issue)"])
    for w in spent:
        out.add(w.name, "" if w.share is None else f"{w.share:.0%}", f"{w.wru:.2f}",
                f"{w.wru / total:.0%}" if total else "-",
                "<br>".join(f"{pk} / {sk}" for pk, sk in w.items) or "none",
                "<br>".join(why(pk, sk) for pk, sk in w.items) or "")
    out.add("**total**", "", f"**{total:.2f}**", "100%", "", "")
    out.add("**the target's budget**", "", f"**{allowed:.2f}**",
            f"{allowed / total:.0%}" if total else "-", "", "")
    sentence = (f"The mix writes {total:.2f} write units per request; the cost target leaves "
                f"{allowed:.2f} for them, every other line as it is "
                f"({'within' if total <= allowed else f'{total - allowed:.2f} over'}).")
    return out, sentence
