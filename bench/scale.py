"""(8) Scale model: the measured footprint of every operation under a Black-Friday load.

Internet scale cannot run on this machine, so it is modelled from what the code
does. bench/footprint.py measures, on the real code under moto, which partition
keys and items each API operation and each stream batch reads and writes, with
their request units, DynamoDB requests, CPU and stream records. This module is
the arithmetic over those figures (pure, unit-tested in tests/unit/test_bench.py):
it applies a declared workload, finds the hottest partition key and item, how
Lambda forms stream batches, the concurrency, and the first limit reached as the
rate grows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# -- the limits (AWS documentation, default quotas) --------------------------------
# Per partition: docs.aws.amazon.com/amazondynamodb/latest/developerguide/
#   bp-partition-key-design.html ("3,000 RCUs or 1,000 WCUs per partition").
PARTITION_RCU = 3000.0
PARTITION_WCU = 1000.0
# docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html:
# on-demand tables, default maximum throughput per table.
TABLE_RCU = 40_000.0
TABLE_WCU = 40_000.0
# docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html ("no more
# than two processes ... reading from the same streams shard at the same time").
READERS_PER_SHARD = 2
# docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html (account default)
# and docs.aws.amazon.com/apigateway/latest/developerguide/limits.html (account
# throttle per region).
LAMBDA_CONCURRENCY = 1000.0
API_GATEWAY_RPS = 10_000.0
# docs.aws.amazon.com/cognito/latest/developerguide/quotas.html: the
# UserAuthentication category (InitiateAuth, ...), default requests per second.
COGNITO_SIGN_INS_RPS = 120.0
# docs.aws.amazon.com/lambda/latest/dg/with-ddb.html: Lambda polls each shard
# "at a base rate of 4 times per second".
POLLS_PER_SECOND = 4.0
# Goal of issue 11: at the declared rate, no key above this share of a limit.
GOAL_SHARE = 0.5
# Goal of issue 20: the table's default on-demand quotas, with this margin.
TABLE_MARGIN = 0.75

CART, PRODUCT, ORDER, OTHER_ID, SHARD = "<cart>", "<product>", "<order>", "<id>", "<n>"


@dataclass(frozen=True)
class Workload:
    """The declared Black-Friday load (issue 11, "A scale model in make bench")."""

    rate: float = 10_000.0
    # 60% page and status reads, 25% adds, 10% changes, 5% checkouts; how the
    # reads and changes split among routes is this model's declaration.
    mix: tuple[tuple[str, float], ...] = (
        ("shop page", 0.15), ("cart page", 0.05), ("status", 0.25),
        ("display", 0.10), ("products", 0.05),
        ("add", 0.25), ("set", 0.07), ("remove", 0.03), ("checkout", 0.05),
    )
    products: int = 1000
    zipf_s: float = 1.1
    carts: int = 1_000_000
    # User writes in one cart's life (0: the mix's writes per checkout, one checkout
    # ending each cart's life). A cart's first write is an add whose stream record
    # finds no summary; the others land on a cart the stream has summarised.
    writes_per_cart: float = 0.0

    def cart_life_writes(self) -> float:
        """User writes per cart life: declared, or the mix's writes per checkout."""
        if self.writes_per_cart:
            return self.writes_per_cart
        shares = dict(self.mix)
        writes = sum(share for name, share in self.mix if name in WRITES)
        return writes / shares["checkout"] if shares.get("checkout") else math.inf

    def first_add_share(self) -> float:
        """The share of adds that are a cart's first write."""
        writes = sum(share for name, share in self.mix if name in WRITES)
        adds = dict(self.mix).get("add", 0.0)
        return self.first_write_share() * writes / adds if adds else 0.0

    def first_write_share(self) -> float:
        """The share of user writes that are a cart's first (an add, on a new cart)."""
        writes = sum(share for name, share in self.mix if name in WRITES)
        adds = dict(self.mix).get("add", 0.0)
        return min(1.0 / self.cart_life_writes(), adds / writes) if writes else 0.0


WRITES = ("add", "set", "remove", "checkout")
# The two adds the footprint measures; "add" is their blend at the workload's share of
# first writes (a cart's first add makes the cart: its header and its first line).
FIRST_ADD, LATER_ADD = "add, a cart's first", "add, to a cart that exists"
SIGN_IN = "sign-in merge"
# Beyond the declared mix, on top of it (declared shares of the request rate):
# shoppers reading their order history, and signing in (each sign-in merges the
# browser's anonymous cart into the account's).
BEYOND: tuple[tuple[str, float], ...] = (("history", 0.02), (SIGN_IN, 0.005))
# The flash sale (issue "checkout a shop can trust"): one product, this many
# checkouts a second, each after an add of it.
FLASH_CHECKOUTS = 5000.0


def zipf_weights(n: int, s: float) -> list[float]:
    """P(rank k) ∝ k^-s over n ranks, rank 1 first."""
    raw = [k ** -s for k in range(1, n + 1)]
    total = sum(raw)
    return [w / total for w in raw]


@dataclass(frozen=True)
class Access:
    """Units one call spent on one item (sk "*": a Query over the partition)."""

    pk: str
    sk: str
    rcu: float
    wcu: float
    rank: int | None = None  # the Zipf rank of the product named in the key


@dataclass
class OperationProfile:
    """One API operation, per request, measured."""

    name: str
    accesses: list[Access]
    requests: float
    cpu_seconds: float
    records: float  # stream records it makes, as DynamoDB would emit them
    log_bytes: float
    # DynamoDB requests per partition-key pattern (a call counts under each it touched)
    calls: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapping:
    """One event source mapping on the table's stream."""

    name: str
    batch_size: int = 100
    window_seconds: float = 0.0
    parallelization: int = 1
    filtered: bool = False


@dataclass
class MappingRun:
    """What one mapping did over one measured pipeline run."""

    batches: int = 0
    records: int = 0  # delivered to it
    accesses: list[Access] = field(default_factory=list)  # summed over the run
    requests: int = 0
    cpu_seconds: float = 0.0
    log_bytes: float = 0.0
    calls: dict[str, float] = field(default_factory=dict)  # requests per pk pattern


@dataclass
class PipelineRun:
    """User writes, then every generation of records through every mapping."""

    batch_size: int
    user_writes: int
    records: int  # every record the run made (user writes and follow-ups)
    mappings: dict[str, MappingRun]
    # Of user_writes, those that were a cart's first write (no summary yet), and what
    # each mapping did for their records alone (included in `mappings`).
    first_writes: int = 0
    first: dict[str, MappingRun] = field(default_factory=dict)


