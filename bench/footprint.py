"""Measure what the scale model (bench/scale.py) and the cost model work from.

Everything runs the real code (chalice.test.Client over app.py, the stream
functions invoked as Lambda would) against moto, watched through botocore hooks
(bench/calls.py). It names no key layout and no function: partition keys come
from the Key/pk values the hooks see, normalised by the ids this module created
(carts, products, orders), and the stream functions are whatever app.py
registers with @app.on_dynamodb_record. So it runs on the design before the
scale work and after it alike.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import math
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.calls import Call, CallRecorder, UnitModel, item_units
from bench.common import InProcessStack, in_process_stack
from bench.scale import (
    CART,
    FIRST_ADD,
    LATER_ADD,
    ORDER,
    OTHER_ID,
    PRODUCT,
    SHARD,
    WRITES,
    Access,
    CacheRefill,
    Footprint,
    Mapping,
    MappingRun,
    OperationProfile,
    PipelineRun,
    Workload,
    zipf_weights,
)

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 3
BATCH_SIZES = (10, 40, 100)
# An assumption, not a measurement: a DynamoDB round trip from Lambda in the same
# region ("single-digit millisecond" per the DynamoDB documentation).
ROUND_TRIP_S = 0.005
START = 1_800_000_000.0  # the bench's clock (epoch seconds) when it starts
_RANDOM = re.compile(r"^(?=.*\d)[0-9a-fA-F-]{16,}$|^[A-Za-z0-9_-]{22,}$")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {product}: the line the operation is about
    body: dict[str, Any] | None = None
    keyed: bool = False  # sends an Idempotency-Key, as the shop page does




ROUTES: dict[str, Route] = {
    "shop page": Route("GET", "/"),
    "cart page": Route("GET", "/cart"),
    "status": Route("GET", "/api/cart/status"),
    "display": Route("GET", "/api/cart"),
    "products": Route("GET", "/api/products"),
    "add": Route("POST", "/api/cart/items", {"productId": "{product}", "quantity": 1},
                 keyed=True),
    "set": Route("PUT", "/api/cart/items/{product}", {"quantity": 3}),
    "remove": Route("DELETE", "/api/cart/items/{product}"),
    "checkout": Route("POST", "/api/cart/checkout", keyed=True),
    # beyond the mix (priced apart): a signed-out browser's order history
    "history": Route("GET", "/api/orders"),
}
BEYOND_MIX = ("history", "sign-in merge")


# -- key patterns ---------------------------------------------------------------------

@dataclass
class Ids:
    """The ids this run made: a key naming one of them becomes a pattern."""

    products: dict[str, int] = field(default_factory=dict)  # id -> Zipf rank
    carts: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    # A numbered part (POPULARITY#3) is one of n shards: the numbers seen, per pattern.
    shards: dict[str, set[str]] = field(default_factory=dict)

    def pattern(self, value: str) -> tuple[str, int | None]:
        rank: int | None = None
        tokens = []
        numbers = []
        for token in value.split("#"):
            if token.isdigit():
                tokens.append(SHARD)
                numbers.append(token)
            elif token in self.products:
                rank = self.products[token]
                tokens.append(PRODUCT)
            elif token in self.carts:
                tokens.append(CART)
            elif token in self.orders:
                tokens.append(ORDER)
            elif _RANDOM.match(token):
                tokens.append(OTHER_ID)
            else:
                tokens.append(token)
        pattern = "#".join(tokens)
        if numbers:
            self.shards.setdefault(pattern, set()).add("#".join(numbers))
        return pattern, rank

    def calls_by_pk(self, units: UnitModel, calls: list[Call],
                    into: dict[str, float] | None = None) -> dict[str, float]:
        """Requests per partition-key pattern: a call counts once under each it touched."""
        out = {} if into is None else into
        for call in calls:
            for pk in {a.pk for a in self.accesses(units, [call])}:
                out[pk] = out.get(pk, 0.0) + 1.0
        return out

    def accesses(self, units: UnitModel, calls: list[Call]) -> list[Access]:
        out = []
        for call in calls:
            for pk, sk, rcu, wcu in item_units(units, call):
                pk_pattern, pk_rank = self.pattern(pk)
                sk_pattern, sk_rank = ("*", None) if sk == "*" else self.pattern(sk)
                out.append(Access(pk_pattern, sk_pattern, rcu, wcu, pk_rank or sk_rank))
        return out


def merge(accesses: list[Access], divide: float = 1.0) -> list[Access]:
    """Sum by key pattern and rank, divided (e.g. by the repeats)."""
    summed: dict[tuple[str, str, int | None], list[float]] = {}
    for a in accesses:
        cell = summed.setdefault((a.pk, a.sk, a.rank), [0.0, 0.0])
        cell[0] += a.rcu
        cell[1] += a.wcu
    return [Access(pk, sk, r / divide, w / divide, rank)
            for (pk, sk, rank), (r, w) in summed.items()]


# -- what DynamoDB itself would put on the stream ------------------------------------

def as_dynamodb_emits(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's stream, corrected where it differs from DynamoDB's (facts 5):

    a write that changes nothing emits no record in DynamoDB (moto: a MODIFY),
    and an UpdateItem that creates an item emits one INSERT (moto: two).
    """
    out: list[dict[str, Any]] = []
    for record in records:
        stream = record.get("dynamodb", {})
        if record.get("eventName") == "MODIFY" and stream.get("NewImage") == stream.get(
                "OldImage"):
            continue
        if (out and record.get("eventName") == "INSERT" and out[-1].get("eventName") == "INSERT"
                and out[-1]["dynamodb"].get("Keys") == stream.get("Keys")):
            out[-1] = record
            continue
        out.append(record)
    return out


