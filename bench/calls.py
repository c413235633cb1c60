"""Watch a botocore DynamoDB client: which calls it makes, their parameters, their cost.

Everything is done through the client's event hooks, so the adapter is measured
exactly as it ships:

- `provide-client-params` adds ReturnConsumedCapacity="TOTAL" to every operation
  that takes it, and keeps a copy of the parameters (the overhead bench replays them);
- `before-call` / `after-call` bracket each call and read ConsumedCapacity;
- the first and last `before-send` handlers bracket moto's own work, because
  mock_aws answers the request from a `before-send` handler in-process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan"})


@dataclass
class Call:
    operation: str
    params: dict[str, Any]
    started: float = 0.0
    ended: float = 0.0
    backend_started: float = 0.0
    backend_ended: float = 0.0
    # The same bracket in this thread's CPU time: moto's own work, which a
    # loaded machine does not inflate the way it inflates wall time.
    backend_cpu_started: float = 0.0
    backend_cpu_ended: float = 0.0
    consumed: float | None = None
    response: dict[str, Any] = field(default_factory=dict)
    # Sizes of the items a write touches, read just before it (UnitModel.snapshot).
    before: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def backend_seconds(self) -> float:
        """Time inside the backend (moto), as seen from the client."""
        return max(0.0, self.backend_ended - self.backend_started)

    @property
    def backend_cpu_seconds(self) -> float:
        return max(0.0, self.backend_cpu_ended - self.backend_cpu_started)


class CallRecorder:
    """Record every DynamoDB call a client makes while `active` is true."""

    def __init__(self, client: Any, consumed_capacity: bool = True,
                 units: UnitModel | None = None) -> None:
        self.calls: list[Call] = []
        self._units = units
        self.active = False
        self._pending: Call | None = None
        self._consumed_capacity = consumed_capacity
        events = client.meta.events
        events.register("provide-client-params.dynamodb.*", self._params)
        events.register("before-call.dynamodb.*", self._before_call)
        events.register_first("before-send", self._backend_start)
        events.register_last("before-send", self._backend_end)
        events.register("after-call.dynamodb.*", self._after_call)
        self._client = client

    def detach(self) -> None:
        events = self._client.meta.events
        events.unregister("provide-client-params.dynamodb.*", self._params)
        events.unregister("before-call.dynamodb.*", self._before_call)
        events.unregister("before-send", self._backend_start)
        events.unregister("before-send", self._backend_end)
        events.unregister("after-call.dynamodb.*", self._after_call)

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls

    # -- hooks ----------------------------------------------------------

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        members = model.input_shape.members if model.input_shape else {}
        if self._consumed_capacity and "ReturnConsumedCapacity" in members:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")
        # botocore builds the request from new objects; a shallow copy stays intact.
        call = Call(model.name, dict(params))
        if self._units is not None:
            call.before = self._units.snapshot(call.params, call.operation)
        self._pending = call

    def _before_call(self, model: Any, **_: Any) -> None:
        if self.active and self._pending is not None:
            self._pending.started = time.perf_counter()

    def _backend_start(self, **_: Any) -> None:
        if self.active and self._pending is not None:
            self._pending.backend_started = time.perf_counter()
            self._pending.backend_cpu_started = time.thread_time()

    def _backend_end(self, **_: Any) -> None:
        if self.active and self._pending is not None:
            self._pending.backend_ended = time.perf_counter()
            self._pending.backend_cpu_ended = time.thread_time()

    def _after_call(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        call, self._pending = self._pending, None
        if not self.active or call is None:
            return
        call.ended = time.perf_counter()
        call.response = parsed
        call.consumed = _reported_units(parsed.get("ConsumedCapacity"))
        self.calls.append(call)


def _reported_units(consumed: Any) -> float | None:
    if consumed is None:
        return None
    if isinstance(consumed, list):
        return sum(float(c.get("CapacityUnits", 0)) for c in consumed) if consumed else None
    return float(consumed.get("CapacityUnits", 0))


# -- DynamoDB's item-size and request-unit rules ----------------------------------
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
# and https://aws.amazon.com/dynamodb/pricing/on-demand/ ("Key terms").

def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1 byte."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) or 1
    return math.ceil(significant / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size as DynamoDB bills it: names plus values, in bytes."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(total_size: int, consistent: bool) -> float:
    units = max(1, math.ceil(total_size / 4096))
    return float(units) if consistent else units / 2


class UnitModel:
    """Request units for a recorded call, from item sizes per DynamoDB's rules.

    Writes bill the larger of the item before and after (1 KB units); reads bill
    the summed size of the items read (4 KB units; half for eventually
    consistent); transactions bill each item twice. Item images come from
    `snapshot()` calls made with a separate client, so nothing is counted twice.
    """

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def snapshot(self, call_params: dict[str, Any], operation: str) -> dict[str, int]:
        """Sizes of the items a write will touch, keyed by a key fingerprint."""
        return {fp: item_size(self._get(table, key))
                for fp, table, key in _write_keys(operation, call_params)}

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        response = self._reader.get_item(TableName=table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    def units(self, call: Call) -> tuple[float, float]:
        """(read units, write units) for one call."""
        op, params = call.operation, call.params
        if op in WRITE_OPERATIONS or op in ("TransactWriteItems", "BatchWriteItem"):
            transactional = op == "TransactWriteItems"
            total = 0.0
            factor = 2 if transactional else 1
            for fp, table, key in _write_keys(op, params):
                after = item_size(self._get(table, key))
                total += write_units(max(call.before.get(fp, 0), after)) * factor
            return 0.0, total
        consistent = bool(params.get("ConsistentRead"))
        if op == "GetItem":
            return read_units(item_size(call.response.get("Item")), consistent), 0.0
        if op in ("Query", "Scan"):
            size = sum(item_size(item) for item in call.response.get("Items", []))
            return read_units(size, consistent), 0.0
        if op == "TransactGetItems":
            return sum(2 * read_units(item_size(r.get("Item")), True)
                       for r in call.response.get("Responses", [])), 0.0
        return 0.0, 0.0


def _fingerprint(table: str, key: dict[str, Any]) -> str:
    return table + "|" + "|".join(f"{k}={v}" for k, v in sorted(key.items()))


def _key_of(table: str, params: dict[str, Any]) -> dict[str, Any]:
    if "Key" in params:
        return dict(params["Key"])
    item = params["Item"]
    # The table's key attributes: this app's table uses pk/sk (chalicelib/table.py).
    return {name: item[name] for name in ("pk", "sk") if name in item}


def _write_keys(operation: str, params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    keys: list[tuple[str, str, dict[str, Any]]] = []
    if operation in WRITE_OPERATIONS:
        table = params["TableName"]
        key = _key_of(table, params)
        keys.append((_fingerprint(table, key), table, key))
    elif operation == "TransactWriteItems":
        for action in params["TransactItems"]:
            (_, body), = action.items()
            table = body["TableName"]
            key = _key_of(table, body)
            keys.append((_fingerprint(table, key), table, key))
    elif operation == "BatchWriteItem":
        keys = _batch_write_keys(params)
    return keys


# -- per item: which keys a call touched, and its units on each ---------------------

def query_partition(params: dict[str, Any], response: dict[str, Any]) -> str | None:
    """The partition key value a Query names (`pk = :v`), else its first item's."""
    import re

    condition = str(params.get("KeyConditionExpression", ""))
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for match in re.finditer(r"([#\w]+)\s*=\s*(:\w+)", condition):
        name = names.get(match.group(1), match.group(1))
        value = values.get(match.group(2), {})
        if name == "pk" and "S" in value:
            return str(value["S"])
    items = response.get("Items") or []
    if items and "S" in items[0].get("pk", {}):
        return str(items[0]["pk"]["S"])
    return None


