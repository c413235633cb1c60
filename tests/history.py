"""A Jepsen-style checker for the cart: recorded histories against a sequential model.

Clients record every request and response (`Op`). `check_private` judges one
client's own cart against a sequential model of the cart (lines, the cap,
quantities 1..99, checkout emptying it). A definite answer (2xx, 404, 409)
must be what the model predicts; an indefinite one (503: a timeout cannot know
whether the write landed) may have applied or not, then or later (a stalled
write lands late), so the model keeps every possible state until a read
tells them apart: Knossos's approach, with the set of states kept small by
the reads. `check_shared` judges a cart many clients add to with keys:
adds commute, so what the cart and its orders hold sums exactly the adds
answered 201, plus at most the ones left indefinite.

No IO here: the test (tests/functional/test_history.py) runs the clients.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Cart = frozenset[tuple[str, int]]
MAX_QUANTITY = 99
# A stalled write lands at most this long after its request ended (the fault
# layer's late_seconds, with room); after that it has landed or never will.
LATE_WINDOW = 3.0


@dataclass
class Op:
    client: str
    cart: str                # "private:<n>" or "shared:<n>"
    kind: str                # add, set, remove, checkout, read
    product: str = ""
    quantity: int = 0
    key: str | None = None
    status: int = 0
    body: Any = None
    start: float = 0.0
    end: float = 0.0
    index: int = 0

    @property
    def indefinite(self) -> bool:
        return self.status == 503


@dataclass
class Report:
    operations: int = 0
    indefinite: int = 0
    reads: int = 0
    orders: int = 0
    anomalies: list[str] = field(default_factory=list)

    def add(self, other: Report) -> None:
        self.operations += other.operations
        self.indefinite += other.indefinite
        self.reads += other.reads
        self.orders += other.orders
        self.anomalies.extend(other.anomalies)


def as_cart(lines: dict[str, int]) -> Cart:
    return frozenset(lines.items())


def read_lines(body: Any) -> dict[str, int]:
    return {item["productId"]: item["quantity"] for item in body["items"]}


def bounds_anomalies(op: Op, lines: dict[str, int], max_lines: int) -> list[str]:
    found = []
    if len(lines) > max_lines:
        found.append(f"#{op.index} {op.cart}: a read shows {len(lines)} lines")
    found += [f"#{op.index} {op.cart}: {product} x{quantity} in a read"
              for product, quantity in lines.items()
              if not 1 <= quantity <= MAX_QUANTITY]
    return found


@dataclass(frozen=True)
class Outcome:
    """What one operation does to a cart state: the new state and its observable answer."""

    cart: Cart
    answer: Any


def apply(op: Op, cart: Cart, max_lines: int) -> Outcome:
    lines = dict(cart)
    if op.kind == "add":
        held = lines.get(op.product)
        if held is None and len(lines) >= max_lines:
            return Outcome(cart, ("refused", "lines"))
        if (held or 0) + op.quantity > MAX_QUANTITY:
            return Outcome(cart, ("refused", "quantity"))
        lines[op.product] = (held or 0) + op.quantity
        return Outcome(as_cart(lines), ("line", lines[op.product]))
    if op.kind == "set":
        if op.quantity == 0:
            lines.pop(op.product, None)
            return Outcome(as_cart(lines), ("removed",))
        if op.product not in lines:
            return Outcome(cart, ("not in cart",))
        lines[op.product] = op.quantity
        return Outcome(as_cart(lines), ("line", op.quantity))
    if op.kind == "remove":
        lines.pop(op.product, None)
        return Outcome(as_cart(lines), ("removed",))
    if op.kind == "checkout":
        if not lines:
            return Outcome(cart, ("empty",))
        return Outcome(frozenset(), ("order", cart))
    return Outcome(cart, ("lines", cart))  # read


def observed(op: Op) -> Any:
    """The answer as the model states it, from the recorded response."""
    message = (op.body or {}).get("Message", "") if isinstance(op.body, dict) else ""
    if op.kind == "add":
        if op.status == 201:
            return ("line", op.body["quantity"])
        if op.status == 409:
            return ("refused", "quantity" if "99" in message else "lines")
    if op.kind == "set":
        if op.status == 200:
            return ("line", op.body["quantity"])
        if op.status == 204:
            return ("removed",)
        if op.status == 404:
            return ("not in cart",)
    if op.kind == "remove" and op.status == 204:
        return ("removed",)
    if op.kind == "checkout":
        if op.status == 201:
            return ("order", as_cart({i["productId"]: i["quantity"] for i in op.body["items"]}))
        if op.status == 409:
            return ("empty",)
    if op.kind == "read" and op.status == 200:
        return ("lines", as_cart(read_lines(op.body)))
    return ("unexpected", op.status)


Possibility = tuple[Cart, frozenset[int]]  # the cart, the indefinite ops not applied yet


def check_private(ops: list[Op], max_lines: int) -> tuple[Report, list[Cart]]:
    """One client's cart, its ops in order; the report and the unacknowledged orders'
    possible contents (an indefinite checkout may have placed one)."""
    report = Report(operations=len(ops))
    by_index = {op.index: op for op in ops}
    states: set[Possibility] = {(frozenset(), frozenset())}
    for op in ops:
        if op.kind == "read" and op.status == 200:
            report.reads += 1
            report.anomalies += bounds_anomalies(op, read_lines(op.body), max_lines)
        # Any indefinite op still pending may land before this one.
        states = _closure(states, by_index, max_lines)
        states = {(cart, frozenset(i for i in pending
                                   if op.start <= by_index[i].end + LATE_WINDOW))
                  for cart, pending in states}
        if op.indefinite:
            report.indefinite += 1
            states = {(cart, pending | {op.index}) for cart, pending in states}
            continue
        if op.key is not None:
            # A keyed retry is the same request: it applied once, in its first try or now.
            same = {i for i in by_index if by_index[i].key == op.key}
            states = {(cart, pending - same) for cart, pending in states}
        want = observed(op)
        if want[0] == "unexpected":
            report.anomalies.append(f"#{op.index} {op.cart} {op.kind}: status {op.status}")
            continue
        after = set()
        for cart, pending in states:
            outcome = apply(op, cart, max_lines)
            if outcome.answer == want or (
                    want[0] == outcome.answer[0] == "line" and op.kind == "add"
                    and any(by_index[i].product == op.product for i in pending)):
                after.add((outcome.cart, pending))
        if not after:
            report.anomalies.append(
                f"#{op.index} {op.cart} {op.kind} {op.product} {op.quantity}: answered "
                f"{want}, which no sequential order of the definite ops explains "
                f"(possible carts: {sorted((dict(c) for c, _ in states), key=str)[:3]})")
            if op.kind == "read":
                after = {(want[1], frozenset())}
            else:
                after = states
        if op.kind == "checkout" and op.status == 201:
            report.orders += 1
        states = after
    return report, []


def _closure(states: set[Possibility], ops: dict[int, Op], max_lines: int) -> set[Possibility]:
    """Every state reachable by landing pending indefinite ops, in any order."""
    seen = set(states)
    frontier = list(states)
    while frontier:
        cart, pending = frontier.pop()
        for index in pending:
            landed = (apply(ops[index], cart, max_lines).cart, pending - {index})
            if landed not in seen:
                seen.add(landed)
                frontier.append(landed)
    return seen


def check_shared(ops: list[Op], final: dict[str, int], orders: list[dict[str, int]],
                 max_lines: int) -> Report:
    """Keyed adds commute: the cart plus its orders hold the 201 adds' sum, plus at most
    the indefinite ones'. A refused add (409) applied nothing."""
    report = Report(operations=len(ops), orders=len(orders))
    definite: Counter[str] = Counter()
    maybe: Counter[str] = Counter()
    final_status: dict[str, int] = {}
    for op in ops:  # a key's tries are one request: its last answer is its outcome
        if op.kind == "add" and op.key is not None:
            final_status[op.key] = op.status
    for op in ops:
        if op.kind == "read" and op.status == 200:
            report.reads += 1
            report.anomalies += bounds_anomalies(op, read_lines(op.body), max_lines)
        if op.indefinite:
            report.indefinite += 1
        if op.kind == "add" and op.key is not None and op.status != final_status[op.key]:
            continue
        if op.kind != "add":
            if op.status not in (200, 201, 409, 503):
                report.anomalies.append(f"#{op.index} {op.cart} {op.kind}: status {op.status}")
            continue
        if op.status == 201:
            definite[op.product] += op.quantity
        elif op.indefinite:
            maybe[op.product] += op.quantity
        elif op.status != 409:
            report.anomalies.append(f"#{op.index} {op.cart} add: status {op.status}")
    held: Counter[str] = Counter(final)
    for order in orders:
        held.update(order)
        if len(order) > max_lines or any(q > MAX_QUANTITY for q in order.values()):
            report.anomalies.append(f"{ops[0].cart}: an order of {order}")
    for product in set(held) | set(definite):
        if not definite[product] <= held[product] <= definite[product] + maybe[product]:
            report.anomalies.append(
                f"{ops[0].cart}: {product} held {held[product]} (cart and orders), "
                f"added {definite[product]} for sure and {maybe[product]} maybe")
    return report