def _match(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_match(sub, value.get(key)) for key, sub in pattern.items())
    if isinstance(pattern, list):
        return any(_match_rule(rule, value) for rule in pattern)
    return bool(pattern == value)


def _match_rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "prefix" in rule:
            return isinstance(value, str) and value.startswith(rule["prefix"])
        if "exists" in rule:
            return (value is not None) == bool(rule["exists"])
        if "anything-but" in rule:
            banned = rule["anything-but"]
            banned = banned if isinstance(banned, list) else [banned]
            return value is not None and value not in banned
        return False
    return bool(rule == value)


def passes(patterns: tuple[dict[str, Any], ...] | None, record: dict[str, Any]) -> bool:
    """Lambda event filtering: a record is delivered when any pattern matches."""
    return patterns is None or any(_match(p, record) for p in patterns)


class MotoStream:
    """The table's stream read straight from moto's shard, which is then emptied.

    moto deep-copies a table, stream included, for every action of every
    transaction; a stream left to grow makes each transaction slower than the
    last. Sequence numbers keep rising across the trims, as DynamoDB's do.
    """

    def __init__(self, table_name: str, stream_arn: str) -> None:
        self._table = table_name
        self._arn = stream_arn

    def read(self) -> list[dict[str, Any]]:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        from devstack.streams import lambda_record

        # Looked up each time: a failed transaction puts back a copy of the table.
        shard = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[
            self._table].stream_shard
        if shard is None:
            return []
        records = [lambda_record(json.loads(json.dumps(r.to_json(), default=_stamp)), self._arn)
                   for r in shard.items]
        shard.starting_sequence_number += len(shard.items)
        shard.items = []
        return records


class _PartitionCopy:
    """Stands in for the `copy` module inside moto.dynamodb.models.

    Before a transaction moto deep-copies every table it names, to put it back
    if the transaction is cancelled; with the declared 1,000-product catalog
    that copy costs far more than the transaction. This copy shares the items
    the transaction does not name (it cannot change them) and deep-copies the
    ones it does, so a cancelled transaction still leaves moto exactly as it was.
    """

    def __init__(self) -> None:
        self.keys: set[tuple[Any, Any]] = set()

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if not isinstance(value, Table):
            return copy.deepcopy(value, memo)
        clone = copy.copy(value)
        clone.items = copy.copy(value.items)
        for pk, sk in self.keys:
            if pk in value.items:
                partition = clone.items[pk] = dict(value.items[pk])
                if sk in partition:
                    partition[sk] = copy.deepcopy(partition[sk])
        if value.stream_shard is not None:
            clone.stream_shard = copy.copy(value.stream_shard)
            clone.stream_shard.items = list(value.stream_shard.items)
        return clone


@contextlib.contextmanager
def cheaper_moto_transactions() -> Iterator[None]:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType

    shim = _PartitionCopy()
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shim.keys = set()
        for item in transact_items:
            (_, op), = item.items()
            key = op.get("Key") or op.get("Item") or {}
            if "pk" in key and "sk" in key:  # this table's key (chalicelib/table.py)
                shim.keys.add((DynamoType(key["pk"]), DynamoType(key["sk"])))
        original(self, transact_items)

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore
    models.copy = shim  # type: ignore[attr-defined,assignment]
    try:
        yield
    finally:
        models.DynamoDBBackend.transact_write_items = original  # type: ignore
        models.copy = copy  # type: ignore[attr-defined]


def _stamp(value: Any) -> Any:
    # ApproximateCreationDateTime: a datetime in moto, epoch seconds in a Lambda event.
    return value.timestamp()


# -- the stack, watched ------------------------------------------------------------

class _TimedUnits(UnitModel):
    """The unit model's item snapshots run inside the hook: their time is not the app's."""

    def __init__(self, reader: Any) -> None:
        super().__init__(reader)
        self.seconds = 0.0

    def snapshot(self, call_params: dict[str, Any], operation: str) -> dict[str, int]:
        start = time.thread_time()
        try:
            return super().snapshot(call_params, operation)
        finally:
            self.seconds += time.thread_time() - start