@dataclass
class CacheRefill:
    """One declared cache: what a refill reads, measured, and how often it happens.

    scope "process": each busy container refills it once per lifetime;
    "table": one container refills it for the whole fleet once per lifetime.
    """

    name: str
    seconds: float
    scope: str
    accesses: list[Access]
    calls: dict[str, float] = field(default_factory=dict)  # requests per pk pattern


@dataclass
class Footprint:
    operations: dict[str, OperationProfile]
    mappings: tuple[Mapping, ...]
    runs: list[PipelineRun]  # one per measured batch size
    memory_mb: int
    round_trip_s: float
    one_vcpu_mb: int = 1769
    # What a container whose catalog cache is cold reads, and how long the cache
    # lives (None: no cache, or none found): each busy container refills it once
    # per lifetime.
    refill: list[Access] = field(default_factory=list)
    cache_seconds: float | None = None
    # Patterns with a numbered part (POPULARITY#<n>) and how many numbers were seen:
    # the load is taken as spread evenly over them.
    shards: dict[str, int] = field(default_factory=dict)
    # Every declared cache, measured under a controlled clock (supersedes refill).
    caches: list[CacheRefill] = field(default_factory=list)
    # The flash sale's own stream, measured at each batch size (empty: not measured,
    # and the sale's stream is the mix's relabelled to its product).
    flash_runs: list[PipelineRun] = field(default_factory=list)


# -- where an access's load lands ---------------------------------------------------

def instance(pk: str, sk: str, rank: int | None, zipf: list[float], carts: int,
             sampled: bool, shards: int = 1) -> tuple[str, float, str, float]:
    """(partition instance, share of the access on it, item instance, share).

    An API access names the product the shopper picked, so the most popular
    product takes zipf[0] of it; a sampled (stream) access already happened on
    one product of a Zipf sample, so it lands on that product's rank in full.
    Cart, order and other random keys are spread over the active carts.
    """
    def share(text: str) -> tuple[str, float]:
        if CART in text or ORDER in text or OTHER_ID in text:
            return "one cart", 1.0 / carts
        if PRODUCT in text:
            r = rank or 1
            return f"rank {r}", 1.0 if sampled else zipf[r - 1]
        return "", 1.0

    pk_name, pk_share = share(pk)
    label = pk_name
    if SHARD in pk:  # one of `shards` numbered partitions, written evenly
        label = f"{pk_name}, one of {shards}" if pk_name else f"one of {shards}"
        pk_share /= max(shards, 1)
    if sk == "*":
        return label, pk_share, "*", 0.0
    sk_name, sk_share = share(sk)
    if pk_name:  # the partition already picks the instance; sk narrows it to an item
        sk_share = 1.0 / carts if sk_name == "one cart" and pk_name != "one cart" else 1.0
        return label, pk_share, label, pk_share * sk_share
    return label, pk_share, sk_name or label, pk_share * sk_share


@dataclass
class Load:
    rcu: float = 0.0
    wcu: float = 0.0

    def add(self, rcu: float, wcu: float) -> None:
        self.rcu += rcu
        self.wcu += wcu

    def share(self) -> float:
        return max(self.rcu / PARTITION_RCU, self.wcu / PARTITION_WCU)


Partitions = dict[tuple[str, str], Load]
Items = dict[tuple[str, str, str, str], Load]


def _interpolate(points: list[tuple[float, float]], x: float) -> float:
    points = sorted(points)
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def billed_seconds(cpu_seconds: float, requests: float, fp: Footprint) -> float:
    """CPU slowed to the memory size's share of a vCPU, plus a round trip per
    DynamoDB request, rounded up to the millisecond as Lambda bills."""
    scaled = cpu_seconds * max(1.0, fp.one_vcpu_mb / fp.memory_mb)
    return math.ceil((scaled + requests * fp.round_trip_s) * 1000) / 1000


@dataclass
class MappingState:
    mapping: Mapping
    records_per_s: float = 0.0
    batch: float = 1.0
    batches_per_s: float = 0.0
    seconds_per_batch: float = 0.0
    concurrency: float = 0.0
    shard_utilisation: float = 0.0  # per-shard record rate / what one shard can take
    rcu_per_s: float = 0.0
    wcu_per_s: float = 0.0
    requests_per_s: float = 0.0
    log_bytes_per_s: float = 0.0


@dataclass
class Result:
    workload: Workload
    rate: float
    partitions: Partitions
    items: Items
    shards: int
    mappings: list[MappingState]
    api_concurrency: float
    user_writes_per_s: float
    records_per_user_write: float
    table: Load

    @property
    def hottest_partition(self) -> tuple[tuple[str, str], Load]:
        return max(self.partitions.items(), key=lambda kv: kv[1].share(),
                   default=(("none", ""), Load()))

    @property
    def hottest_item(self) -> tuple[tuple[str, str, str, str], Load]:
        return max(self.items.items(), key=lambda kv: kv[1].share(),
                   default=(("none", "", "", ""), Load()))

    @property
    def invocations_per_s(self) -> float:
        return sum(m.batches_per_s for m in self.mappings)

    @property
    def stream_concurrency(self) -> float:
        return sum(m.concurrency for m in self.mappings)

    @property
    def readers_per_shard(self) -> int:
        return len(self.mappings)

    def utilisation(self) -> dict[str, float]:
        """Each limit's use at this rate: 1.0 is the limit."""
        (_, part) = self.hottest_partition
        (_, item) = self.hottest_item
        use = {
            "API Gateway account throttle (10,000 rps)": self.rate / API_GATEWAY_RPS,
            "Lambda concurrency (account default 1,000)":
                (self.api_concurrency + self.stream_concurrency) / LAMBDA_CONCURRENCY,
            "hottest partition key, reads (3,000 RCU/s)": part.rcu / PARTITION_RCU,
            "hottest partition key, writes (1,000 WCU/s)": part.wcu / PARTITION_WCU,
            "hottest item, writes (1,000 WCU/s)": item.wcu / PARTITION_WCU,
            "table on-demand throughput (40,000 RCU/s)": self.table.rcu / TABLE_RCU,
            "table on-demand throughput (40,000 WCU/s)": self.table.wcu / TABLE_WCU,
            "readers per stream shard (2)": self.readers_per_shard / READERS_PER_SHARD,
        }
        for state in self.mappings:
            use[f"stream shard throughput ({state.mapping.name} keeping up with one shard)"] = \
                state.shard_utilisation
        sign_ins = sum(share for name, share in self.workload.mix if name == SIGN_IN)
        if sign_ins:
            use["Cognito sign-ins (UserAuthentication, 120 rps)"] = \
                self.rate * sign_ins / COGNITO_SIGN_INS_RPS
        return use