def _batch_write_keys(params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    keys: list[tuple[str, str, dict[str, Any]]] = []
    for table, requests in params.get("RequestItems", {}).items():
        for request in requests:
            if "PutRequest" in request:
                key = _key_of(table, request["PutRequest"])
            else:
                key = dict(request["DeleteRequest"]["Key"])
            keys.append((_fingerprint(table, key), table, key))
    return keys


def _plain(key: dict[str, Any]) -> tuple[str, str]:
    pk, sk = key.get("pk", {}), key.get("sk", {})
    return str(next(iter(pk.values()), "")), str(next(iter(sk.values()), ""))


def item_units(model: UnitModel, call: Call) -> list[tuple[str, str, float, float]]:
    """(pk, sk, read units, write units) per item a call touched; sk "*" for a Query.

    The same rules as UnitModel.units, split by item, so a scale model can say
    which partition key and which item carries the load.
    """
    op, params = call.operation, call.params
    rows: list[tuple[str, str, float, float]] = []
    if op in WRITE_OPERATIONS or op in ("TransactWriteItems", "BatchWriteItem"):
        keys = _write_keys(op, params)
        factor = 2 if op == "TransactWriteItems" else 1
        for fp, table, key in keys:
            after = item_size(model._get(table, key))
            units = write_units(max(call.before.get(fp, 0), after)) * factor
            rows.append((*_plain(key), 0.0, float(units)))
        return rows
    consistent = bool(params.get("ConsistentRead"))
    if op == "GetItem":
        rows.append((*_plain(params["Key"]),
                     read_units(item_size(call.response.get("Item")), consistent), 0.0))
    elif op in ("Query", "Scan"):
        size = sum(item_size(item) for item in call.response.get("Items", []))
        pk = query_partition(params, call.response) if op == "Query" else "*"
        rows.append((pk or "*", "*", read_units(size, consistent), 0.0))
    elif op == "TransactGetItems":
        for action, result in zip(params.get("TransactItems", []),
                                  call.response.get("Responses", []), strict=False):
            rows.append((*_plain(action["Get"]["Key"]),
                         2 * read_units(item_size(result.get("Item")), True), 0.0))
    elif op == "BatchGetItem":
        for table, items in call.response.get("Responses", {}).items():
            strong = bool(params["RequestItems"].get(table, {}).get("ConsistentRead"))
            for item in items:
                rows.append((*_plain(item), read_units(item_size(item), strong), 0.0))
    return rows