class _CountingSink(io.TextIOBase):
    """Counts the bytes written; collects the EMF metrics named (CloudWatch bills each
    metric name and dimension values once a month)."""

    def __init__(self, metrics: set[tuple[str, ...]]) -> None:
        self.bytes = 0
        self.metrics = metrics

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        if '"_aws"' in text:
            for line in text.splitlines():
                self._collect(line)
        return len(text)

    def _collect(self, line: str) -> None:
        try:
            document = json.loads(line[line.index("{"):])
            directives = document["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        for directive in directives:
            for dimensions in directive.get("Dimensions", [[]]):
                values = tuple(f"{d}={document.get(d)}" for d in dimensions)
                for metric in directive.get("Metrics", []):
                    self.metrics.add((str(directive.get("Namespace")), str(metric.get("Name")),
                                      *values))


@contextlib.contextmanager
def counted_logs(metrics: set[tuple[str, ...]] | None = None) -> Iterator[_CountingSink]:
    """Every log line and stdout write (EMF metrics print there), counted, not shown."""
    sink = _CountingSink(set() if metrics is None else metrics)
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    for logger in [logging.root, *loggers]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler):
                swapped.append((handler, handler.setStream(sink)))  # type: ignore[arg-type]
    try:
        with contextlib.redirect_stdout(sink):  # type: ignore[type-var]
            yield sink
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