def _api(fp: Footprint, wl: Workload, rate: float, zipf: list[float],
         partitions: Partitions, items: Items, table: Load) -> tuple[float, float]:
    concurrency = 0.0
    for name, share in wl.mix:
        op = fp.operations[name]
        op_rate = rate * share
        concurrency += op_rate * billed_seconds(op.cpu_seconds, op.requests, fp)
        _spread(op.accesses, op_rate, zipf, wl.carts, False, partitions, items, table,
                fp.shards)
    if fp.caches:
        for cache, per_s in refill_rates(fp, wl, rate, concurrency):
            _spread(cache.accesses, per_s, zipf, wl.carts, False, partitions, items, table,
                    fp.shards)
    elif fp.refill and fp.cache_seconds:
        _spread(fp.refill, concurrency / fp.cache_seconds, zipf, wl.carts, False,
                partitions, items, table, fp.shards)
    writes = sum(rate * share for name, share in wl.mix if name in WRITES)
    return concurrency, writes


def refill_rates(fp: Footprint, wl: Workload, rate: float,
                 concurrency: float) -> list[tuple[CacheRefill, float]]:
    """Refills per second of each cache across the fleet.

    A stale cache is refilled by the next request that reads it: a container
    refills a per-process cache every lifetime plus the wait for that request
    (its share of the reading requests); one container refills a per-table
    cache for all, every lifetime plus the wait for the next look at it.
    """
    from bench.read_paths import READ_VIA, reads

    rates: dict[str, float] = {}
    out: list[tuple[CacheRefill, float]] = []
    containers = max(concurrency, 1.0)
    for cache in sorted(fp.caches, key=lambda c: c.scope != "process"):
        if cache.scope == "process":
            reading = rate * sum(share for op, share in wl.mix if reads(op, cache.name))
            per_container = reading / containers
            per_s = containers / (cache.seconds + 1 / per_container) if per_container else 0.0
        else:
            looks = rates.get(READ_VIA.get(cache.name, ""), rate)
            per_s = 1 / (cache.seconds + 1 / looks) if looks else 0.0
        rates[cache.name] = per_s
        out.append((cache, per_s))
    return out


def _spread(accesses: Iterable[Access], multiplier: float, zipf: list[float], carts: int,
            sampled: bool, partitions: Partitions, items: Items, table: Load,
            shards: dict[str, int] | None = None) -> None:
    for a in accesses:
        table.add(a.rcu * multiplier, a.wcu * multiplier)
        pk_name, pk_share, item_name, item_share = instance(
            a.pk, a.sk, a.rank, zipf, carts, sampled, (shards or {}).get(a.pk, 1))
        partitions.setdefault((a.pk, pk_name), Load()).add(
            a.rcu * multiplier * pk_share, a.wcu * multiplier * pk_share)
        if a.sk != "*":
            items.setdefault((a.pk, pk_name, a.sk, item_name), Load()).add(
                a.rcu * multiplier * item_share, a.wcu * multiplier * item_share)


def _per_record(fp: Footprint, name: str, attr: Callable[[MappingRun], float]
                ) -> Callable[[float], float]:
    points = [(float(run.batch_size), attr(run.mappings[name]) / run.mappings[name].records)
              for run in fp.runs if run.mappings[name].records]
    return lambda b: _interpolate(points, b) if points else 0.0


def _nearest_run(fp: Footprint, batch: float) -> PipelineRun:
    return min(fp.runs, key=lambda run: abs(math.log(run.batch_size) - math.log(max(batch, 1))))


def evaluate(fp: Footprint, wl: Workload, rate: float | None = None) -> Result:
    """The workload at `rate` requests/s (default: the workload's own)."""
    rate = wl.rate if rate is None else rate
    zipf = zipf_weights(wl.products, wl.zipf_s)
    shards = 1
    for _ in range(30):  # shards follow the table's throughput; batches follow shards
        partitions: Partitions = {}
        items: Items = {}
        table = Load()
        api_concurrency, writes = _api(fp, wl, rate, zipf, partitions, items, table)
        states, records = _stream(fp, wl, writes, shards, zipf, partitions, items, table)
        needed = max(1, math.ceil(table.rcu / PARTITION_RCU + table.wcu / PARTITION_WCU))
        if needed == shards:
            break
        shards = needed
    return Result(wl, rate, partitions, items, shards, states, api_concurrency, writes,
                  records, table)


def _stream(fp: Footprint, wl: Workload, writes: float, shards: int, zipf: list[float],
            partitions: Partitions, items: Items,
            table: Load) -> tuple[list[MappingState], float]:
    states: list[MappingState] = []
    records_per_write = 0.0
    for mapping in fp.mappings:
        state = MappingState(mapping)
        cpu = _per_record(fp, mapping.name, lambda r: r.cpu_seconds)
        requests = _per_record(fp, mapping.name, lambda r: float(r.requests))
        logs = _per_record(fp, mapping.name, lambda r: r.log_bytes)
        delivered = [(float(run.batch_size), run.mappings[mapping.name].records / run.user_writes)
                     for run in fp.runs if run.user_writes]
        batch = float(mapping.batch_size)
        for _ in range(30):  # the batch Lambda forms depends on how long one takes
            state.records_per_s = writes * _interpolate(delivered, batch)
            per_shard = state.records_per_s / shards
            seconds = billed_seconds(cpu(batch) * batch, requests(batch) * batch, fp)
            wait = max(mapping.window_seconds, 1.0 / POLLS_PER_SECOND,
                       seconds / mapping.parallelization)
            new = min(float(mapping.batch_size), max(1.0, per_shard * wait))
            if abs(new - batch) < 1e-6:
                break
            batch = new
        state.batch = batch
        state.seconds_per_batch = billed_seconds(cpu(batch) * batch, requests(batch) * batch, fp)
        state.batches_per_s = state.records_per_s / batch if batch else 0.0
        state.concurrency = min(state.batches_per_s * state.seconds_per_batch,
                                float(shards * mapping.parallelization))
        full = billed_seconds(cpu(mapping.batch_size) * mapping.batch_size,
                              requests(mapping.batch_size) * mapping.batch_size, fp)
        capacity = mapping.parallelization * mapping.batch_size / max(full, 1e-9)
        state.shard_utilisation = (state.records_per_s / shards) / capacity
        state.requests_per_s = requests(batch) * state.records_per_s
        state.log_bytes_per_s = logs(batch) * state.records_per_s
        run = _nearest_run(fp, batch)
        mrun = run.mappings[mapping.name]
        if mrun.records:
            per_record = state.records_per_s / mrun.records
            _spread(mrun.accesses, per_record, zipf, wl.carts, True, partitions, items, table,
                    fp.shards)
            state.rcu_per_s = sum(a.rcu for a in mrun.accesses) * per_record
            state.wcu_per_s = sum(a.wcu for a in mrun.accesses) * per_record
        states.append(state)
        records_per_write = run.records / run.user_writes if run.user_writes else 0.0
    return states, records_per_write


def first_limit(fp: Footprint, wl: Workload, low: float = 1.0,
                high: float = 10_000_000.0) -> list[tuple[str, float]]:
    """Each limit and the request rate at which it is reached, lowest first.

    A limit already reached at the lowest rate (a third reader on a shard) is
    reported at 0: it does not wait for load.
    """
    at_low = evaluate(fp, wl, low).utilisation()
    names = list(at_low)
    reached: list[tuple[str, float]] = []
    for name in names:
        if at_low[name] >= 1.0:
            reached.append((name, 0.0))
            continue
        if evaluate(fp, wl, high).utilisation().get(name, 0.0) < 1.0:
            continue
        lo, hi = low, high
        for _ in range(40):  # bisection on a log scale
            mid = math.sqrt(lo * hi)
            if evaluate(fp, wl, mid).utilisation().get(name, 0.0) >= 1.0:
                hi = mid
            else:
                lo = mid
        reached.append((name, hi))
    return sorted(reached, key=lambda kv: kv[1])


def with_beyond(fp: Footprint, wl: Workload) -> Workload | None:
    """The declared mix plus the history reads and sign-ins, when they were measured."""
    extra = tuple((name, share) for name, share in BEYOND if name in fp.operations)
    return dataclasses.replace(wl, mix=wl.mix + extra) if extra else None


def flash_footprint(fp: Footprint, stock_shards: int) -> Footprint:
    """The footprint as a flash sale sees it: every product access of the API is the
    sale's product, the stream is the sale's own measured batches (when measured; else
    the mix's with every product access relabelled to it), and a product's numbered
    stock items are `stock_shards`."""
    def one(accesses: list[Access]) -> list[Access]:
        return [dataclasses.replace(a, rank=1 if a.rank else None) for a in accesses]

    runs = [PipelineRun(r.batch_size, r.user_writes, r.records, {
        name: dataclasses.replace(m, accesses=one(m.accesses)) for name, m in r.mappings.items()})
        for r in (fp.flash_runs or fp.runs)]
    shards = {pattern: (stock_shards if "STOCK" in pattern else n)
              for pattern, n in fp.shards.items()}
    return dataclasses.replace(fp, runs=runs, shards=shards)


def flash_workload(wl: Workload) -> Workload:
    """An add and a checkout of one product per shopper; Zipf steep enough that the
    first product takes every pick."""
    return dataclasses.replace(wl, rate=2 * FLASH_CHECKOUTS,
                               mix=(("add", 0.5), ("checkout", 0.5)), zipf_s=60.0)


def stock_shards_needed(fp: Footprint, wl: Workload, high: int = 100) -> int | None:
    """The fewest stock shards keeping every key of the sale at or under GOAL_SHARE."""
    if not any("STOCK" in a.pk for a in fp.operations["checkout"].accesses):
        return None
    for k in range(1, high + 1):
        (_, part) = evaluate(flash_footprint(fp, k), flash_workload(wl)).hottest_partition
        if part.share() <= GOAL_SHARE:
            return k
    return high


def describe_key(pk: str, instance_name: str) -> str:
    return f"{pk} ({instance_name})" if instance_name else pk


def summary(result: Result) -> dict[str, Any]:
    (ppk, pname), part = result.hottest_partition
    (ipk, iname, isk, sname), item = result.hottest_item
    return {
        "hottest_partition": describe_key(ppk, pname),
        "partition_rcu": part.rcu, "partition_wcu": part.wcu,
        "hottest_item": f"{describe_key(ipk, iname)} / {isk}"
                        + (f" ({sname})" if sname and sname != iname else ""),
        "item_rcu": item.rcu, "item_wcu": item.wcu,
        "shards": result.shards, "readers_per_shard": result.readers_per_shard,
        "records_per_user_write": result.records_per_user_write,
        "invocations_per_user_write": result.invocations_per_s / result.user_writes_per_s
        if result.user_writes_per_s else 0.0,
        "api_concurrency": result.api_concurrency,
        "stream_concurrency": result.stream_concurrency,
    }


# -- a footprint kept as JSON: the design before issue 11, measured once -------------