class Watched:
    """The in-process stack with a call recorder, a stream reader and the ids made."""

    def __init__(self, stack: InProcessStack, workload: Workload, seed: int = 11) -> None:
        import boto3

        self.stack = stack
        self.workload = workload
        self.ids = Ids()
        self.units = _TimedUnits(boto3.client("dynamodb"))
        self.recorder = CallRecorder(stack.dynamodb, units=self.units)
        self.reader = MotoStream(stack.table_name, stack.stream_arn)
        self.rng = random.Random(seed)  # nosec B311: a reproducible sample, not a secret
        self.zipf = zipf_weights(workload.products, workload.zipf_s)
        self.ranked: list[str] = []
        self.mappings = stream_mappings()
        self.patterns = filter_patterns()
        self.metrics: set[tuple[str, ...]] = set()
        # The caches run on this clock: moto's slow answers never age them, and
        # the bench moves time past each lifetime to see what a refill reads.
        self.now = START
        self._use_clock()

    def _use_clock(self) -> None:
        from chalicelib import runtime

        if hasattr(runtime, "use_clock"):
            runtime.use_clock(lambda: self.now)
            return
        # Code before issue 20: its one cache object, built on this clock.
        from chalicelib.services import CatalogCache

        runtime._cache["catalog"] = CatalogCache(clock=lambda: self.now)
        runtime._cache.pop("service", None)

    def rebind(self) -> None:
        """After runtime.reset(): watch the app's new client."""
        from chalicelib import runtime

        self.recorder.detach()
        self.recorder = CallRecorder(runtime.dynamodb_client(), units=self.units)
        self._use_clock()

    def watch(self, op: str, cookie: str | None, product: str | None) -> list[Access]:
        """One request, its accesses."""
        return self.watch_calls(op, cookie, product)[0]

    def watch_calls(self, op: str, cookie: str | None,
                    product: str | None) -> tuple[list[Access], dict[str, float]]:
        """One request: its accesses, and its requests per pk pattern."""
        self.recorder.take()
        self.recorder.active = True
        try:
            self.request(op, cookie, product)
        finally:
            self.recorder.active = False
        calls = self.recorder.take()
        return self.ids.accesses(self.units, calls), self.ids.calls_by_pk(self.units, calls)

    def close(self) -> None:
        self.recorder.detach()

    # -- the catalog ----------------------------------------------------------

    def seed_catalog(self) -> None:
        """The declared catalog: N products cloned from the seed's first, in its own layout."""
        from deploy.catalog import on_sale, seed

        SEED = on_sale(seed())

        client, name = self.stack.dynamodb, self.stack.table_name
        seeded = client.scan(TableName=name, ConsistentRead=True)["Items"]
        template_id = SEED[0].id
        template = [i for i in seeded if template_id in (i["pk"]["S"] + "#" + i["sk"]["S"])]
        width = len(str(self.workload.products))
        for rank in range(1, self.workload.products + 1):
            product_id = f"zipf-{rank:0{width}d}"
            self.ranked.append(product_id)
            self.ids.products[product_id] = rank
            for item in template:
                clone = {k: _replace(v, template_id, product_id, k in ("pk", "sk"))
                         for k, v in item.items()}
                if "name" in clone and "S" in clone["name"]:
                    clone["name"] = {"S": f"Product {rank}"}
                client.put_item(TableName=name, Item=clone)
        for item in seeded:  # the catalog is exactly the declared one
            client.delete_item(TableName=name, Key={"pk": item["pk"], "sk": item["sk"]})
        self.reader.read()

    def service_catalog_expire(self) -> None:
        from chalicelib import runtime

        runtime.cart_service().catalog.expire()

    def seed_counts(self, count: int = 250) -> None:
        """Every product counted in every counter shard, as after a while at scale.

        The counts are read as a whole (a snapshot, or every shard): what a read
        costs depends on how many products have a count, and at the declared
        scale every product has one in every shard, not only the few this run's
        carts hold.
        """
        try:
            from chalicelib import table
            from chalicelib.store.popularity import COUNTER_SHARDS
        except ImportError:
            return
        client, name = self.stack.dynamodb, self.stack.table_name
        items = [{"pk": {"S": table.counter_pk(shard)},
                  "sk": {"S": table.product_sk(product)}, "inCarts": {"N": str(count)}}
                 for shard in range(COUNTER_SHARDS) for product in self.ranked]
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={name: [
                {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
        self.reader.read()

    def zipf_product(self) -> str:
        return self.rng.choices(self.ranked, weights=self.zipf)[0]

    # -- requests ---------------------------------------------------------------

    def request(self, op: str, cookie: str | None, product: str | None = None) -> Any:
        route = ROUTES[op]
        path = route.path.replace("{product}", product or "")
        body = None
        if route.body is not None:
            body = json.dumps({k: (product if v == "{product}" else v)
                               for k, v in route.body.items()})
        headers = {"Content-Type": "application/json"}
        if cookie:
            headers["Cookie"] = cookie
        if route.keyed:
            headers["Idempotency-Key"] = str(uuid.UUID(int=self.rng.getrandbits(128)))
        response = self.stack.client.http.request(route.method, path, headers=headers,
                                                  body=body or b"")
        if response.status_code >= 300:
            raise RuntimeError(f"{op}: HTTP {response.status_code} {response.body!r}")
        if op == "checkout":
            self.ids.orders.add(str(json.loads(response.body)["orderId"]))
        return response

    def cart(self, products: list[str]) -> str:
        """A cart holding one of each product; its cookie."""
        cookie: str | None = None
        for product in products:
            response = self.request("add", cookie, product)
            if cookie is None:
                cookie = str(response.headers["Set-Cookie"].split(";", 1)[0])
                self.ids.carts.add(cookie.split("=", 1)[1].split(".", 1)[0])
        assert cookie is not None  # nosec B101: products is never empty
        return cookie

    # -- the stream -------------------------------------------------------------

    def invoke(self, mapping: Mapping, batch: list[dict[str, Any]],
               run: MappingRun | None) -> None:
        if run is None:
            self.stack.client.lambda_.invoke(mapping.name, {"Records": batch})
            return
        self.recorder.take()
        self.units.seconds = 0.0
        with counted_logs(self.metrics) as sink:
            self.recorder.active = True
            start = time.thread_time()
            self.stack.client.lambda_.invoke(mapping.name, {"Records": batch})
            cpu = time.thread_time() - start
            self.recorder.active = False
        calls = self.recorder.take()
        run.batches += 1
        run.records += len(batch)
        run.requests += len(calls)
        run.cpu_seconds += max(0.0, cpu - self.units.seconds
                               - sum(c.backend_cpu_seconds for c in calls))
        run.log_bytes += sink.bytes
        run.accesses.extend(self.ids.accesses(self.units, calls))
        self.ids.calls_by_pk(self.units, calls, run.calls)

    def drain(self, batch_size: int = 100, runs: dict[str, MappingRun] | None = None,
              rounds: int = 6) -> int:
        """Deliver the stream to every mapping until the follow-ups stop writing."""
        total = 0
        pending = as_dynamodb_emits(self.reader.read())
        for _ in range(rounds):
            if not pending:
                break
            total += len(pending)
            for mapping in self.mappings:
                delivered = [r for r in pending
                             if passes(self.patterns if mapping.filtered else None, r)]
                for start in range(0, len(delivered), batch_size):
                    self.invoke(mapping, delivered[start:start + batch_size],
                                None if runs is None else runs[mapping.name])
            pending = as_dynamodb_emits(self.reader.read())
        return total


def _replace(value: dict[str, Any], old: str, new: str, in_text: bool) -> dict[str, Any]:
    if "S" in value and (value["S"] == old or (in_text and old in value["S"])):
        return {"S": value["S"].replace(old, new)}
    return value


def stream_mappings() -> tuple[Mapping, ...]:
    """The app's stream functions and, where the deploy sets them, their mapping settings."""
    from chalice.app import DynamoDBEventConfig

    from app import app

    settings: dict[str, Any] = {}
    with contextlib.suppress(ImportError, AttributeError):
        from deploy import template

        settings = dict(template.MAPPING_FAILURE_HANDLING)
        # The factor sits beside the failure handling, not in it.
        settings.setdefault("ParallelizationFactor",
                            getattr(template, "PARALLELIZATION_FACTOR", 1))
    filtered = filter_patterns() is not None
    return tuple(
        Mapping(source.name, int(source.batch_size),
                float(source.maximum_batching_window_in_seconds or 0),
                int(settings.get("ParallelizationFactor", 1)), filtered)
        for source in app.event_sources if isinstance(source, DynamoDBEventConfig))


def filter_patterns() -> tuple[dict[str, Any], ...] | None:
    from chalicelib import followups

    patterns = getattr(followups, "STREAM_FILTER_PATTERNS", None)
    return tuple(patterns) if patterns else None


def filters_on_mapping() -> bool:
    """Does the deploy put the filter patterns on the mapping (FilterCriteria)?"""
    with contextlib.suppress(OSError):
        return "FilterCriteria" in (ROOT / "deploy" / "template.py").read_text()
    return False


def memory_mb(stage: str = "prod") -> int:
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((ROOT / ".chalice" / "config.json").read_text())
        return int(config.get("stages", {}).get(stage, {}).get(
            "lambda_memory_size", config.get("lambda_memory_size", 128)))
    return 128


def declared_caches() -> list[tuple[str, float, str]]:
    """(name, lifetime, scope) of every cache the code declares.

    From chalicelib.caching's registry; code without one (before issue 20)
    names its lifetimes *_CACHE_SECONDS in chalicelib.services, per process.
    """
    import importlib

    with contextlib.suppress(ImportError):
        caching = importlib.import_module("chalicelib.caching")
        importlib.import_module("chalicelib.services")  # its caches register on import
        return [(c.name, float(c.seconds), str(c.scope)) for c in caching.registered()]
    services = importlib.import_module("chalicelib.services")
    found = [(name.removesuffix("_CACHE_SECONDS").lower(), float(value), "process")
             for name, value in vars(services).items()
             if re.fullmatch(r"[A-Z_]+_CACHE_SECONDS", name) and isinstance(value, int | float)]
    return sorted(found, key=lambda c: (c[1], c[0]))


# -- the measurements ------------------------------------------------------------

class _Tally:
    """What the measured requests of one operation made, summed over its repeats."""

    def __init__(self) -> None:
        self.accesses: list[Access] = []
        self.by_pk: dict[str, float] = {}
        self.requests = self.cpu = self.records = self.logs = 0.0

    def measure(self, w: Watched, act: Callable[[], object]) -> None:
        """Run `act` (one request) watched: its calls, units, CPU, logs and records."""
        w.recorder.take()
        w.units.seconds = 0.0
        with counted_logs(w.metrics) as sink:
            w.recorder.active = True
            start = time.thread_time()
            act()
            spent = time.thread_time() - start
            w.recorder.active = False
        calls = w.recorder.take()
        self.requests += len(calls)
        self.cpu += max(0.0, spent - w.units.seconds
                        - sum(c.backend_cpu_seconds for c in calls))
        self.logs += sink.bytes
        self.accesses += w.ids.accesses(w.units, calls)
        w.ids.calls_by_pk(w.units, calls, self.by_pk)
        self.records += len(as_dynamodb_emits(w.reader.read()))
        w.drain()

    def profile(self, name: str, repeats: int) -> OperationProfile:
        return OperationProfile(name, merge(self.accesses, repeats), self.requests / repeats,
                                self.cpu / repeats, self.records / repeats,
                                self.logs / repeats,
                                {pk: c / repeats for pk, c in self.by_pk.items()})


def _profile(w: Watched, op: str) -> OperationProfile:
    hot, second, third = w.ranked[0], w.ranked[1], w.ranked[2]
    tally = _Tally()
    # A read does the same every time; moto takes seconds to answer a Query of
    # the whole catalog, so reads are measured once.
    repeats = REPEATS if op in WRITES else 1
    for _ in range(repeats):
        lines = [second, third] if op == "add" else [hot, second] if op in (
            "set", "remove") else [hot, second, third]
        cookie = w.cart(lines)
        w.drain()  # its summary exists, as it would by the time a shopper reads it
        if op not in WRITES:
            # Steady state: a cache whose few seconds ran out during moto's slow
            # answers is refilled here, not in the measured request (refills are
            # counted apart, per container and cache lifetime).
            w.request(op, cookie, hot)
        tally.measure(w, functools.partial(w.request, op, cookie, hot))
    return tally.profile(op, repeats)


def _first_add(w: Watched) -> OperationProfile:
    """A cart's first add (no cookie yet), measured as `_profile` measures an add."""
    tally = _Tally()
    for _ in range(REPEATS):
        tally.measure(w, lambda: w.cart([w.ranked[0]]))
    return tally.profile(FIRST_ADD, REPEATS)


def blend(later: OperationProfile, first: OperationProfile, share: float,
          name: str = "add") -> OperationProfile:
    """`first` in `share` of the requests, `later` in the rest."""
    accesses = [Access(a.pk, a.sk, a.rcu * (1 - share), a.wcu * (1 - share), a.rank)
                for a in later.accesses]
    accesses += [Access(a.pk, a.sk, a.rcu * share, a.wcu * share, a.rank)
                 for a in first.accesses]

    def mean(x: float, y: float) -> float:
        return x * (1 - share) + y * share

    return OperationProfile(
        name, merge(accesses), mean(later.requests, first.requests),
        mean(later.cpu_seconds, first.cpu_seconds), mean(later.records, first.records),
        mean(later.log_bytes, first.log_bytes),
        {pk: mean(later.calls.get(pk, 0.0), first.calls.get(pk, 0.0))
         for pk in set(later.calls) | set(first.calls)})


def _minus(after: list[Access], before: list[Access]) -> list[Access]:
    """What `after` read or wrote beyond `before`, per key pattern."""
    base = {(a.pk, a.sk, a.rank): a for a in merge(before)}
    out = []
    for a in merge(after):
        b = base.get((a.pk, a.sk, a.rank))
        rcu, wcu = a.rcu - (b.rcu if b else 0.0), a.wcu - (b.wcu if b else 0.0)
        if rcu > 1e-9 or wcu > 1e-9:
            out.append(Access(a.pk, a.sk, rcu, wcu, a.rank))
    return out


def _beyond_mix(w: Watched) -> dict[str, OperationProfile]:
    """The order history and the sign-in merge, measured like the mix's operations."""
    from chalicelib import runtime
    from chalicelib.domain import MAX_LINES

    out = {}
    cookie = w.cart([w.ranked[0], w.ranked[1]])
    w.request("checkout", cookie, None)
    w.drain()
    w.recorder.take()
    w.recorder.active = True
    try:
        w.request("history", cookie, None)
    finally:
        w.recorder.active = False
    made = w.recorder.take()
    out["history"] = OperationProfile("history", merge(w.ids.accesses(w.units, made)),
                                      float(len(made)), 0.0, 0.0, 0.0,
                                      w.ids.calls_by_pk(w.units, made))
    with contextlib.suppress(ImportError, TypeError, AttributeError):
        from chalicelib.account_services import CartMerger
        from chalicelib.store.merges import DynamoCartMerges

        repo, catalog = runtime.repository(), runtime.catalog_cache()
        merger = CartMerger(repo.carts, DynamoCartMerges(runtime.dynamodb_client(),
                                                         runtime.table_name()),
                            runtime._history_store(), lambda p: catalog.get(repo, p),
                            max_lines=MAX_LINES)
        anonymous = w.cart([w.ranked[2]])
        w.request("checkout", anonymous, None)
        for product in (w.ranked[0], w.ranked[3]):
            w.request("add", anonymous, product)
        account = w.cart([w.ranked[0]])  # the account's cart holds a line already
        w.drain()
        ids = [c.split("=", 1)[1].split(".", 1)[0] for c in (anonymous, account)]
        w.recorder.take()
        w.recorder.active = True
        try:
            merger.merge(ids[0], ids[1])
        finally:
            w.recorder.active = False
        made = w.recorder.take()
        out["sign-in merge"] = OperationProfile(
            "sign-in merge", merge(w.ids.accesses(w.units, made)), float(len(made)), 0.0,
            float(len(as_dynamodb_emits(w.reader.read()))), 0.0,
            w.ids.calls_by_pk(w.units, made))
        w.drain()
    return out


def _refills(w: Watched) -> list[CacheRefill]:
    """What each declared cache reads when its lifetime has passed, measured.

    For each lifetime (shortest first) every cache is loaded at one moment,
    then the shop page (which reads every cache) is asked again just after
    that lifetime: what it reads beyond a warm request is the refill of every
    cache that lives that long or less; the cache's own share is what the
    previous (shorter) lifetime did not already read.
    """
    cookie = w.cart([w.ranked[1]])
    w.drain()
    refills: list[CacheRefill] = []
    seen: list[Access] = []
    seen_calls: dict[str, float] = {}
    for name, seconds, scope in declared_caches():
        w.now += 3600.0
        w.service_catalog_expire()
        w.watch("shop page", cookie, None)  # every cache loaded now
        warm, warm_calls = w.watch_calls("shop page", cookie, None)
        w.now += seconds + 0.001
        after, after_calls = w.watch_calls("shop page", cookie, None)
        stale = _minus(after, warm)
        stale_calls = {pk: c - warm_calls.get(pk, 0.0) for pk, c in after_calls.items()}
        own_calls = {pk: c - seen_calls.get(pk, 0.0) for pk, c in stale_calls.items()
                     if c - seen_calls.get(pk, 0.0) > 0}
        refills.append(CacheRefill(name, seconds, scope, _minus(stale, seen), own_calls))
        seen, seen_calls = stale, stale_calls
    return refills


def _life_so_far(w: Watched, mix: list[tuple[str, float]], writes_before: int) -> list[str]:
    """The lines a cart holds after the first `writes_before` writes of its life: a first
    add, then adds, sets and removes in the mix's proportions (a set moves no line held,
    so only the adds and removes are kept; a cart is never left empty)."""
    lines = [w.zipf_product()]
    ops = [(name, share) for name, share in mix if name in ("add", "set", "remove")]
    for _ in range(writes_before - 1):
        op = w.rng.choices([n for n, _ in ops], weights=[s for _, s in ops])[0]
        if op == "add":
            product = w.zipf_product()
            if product not in lines:
                lines.append(product)
        elif op == "remove" and len(lines) > 1:
            lines.remove(w.rng.choice(lines))
    return lines


def _pipeline(w: Watched, batch_size: int, writes: int) -> PipelineRun:
    """`writes` user writes in the mix's proportions, each on a cart of its own, then the
    stream: the state the declared workload implies.

    At the declared rate a cart is written every few minutes and a batch spans
    well under a second, so no batch holds two user writes of one cart. A cart's
    life is the workload's writes per cart life, its checkout last: of the
    writes, 1 in that many is a cart's first add, whose record finds no summary
    (measured on new carts; the first adds come out of the add share, so the
    writes keep the mix's proportions); a checkout comes after the rest of the
    life, any other write at a uniformly drawn place in between, on a cart made
    with the lines the writes before it left and summarised, as at scale.
    """
    mix = [(name, share) for name, share in w.workload.mix if name in WRITES]
    life = w.workload.cart_life_writes()
    last = max(2, round(life)) if math.isfinite(life) else 8
    first = round(writes * w.workload.first_write_share())
    taken = first / writes * sum(share for _, share in mix) if writes else 0.0
    later = [(name, max(0.0, share - taken) if name == "add" else share) for name, share in mix]
    planned = []
    for _ in range(writes - first):
        op = w.rng.choices([n for n, _ in later], weights=[s for _, s in later])[0]
        before = last - 1 if op == "checkout" else w.rng.randint(1, max(1, last - 2))
        lines = _life_so_far(w, later, before)
        planned.append((op, w.cart(lines), lines))
    w.drain()
    for op, cookie, lines in planned:
        product = w.zipf_product() if op == "add" else w.rng.choice(lines)
        w.request(op, cookie, product)
    runs = {m.name: MappingRun() for m in w.mappings}
    records = w.drain(batch_size, runs)
    first_runs = {m.name: MappingRun() for m in w.mappings}
    for _ in range(first):
        w.cart([w.zipf_product()])  # a new cart: its first add
    records += w.drain(batch_size, first_runs)
    for name, run in runs.items():
        alone = first_runs[name]
        run.batches += alone.batches
        run.records += alone.records
        run.requests += alone.requests
        run.cpu_seconds += alone.cpu_seconds
        run.log_bytes += alone.log_bytes
        run.accesses = merge(run.accesses + alone.accesses)
        for pk, count in alone.calls.items():
            run.calls[pk] = run.calls.get(pk, 0.0) + count
        alone.accesses = merge(alone.accesses)
    return PipelineRun(batch_size, writes, records, runs, first, first_runs)


def _flash_pipeline(w: Watched, batch_size: int, writes: int) -> PipelineRun:
    """The flash sale's own stream: `writes` user writes of its shoppers, each on a cart
    of its own, every one on the one product (the most popular).

    A shopper adds the product to a new cart (a cart's first add), then checks out.
    The sale has as many checkouts a second as adds and a shopper checks out seconds
    after adding, while a batch spans under a second: a batch holds the adds of some
    shoppers and the checkouts of others. So half the shoppers add and are summarised
    beforehand; then, alternately, a new shopper adds and one of those checks out, and
    the records are delivered in batches of `batch_size`.
    """
    product = w.ranked[0]
    shoppers = max(1, writes // 2)
    waiting = [w.cart([product]) for _ in range(shoppers)]
    w.drain()
    for cookie in waiting:
        w.cart([product])  # a new shopper's first add
        w.request("checkout", cookie, product)
    runs = {m.name: MappingRun() for m in w.mappings}
    records = w.drain(batch_size, runs)
    for run in runs.values():
        run.accesses = merge(run.accesses)
    return PipelineRun(batch_size, 2 * shoppers, records, runs, shoppers)


def _validation_run(w: Watched, requests: int, carts: int = 30) -> Any:
    """The declared mix, driven on a pool of carts; every call counted per pk pattern."""
    from bench.validate import DRAIN_EVERY, SECONDS_PER_REQUEST, Measured, Tally, tally_calls

    run = Measured()
    pool: list[tuple[str, list[str]]] = []
    for _ in range(carts):
        lines = list(dict.fromkeys(w.zipf_product() for _ in range(2)))
        pool.append((w.cart(lines), lines))
    w.drain()
    w.now += 3600.0
    w.service_catalog_expire()
    w.watch("shop page", pool[0][0], None)  # every cache loaded as the run starts
    names, shares = [n for n, _ in w.workload.mix], [s for _, s in w.workload.mix]
    needs_lines = ("set", "remove", "checkout")
    stream_runs = {m.name: MappingRun() for m in w.mappings}
    # Carts written since the stream was last delivered. At the declared rate a cart
    # is written every few minutes and a batch spans under a second, so a cart's next
    # write finds its last one delivered: the stream is delivered before it, as well
    # as every DRAIN_EVERY requests.
    undelivered: set[str] = set()
    done = 0
    while done < requests:
        op = w.rng.choices(names, weights=shares)[0]
        holding = [i for i, (_, lines) in enumerate(pool) if lines]
        if op in needs_lines and not holding:
            continue
        cookie, lines = pool[w.rng.choice(holding if op in needs_lines else range(len(pool)))]
        product = w.rng.choice(lines) if op in ("set", "remove") else w.zipf_product()
        if op in WRITES:
            if cookie in undelivered:
                w.drain(100, stream_runs)
                undelivered.clear()
            undelivered.add(cookie)
        w.recorder.take()
        w.recorder.active = True
        try:
            w.request(op, cookie, product)
        finally:
            w.recorder.active = False
        tally_calls([w.ids.accesses(w.units, [c]) for c in w.recorder.take()], run.api)
        if op == "add" and product not in lines:
            lines.append(product)
        elif op == "remove":
            lines.remove(product)
        elif op == "checkout":
            lines.clear()
        run.ops[op] = run.ops.get(op, 0) + 1
        done += 1
        w.now += SECONDS_PER_REQUEST
        if done % DRAIN_EVERY == 0 or done == requests:
            w.drain(100, stream_runs)
            undelivered.clear()
    for m in stream_runs.values():
        run.batches += m.batches
        run.records += m.records
        for pk, count in m.calls.items():
            run.stream.setdefault(pk, Tally()).requests += count
        for a in m.accesses:
            cell = run.stream.setdefault(a.pk, Tally())
            cell.rcu += a.rcu
            cell.wcu += a.wcu
    run.seconds = done * SECONDS_PER_REQUEST
    return run


@contextlib.contextmanager
def generous_deadlines(seconds: float = 120.0) -> Iterator[None]:
    """A request's retry deadline (chalicelib/store/retry.py) stretched for moto.

    In-process moto on a shared machine answers a transaction in tens to hundreds
    of milliseconds, DynamoDB in a few: the deadline would turn moto's slowness
    into 503s. The bench counts calls and units, which the deadline does not change.
    """
    try:
        from chalicelib.store import retry
    except ImportError:
        yield
        return
    defaults = retry.Deadline.__init__.__defaults__
    assert defaults is not None  # nosec B101: Deadline's parameters all have defaults
    retry.Deadline.__init__.__defaults__ = (seconds, *defaults[1:])
    try:
        yield
    finally:
        retry.Deadline.__init__.__defaults__ = defaults


@contextlib.contextmanager
def metrics_on() -> Iterator[None]:
    """EMF lines printed as in Lambda (off outside it by default), so they are counted."""
    import os

    name = "POWERTOOLS_METRICS_DISABLED"
    saved = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def _progress(started: float, what: str) -> None:
    print(f"    {time.perf_counter() - started:6.1f} s  {what}", file=sys.stderr, flush=True)


def measure(workload: Workload, writes_per_run: int = 150,
            batch_sizes: tuple[int, ...] = BATCH_SIZES,
            validation_requests: int = 0) -> tuple[Footprint, dict[str, Any]]:
    """The footprint of every operation in the mix and of the stream at each batch size."""
    with cheaper_moto_transactions(), metrics_on(), counted_logs(), generous_deadlines(), \
            in_process_stack() as stack:
        w = Watched(stack, workload)
        started = time.perf_counter()
        try:
            w.seed_catalog()
            w.seed_counts()
            _progress(started, f"catalog of {workload.products} products, counted")
            for op in ("shop page", "add", "checkout"):  # first imports, warm caches
                w.request(op, w.cart([w.ranked[0], w.ranked[1]]), w.ranked[0])
            w.drain()
            operations = {}
            for op in ROUTES:
                if op not in BEYOND_MIX:
                    operations[op] = _profile(w, op)
                    _progress(started, f"operation {op}")
            # A cart's first add makes the cart: the adds of the mix are both kinds, in
            # the share the workload's writes per cart life give.
            operations[LATER_ADD] = operations["add"]
            operations[FIRST_ADD] = _first_add(w)
            operations["add"] = blend(operations[LATER_ADD], operations[FIRST_ADD],
                                      workload.first_add_share())
            _progress(started, "a cart's first add")
            operations.update(_beyond_mix(w))
            _progress(started, "history and sign-in merge")
            caches = _refills(w)
            runs = []
            for size in batch_sizes:
                runs.append(_pipeline(w, size, writes_per_run))
                _progress(started, f"stream batches of {size}")
            validation = None
            if validation_requests:
                validation = _validation_run(w, validation_requests)
                _progress(started, f"validation: the mix, {validation_requests} requests")
            # The flash sale last: the runs above draw the same sample as without it.
            flash_runs = []
            for size in batch_sizes:
                flash_runs.append(_flash_pipeline(w, size, writes_per_run))
                _progress(started, f"flash sale: stream batches of {size}")
        finally:
            w.close()
    footprint = Footprint(operations, w.mappings, runs, memory_mb(), ROUND_TRIP_S)
    footprint.shards = {pattern: len(seen) for pattern, seen in w.ids.shards.items()}
    footprint.caches = caches
    footprint.flash_runs = flash_runs
    facts = {"filters_in_code": w.patterns is not None,
             "filters_on_mapping": filters_on_mapping(),
             "python": sys.version.split()[0], "emf_metrics": len(w.metrics),
             "validation": validation}
    return footprint, facts