def footprint_to_json(fp: Footprint, facts: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    return {"footprint": dataclasses.asdict(fp), "facts": facts}


def footprint_from_json(data: dict[str, Any]) -> tuple[Footprint, dict[str, Any]]:
    raw = dict(data["footprint"])

    def accesses(rows: list[dict[str, Any]]) -> list[Access]:
        return [Access(**row) for row in rows]

    operations = {name: OperationProfile(**{**op, "accesses": accesses(op["accesses"])})
                  for name, op in raw["operations"].items()}
    def mapping_runs(rows: dict[str, Any]) -> dict[str, MappingRun]:
        return {name: MappingRun(**{**m, "accesses": accesses(m["accesses"])})
                for name, m in rows.items()}

    def pipeline_runs(rows: list[dict[str, Any]]) -> list[PipelineRun]:
        return [PipelineRun(run["batch_size"], run["user_writes"], run["records"],
                            mapping_runs(run["mappings"]), run.get("first_writes", 0),
                            mapping_runs(run.get("first", {}))) for run in rows]

    runs = pipeline_runs(raw["runs"])
    fp = Footprint(operations, tuple(Mapping(**m) for m in raw["mappings"]), runs,
                   raw["memory_mb"], raw["round_trip_s"], raw["one_vcpu_mb"],
                   accesses(raw["refill"]), raw["cache_seconds"], raw.get("shards", {}),
                   [CacheRefill(c["name"], c["seconds"], c["scope"], accesses(c["accesses"]),
                                c.get("calls", {})) for c in raw.get("caches", [])],
                   pipeline_runs(raw.get("flash_runs", [])))
    return fp, dict(data["facts"])


# -- the report (section 7 of make bench) ---------------------------------------------

BASELINE = "scale-before.json"  # bench/: the figures of the design before issue 11
# bench/: the design before issue 20 (commit bb62e06), measured by this model
BASELINE_20 = "scale-before-20.json"
# bench/: the last landing before issue 20's write work (commit 4c73628: exact, every
# write with a request record), measured by this model
BASELINE_LANDED = "scale-before-writes.json"


def _pct(value: float, limit: float) -> str:
    return f"{value:,.0f} ({value / limit:.0%})"


def report(result: Result, limits: list[tuple[str, float]]) -> dict[str, Any]:
    """The figures the document keeps, JSON-ready (also the baseline's shape)."""
    use = result.utilisation()
    top = sorted(result.partitions.items(), key=lambda kv: -kv[1].share())[:5]
    top_items = sorted(result.items.items(), key=lambda kv: -kv[1].share())[:5]
    return {
        **summary(result),
        "rate": result.rate,
        "table_rcu": result.table.rcu, "table_wcu": result.table.wcu,
        "mappings": [{"name": m.mapping.name, "batch": m.batch,
                      "batches_per_s": m.batches_per_s, "ms_per_batch":
                      m.seconds_per_batch * 1000, "concurrency": m.concurrency,
                      "shard_use": m.shard_utilisation, "records_per_s": m.records_per_s,
                      "parallelization": m.mapping.parallelization,
                      "filtered": m.mapping.filtered}
                     for m in result.mappings],
        "partitions": [{"key": describe_key(pk, name), "rcu": load.rcu, "wcu": load.wcu}
                       for (pk, name), load in top],
        "items": [{"key": f"{describe_key(pk, name)} / {sk}", "rcu": load.rcu,
                   "wcu": load.wcu} for (pk, name, sk, _), load in top_items],
        "use": use,
        "limits": [{"limit": name, "rate": rate} for name, rate in limits],
    }


def goal(figures: dict[str, Any]) -> list[tuple[str, bool]]:
    """Issue 11's goal, clause by clause."""
    first = figures["limits"][0]["limit"] if figures["limits"] else ""
    return [
        ("no partition key above 50% of either limit at the declared rate",
         max(figures["partition_rcu"] / PARTITION_RCU,
             figures["partition_wcu"] / PARTITION_WCU) <= GOAL_SHARE),
        ("at most two readers per shard", figures["readers_per_shard"] <= READERS_PER_SHARD),
        ("the first limit reached is an account quota",
         first.startswith(("API Gateway", "Lambda concurrency"))),
        ("the table within 75% of its default quotas (40,000 RCU/s and WCU/s)",
         max(figures["table_rcu"] / TABLE_RCU, figures["table_wcu"] / TABLE_WCU)
         <= TABLE_MARGIN),
    ]


def _rate(rate: float) -> str:
    return "already at any rate" if rate == 0 else f"{rate:,.0f} requests/s"


def per_batch_ms(m: MappingRun, fp: Footprint) -> float:
    batches = max(m.batches, 1)
    return billed_seconds(m.cpu_seconds / batches, m.requests / batches, fp) * 1000


def hottest_share(figures: dict[str, Any]) -> float:
    return float(max(figures["partition_rcu"] / PARTITION_RCU,
                     figures["partition_wcu"] / PARTITION_WCU))


def tables(fp: Footprint, wl: Workload, figures: dict[str, Any],
           before: dict[str, Any] | list[dict[str, Any]] | None) -> list[Any]:
    from bench.common import Table

    ops = Table(["operation", "share", "DynamoDB requests", "RCU", "WCU",
                 "keys (pk / sk)", "stream records", "CPU ms here", "billed ms"])
    for name, share in wl.mix:
        op = fp.operations[name]
        keys = sorted({f"{a.pk} / {a.sk}" for a in op.accesses})
        ops.add(name, f"{share:.0%}", f"{op.requests:g}",
                f"{sum(a.rcu for a in op.accesses):g}", f"{sum(a.wcu for a in op.accesses):g}",
                "<br>".join(keys) or "none", f"{op.records:g}", f"{op.cpu_seconds * 1000:.2f}",
                f"{billed_seconds(op.cpu_seconds, op.requests, fp) * 1000:.0f}")
    stream = Table(["stream function", "batch size measured", "batches", "records delivered "
                    "per user write", "DynamoDB requests per record", "RCU per record",
                    "WCU per record", "billed ms per batch"])
    for run in fp.runs:
        for name, m in run.mappings.items():
            per = max(m.records, 1)
            stream.add(name, run.batch_size, m.batches,
                       f"{m.records / run.user_writes:.2f}", f"{m.requests / per:.2f}",
                       f"{sum(a.rcu for a in m.accesses) / per:.2f}",
                       f"{sum(a.wcu for a in m.accesses) / per:.2f}",
                       f"{per_batch_ms(m, fp):.0f}")
    hot = Table(["at 10,000 requests/s", "key", "RCU/s (of 3,000)", "WCU/s (of 1,000)"])
    for entry in figures["partitions"]:
        hot.add("partition key", entry["key"], _pct(entry["rcu"], PARTITION_RCU),
                _pct(entry["wcu"], PARTITION_WCU))
    for entry in figures["items"][:3]:
        hot.add("item", entry["key"], _pct(entry["rcu"], PARTITION_RCU),
                _pct(entry["wcu"], PARTITION_WCU))
    befores = before if isinstance(before, list) else [before] if before else []
    side = Table(["figure", *(f"before ({b['commit']}: {b.get('label', 'issue 11')})"
                              for b in befores), "this code"])

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> None:
        side.add(label, *(fmt(b) for b in befores), fmt(figures))

    row("hottest partition key", lambda f: f["hottest_partition"])
    row("its RCU/s, share of 3,000", lambda f: _pct(f["partition_rcu"], PARTITION_RCU))
    row("its WCU/s, share of 1,000", lambda f: _pct(f["partition_wcu"], PARTITION_WCU))
    row("hottest item", lambda f: f["hottest_item"])
    row("its RCU/s, WCU/s", lambda f: f"{f['item_rcu']:,.0f}, {f['item_wcu']:,.0f} "
        f"({max(f['item_rcu'] / PARTITION_RCU, f['item_wcu'] / PARTITION_WCU):.0%})")
    row("table RCU/s, WCU/s", lambda f: f"{f['table_rcu']:,.0f}, {f['table_wcu']:,.0f}")
    row("stream shards (≈ partitions)", lambda f: f"{f['shards']}")
    row("readers per shard", lambda f: f"{f['readers_per_shard']}")
    row("stream records per user write", lambda f: f"{f['records_per_user_write']:.2f}")
    row("follow-up invocations per user write",
        lambda f: f"{f['invocations_per_user_write']:.3f}")
    row("batch Lambda forms (records)", lambda f: ", ".join(
        f"{m['name']} {m['batch']:.0f}" for m in f["mappings"]))
    row("ParallelizationFactor to keep up with a shard", lambda f: ", ".join(
        f"{m['name']} {math.ceil(m['shard_use'] * m.get('parallelization', 1))} "
        f"(set: {m.get('parallelization', 1)})" for m in f["mappings"]))
    row("Lambda concurrency: API + stream", lambda f: f"{f['api_concurrency']:.0f} + "
        f"{f['stream_concurrency']:.0f}")
    row("first limit reached", lambda f: (f"{f['limits'][0]['limit']}, "
                                          f"{_rate(f['limits'][0]['rate'])}")
        if f["limits"] else "none below 10M requests/s")
    for clause, _ in goal(figures):
        side.add(f"goal: {clause}", *(("holds" if dict(goal(b))[clause] else "misses")
                                      for b in befores),
                 "holds" if dict(goal(figures))[clause] else "misses")
    limits = Table(["limit", "use at 10,000 requests/s", "reached at"])
    reached = {entry["limit"]: entry["rate"] for entry in figures["limits"]}
    for name, use in sorted(figures["use"].items(), key=lambda kv: reached.get(kv[0], 1e12)):
        limits.add(name, f"{use:.0%}", _rate(reached[name]) if name in reached
                   else "beyond 10M requests/s")
    caches = Table(["cache", "lifetime", "refilled by", "refill RCU", "refill WCU",
                    "keys (pk / sk)", "refills/s at the declared rate", "RCU/s", "WCU/s"])
    concurrency = figures["api_concurrency"]
    for cache, per_s in refill_rates(fp, wl, wl.rate, concurrency):
        rcu, wcu = sum(a.rcu for a in cache.accesses), sum(a.wcu for a in cache.accesses)
        caches.add(cache.name, f"{cache.seconds:g} s",
                   "each container" if cache.scope == "process" else "one container for all",
                   f"{rcu:g}", f"{wcu:g}",
                   "<br>".join(sorted({f"{a.pk} / {a.sk}" for a in cache.accesses})) or "none",
                   f"{per_s:,.1f}", f"{rcu * per_s:,.0f}", f"{wcu * per_s:,.0f}")
    return [side, hot, limits, ops, stream, *([caches] if fp.caches else [])]


def declared_stock_shards() -> int | None:
    """The flash sale's stock shards as the checkout design sets them (bench/flash_sale.py)."""
    import contextlib
    import importlib

    with contextlib.suppress(ImportError, KeyError, TypeError):
        module = importlib.import_module("bench.flash_sale")
        return int(module.figures(rate=FLASH_CHECKOUTS)["shards"])
    return None


def _three(limits: list[tuple[str, float]], unit: str = "requests/s",
           scale: float = 1.0) -> str:
    return "; ".join(f"{i}. {name} at "
                     + ("any rate" if rate == 0 else f"{rate * scale:,.0f} {unit}")
                     for i, (name, rate) in enumerate(limits[:3], 1)) or "none below 10M"


def growth_tables(fp: Footprint, wl: Workload, figures: dict[str, Any]) -> list[Any]:
    """Beyond the mix (history, sign-ins) and the flash sale; the first three limits of each."""
    from bench.common import Table

    out: list[Any] = []
    growth = Table(["workload", "hottest partition key at its declared rate", "share",
                    "first three limits reached as the rate grows"])
    growth.add("the declared mix", figures["hottest_partition"],
               f"{hottest_share(figures):.0%}", _three(
                   [(e["limit"], e["rate"]) for e in figures["limits"]]))
    beyond = with_beyond(fp, wl)
    if beyond is not None:
        ops = Table(["beyond the mix", "share of requests (declared)", "DynamoDB requests",
                     "RCU", "WCU", "keys (pk / sk)", "stream records"])
        for name, share in BEYOND:
            if name in fp.operations:
                op = fp.operations[name]
                ops.add(name, f"{share:.1%}", f"{op.requests:g}",
                        f"{sum(a.rcu for a in op.accesses):g}",
                        f"{sum(a.wcu for a in op.accesses):g}",
                        "<br>".join(sorted({f"{a.pk} / {a.sk}" for a in op.accesses})),
                        f"{op.records:g}")
        out.append(ops)
        extended = report(evaluate(fp, beyond), first_limit(fp, beyond))
        growth.add("the mix + history reads and sign-ins", extended["hottest_partition"],
                   f"{hottest_share(extended):.0%}", _three(
                       [(e["limit"], e["rate"]) for e in extended["limits"]]))
    needed = stock_shards_needed(fp, wl)
    declared = declared_stock_shards()
    shards = declared or needed or 1
    flash_fp, flash_wl = flash_footprint(fp, shards), flash_workload(wl)
    flash = report(evaluate(flash_fp, flash_wl), first_limit(flash_fp, flash_wl))
    growth.add(f"flash sale: one product, {FLASH_CHECKOUTS:,.0f} checkouts/s (and as many "
               f"adds), {shards} stock shard(s)"
               + (" (the checkout design's)" if declared else
                  " (the fewest that keep every key under 50%)" if needed else ""),
               flash["hottest_partition"], f"{hottest_share(flash):.0%}",
               _three([(e["limit"], e["rate"]) for e in flash["limits"]],
                      "checkouts/s", 0.5))
    out.insert(0, growth)
    figures["growth"] = {"flash_shards": shards, "flash_shards_needed": needed,
                         "flash_hottest": flash["hottest_partition"],
                         "flash_share": hottest_share(flash),
                         "flash_limits": flash["limits"][:3],
                         "flash_item": flash["hottest_item"],
                         "flash_item_wcu": flash["item_wcu"]}
    return out


def load_baseline(path: Any) -> tuple[Footprint, dict[str, Any]] | None:
    import json
    from pathlib import Path

    file = Path(path)
    if not file.exists():
        return None
    fp, facts = footprint_from_json(json.loads(file.read_text()))
    return fp, facts


def figures_of(fp: Footprint, facts: dict[str, Any], wl: Workload) -> dict[str, Any]:
    figures = report(evaluate(fp, wl), first_limit(fp, wl))
    figures["facts"] = facts
    figures["commit"] = facts.get("commit", "")
    return figures


def run(section: Any, results: dict[str, Any] | None = None, quick: bool = False,
        baseline_out: Any = None) -> None:
    import json
    from pathlib import Path

    from bench import footprint

    wl = Workload()
    fp, facts = footprint.measure(wl, writes_per_run=40 if quick else 100,
                                  validation_requests=120 if quick else 300)
    measured = facts.pop("validation", None)
    facts["commit"] = _commit()
    if baseline_out:
        Path(baseline_out).write_text(
            json.dumps(footprint_to_json(fp, facts), indent=1, sort_keys=True) + "\n")
    result = evaluate(fp, wl)
    figures = figures_of(fp, facts, wl)
    # The design before issue 11, measured once on its own commit and kept as its
    # footprint: the same arithmetic prices both.
    before = None
    baseline = load_baseline(Path(__file__).resolve().parent / BASELINE)
    if baseline is not None and baseline[1].get("commit") != facts["commit"]:
        before = figures_of(baseline[0], baseline[1], wl)
    # The design before issue 20, measured by this model (caches included) on its commit.
    before_20 = None
    baseline_20 = load_baseline(Path(__file__).resolve().parent / BASELINE_20)
    if baseline_20 is not None and baseline_20[1].get("commit") != facts["commit"]:
        before_20 = {**figures_of(baseline_20[0], baseline_20[1], wl), "label": "issue 20"}
    # The last landing, before issue 20's write units: exact, a record in every write.
    landed = None
    baseline_landed = load_baseline(Path(__file__).resolve().parent / BASELINE_LANDED)
    if baseline_landed is not None and baseline_landed[1].get("commit") != facts["commit"]:
        landed = {**figures_of(baseline_landed[0], baseline_landed[1], wl),
                  "label": "last landing"}
    section.tables += tables(fp, wl, figures, [b for b in (before, before_20, landed) if b])
    section.tables += growth_tables(fp, wl, figures)
    checked = None
    if measured is not None:
        from bench import validate

        table, checked = validate.report(fp, measured)
        section.tables.append(table)
        section.notes.extend(validate.notes(measured, checked))
    section.data.update(footprint=fp, figures=figures, result=result, before=before,
                        emf_metrics=facts.get("emf_metrics", 0),
                        before_20=baseline_20[0] if baseline_20 and before_20 else None,
                        landed=baseline_landed[0] if baseline_landed and landed else None,
                        landed_commit=landed["commit"] if landed else "")
    verdicts = goal(figures)
    first = figures["limits"][0] if figures["limits"] else None
    section.result = (
        f"at {wl.rate:,.0f} requests/s the hottest partition key is "
        f"{figures['hottest_partition']} at "
        f"{hottest_share(figures):.0%} of its limit; "
        f"{figures['readers_per_shard']} reader(s) per shard; limits as the rate grows: "
        + (_three([(e["limit"], e["rate"]) for e in figures["limits"]]) if first else "none")
        + f"; goal {'met' if all(ok for _, ok in verdicts) else 'missed'} "
        f"({', '.join(c for c, ok in verdicts if not ok) or 'every clause holds'})"
        + (f". At the last landing (commit {landed['commit']}, every write with a request "
           f"record): table {landed['table_rcu']:,.0f} RCU/s and {landed['table_wcu']:,.0f} "
           f"WCU/s, first limit {landed['limits'][0]['limit']} at "
           f"{_rate(landed['limits'][0]['rate'])}" if landed and landed["limits"] else "")
        + (f". Before issue 20 (commit {before_20['commit']}, this model): "
           f"{before_20['hottest_partition']} at {hottest_share(before_20):.0%}, table "
           f"{before_20['table_rcu']:,.0f} RCU/s and {before_20['table_wcu']:,.0f} WCU/s, "
           f"first limit {before_20['limits'][0]['limit']} at "
           f"{_rate(before_20['limits'][0]['rate'])}" if before_20 and before_20["limits"]
           else "")
        + (f". Before issue 11 (commit {before['commit']}): {before['hottest_partition']} at "
           f"{hottest_share(before):.0%}, {before['readers_per_shard']} readers per shard, "
           f"first limit {before['limits'][0]['limit']} at "
           f"{_rate(before['limits'][0]['rate'])}." if before and before["limits"] else ".")
        + (f" Validation: {checked}." if checked else ""))
    section.notes += notes(fp, wl, facts, before)


def stream_state(wl: Workload) -> str:
    """The state the stream's batches are measured in, as the workload implies it."""
    writes = wl.rate * sum(share for name, share in wl.mix if name in WRITES)
    life = wl.cart_life_writes()
    declared = (f"declared, {life:g} user writes per cart life" if wl.writes_per_cart else
                f"the mix's {life:g} writes per checkout, one checkout ending each cart's "
                "life: an assumption; a cart that outlives its checkout makes fewer first "
                "writes, and cheaper ones")
    return (f"The stream's state: at {wl.carts:,} active carts a cart is written every "
            f"{wl.carts / writes:,.0f} s on average and a batch spans under a second, so "
            "each measured user write is on a cart of its own. "
            f"{wl.first_write_share():.1%} of them ({declared}) are a cart's first add, "
            "measured on new carts: its record finds no summary, so the function looks for "
            "the holder marks of the design before (a Query) and writes the first summary "
            "with its counters (a transaction). The rest land on carts made and summarised "
            "beforehand with the lines the writes before them in the cart's life left (a "
            "checkout after the rest of the life, any other write at a uniformly drawn place "
            "in it), as a cart's later writes do. The API's adds are priced alike: "
            f"{wl.first_add_share():.0%} of them a cart's first (measured with no cart yet: "
            "it makes the cart's header and first line), the rest to a cart that exists.")


def notes(fp: Footprint, wl: Workload, facts: dict[str, Any],
          before: dict[str, Any] | None) -> list[str]:
    mix = ", ".join(f"{name} {share:.0%}" for name, share in wl.mix)
    return [
        f"Workload (declared): {wl.rate:,.0f} API requests/s; mix {mix}; product choice "
        f"Zipf (s = {wl.zipf_s}) over {wl.products:,} products (the most popular takes "
        f"{zipf_weights(wl.products, wl.zipf_s)[0]:.1%} of product picks); "
        f"{wl.carts:,} active carts, so no one cart is ever hot.",
        "Measured, not assumed: every figure per operation and per stream batch comes from "
        "bench/footprint.py running the real code (chalice.test.Client, the stream functions "
        "invoked as Lambda would) under moto with a catalog of the declared size, watched by "
        "botocore hooks. Keys are the Key/pk values the hooks saw, normalised by the ids the "
        "run made (<cart>, <product> with its Zipf rank, <order>, <id> for other random ids); "
        "request units are computed from item sizes (section 1's rules). The measured "
        "product of each API operation is the most popular one, so its key takes the Zipf "
        "share of that operation; stream batches are built from user writes sampled in the "
        "mix's proportions, with Zipf products, and each product's load lands on its own "
        "rank. " + stream_state(wl),
        "moto's stream is corrected to what DynamoDB emits (a write that changes nothing "
        "emits no record; an UpdateItem that creates an item emits one INSERT, not two). "
        + ("The stream functions' filter patterns (chalicelib.followups) are applied to "
           "what each mapping is given" + (" and the deploy template puts them on the mapping."
                                           if facts.get("filters_on_mapping") else
                                           "; the deploy template does not put them on the "
                                           "mapping yet, so until it does a deployed stack "
                                           "delivers every record.")
           if facts.get("filters_in_code") else "No filter patterns: every mapping is given "
           "every record."),
        "Lambda's batches: each mapping polls each shard 4 times a second; a batch holds "
        "min(batch size, the shard's record rate x max(batching window, 0.25 s, the batch's "
        "duration / ParallelizationFactor)) records; shards ≈ partitions = ceil(table RCU/s "
        "/ 3,000 + WCU/s / 1,000) (an assumption: AWS does not publish the split rule). "
        "Shard throughput is the records/s one shard gets over what its function can take "
        "(ParallelizationFactor x batch size / a full batch's duration).",
        f"Durations: CPU measured here per request or batch (the handler's time minus moto's "
        f"and the bench's own item snapshots), slowed by 1,769 MB / {fp.memory_mb} MB (the "
        f"prod stage's memory; one vCPU at 1,769 MB), plus an assumed "
        f"{fp.round_trip_s * 1000:.0f} ms per DynamoDB request; concurrency = rate x duration "
        "(Little's law).",
        ("Caches: every cache the code declares (chalicelib/caching.py) is measured under a "
         "controlled clock: every cache is loaded at one moment, then the shop page is asked "
         "again just past each lifetime, and what it reads beyond a warm request is that "
         "cache's refill (the caches table). A per-process cache is refilled by every busy "
         "container once per lifetime (at the API's concurrency), a per-table one by one "
         "container for the whole fleet. tests/functional/test_read_paths.py fails when a "
         "route makes a call or keeps a cache the model does not declare."
         if fp.caches else
         "Catalog cache: a container with a cold cache reads "
         f"{sum(a.rcu for a in fp.refill):g} RCU more than a warm one; it lives "
         f"{fp.cache_seconds:g} s, so each busy container refills it once per "
         f"{fp.cache_seconds:g} s (counted at the API's concurrency)."
         if fp.refill and fp.cache_seconds else
         "Catalog cache: no read that a warm container skips was found, or no lifetime "
         "constant; nothing is added for refills."),
        "Limits (AWS defaults): 3,000 RCU / 1,000 WCU per partition (and per item, which "
        "lives in one); on-demand tables 40,000 RCU / 40,000 WCU per table; 2 readers per "
        "stream shard; Lambda concurrency 1,000 per account and region; API Gateway 10,000 "
        "requests/s per account and region. A limit 'already at any rate' is broken by the "
        "design, not by the load. Quotas can be raised on request; the per-partition and "
        "per-shard ones cannot.",
        "Beyond the mix: history reads and sign-ins (each merging the browser's anonymous "
        "cart into the account's) are measured like the mix's operations (the merge called "
        "as sign-in calls it, without Cognito) and added on top of the mix at the declared "
        f"shares ({', '.join(f'{n} {s:.1%}' for n, s in BEYOND)} of requests); Cognito's "
        f"UserAuthentication quota ({COGNITO_SIGN_INS_RPS:.0f} requests/s by default) "
        "limits the sign-ins.",
        f"Flash sale: one product, {FLASH_CHECKOUTS:,.0f} checkouts/s, each shopper adding it "
        "first: the API is the mix's add and checkout figures with every product access on "
        "that one product, its numbered stock items spread evenly over the shards the "
        "checkout design gives it. "
        + ("The stream is measured on the sale's own writes (bench/footprint.py "
           "_flash_pipeline): each shopper adds the product to a new cart, then checks out; "
           "a batch holds the adds of some shoppers and the checkouts of others (as many of "
           "each a second, a shopper checking out seconds after adding), delivered at each "
           "measured batch size, so a batch makes one counter update for the product's net "
           "change, none when its adds and checkouts cancel. "
           if fp.flash_runs else
           "The stream is the mix's with every product access on that product (an upper "
           "bound: a batch of one product's records makes one counter update). ")
        + "An item takes at most 1,000 WCU/s (it lives in one "
        "partition); DynamoDB serialises transactions on one item, so a stock shard also "
        "sees TransactionConflict well before that, which this model does not price.",
        "The 'issue 20' before column is this model (every declared cache measured under a "
        "controlled clock, the counts seeded as at scale) run on commit bb62e06, the code "
        f"before issue 20 (bench/{BASELINE_20}, written by `python -m bench.scale "
        "--baseline-out` in an export of that commit with this bench/ copied in): the model "
        "issue 11 left did not see its 1 s counts cache.",
        *([f"The 'before' column is the same model run on commit {before.get('commit')} "
           f"(bench/{BASELINE}, written by `python -m bench.scale --baseline-out` in a "
           "worktree of that commit with this bench/ copied in)."] if before else []),
    ]


def _commit() -> str:
    import subprocess  # nosec B404: read-only git
    from pathlib import Path

    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"],  # nosec
                            cwd=Path(__file__).resolve().parent, capture_output=True,
                            text=True, check=False)
    return result.stdout.strip()


def _main() -> None:
    import argparse

    from bench.common import Section

    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--baseline-out", help="write the figures as JSON here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    section = Section("scale", "Scale model", "")
    run(section, quick=args.quick, baseline_out=args.baseline_out)
    print(section.markdown())


if __name__ == "__main__":
    _main()
