"""(9) Cost model: dollars per 1M API requests of the declared mix, everything it pulls in.

The footprint is section 8's (bench/footprint.py, measured on the real code): per
request of the mix, the API function's billed duration, its DynamoDB units and
log bytes; the stream functions' invocations, durations, units and log bytes per
request at the declared rate (bench/scale.py forms the batches). This module only
prices them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from bench import write_budget
from bench.common import Section, Table
from bench.scale import Footprint, Result, Workload, billed_seconds

MILLION = 1_000_000
GB = 1024 ** 3
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    name: str
    dollars: float
    unit: str
    source: str
    looked_up: str


# Every price the model uses, us-east-1, on-demand, first pricing tier, no free tier.
# AWS renders its pricing pages' figures client-side; the stored copies carry the
# units and rules, the figures were cross-checked against secondary sources that
# quote them. Re-check before relying on them.
PRICES: dict[str, Price] = {p.name: p for p in (
    Price("api_gateway_rest", 3.50 / MILLION, "REST API call (first 333M a month)",
          "aws.amazon.com/api-gateway/pricing", "2026-12-01"),
    Price("api_gateway_http", 1.00 / MILLION, "HTTP API call, up to 512 KB (first 300M a month)",
          "aws.amazon.com/api-gateway/pricing", "2026-12-04"),
    Price("lambda_request", 0.20 / MILLION, "invocation",
          "aws.amazon.com/lambda/pricing", "2026-11-25"),
    Price("lambda_gb_s_x86_64", 0.0000166667, "GB-second, x86_64 (first 6B GB-s a month)",
          "aws.amazon.com/lambda/pricing", "2026-11-25"),
    Price("lambda_gb_s_arm64", 0.0000133334, "GB-second, arm64 (first 7.5B GB-s a month)",
          "aws.amazon.com/lambda/pricing; artillery's price table (base arm64 1333340e-10)",
          "2026-12-01"),
    Price("dynamodb_wru", 0.625 / MILLION, "on-demand write request unit",
          "aws.amazon.com/dynamodb/pricing/on-demand (since the 2024-11-01 cut)", "2026-11-25"),
    Price("dynamodb_rru", 0.125 / MILLION, "on-demand read request unit",
          "aws.amazon.com/dynamodb/pricing/on-demand (since the 2024-11-01 cut)", "2026-11-25"),
    Price("streams_lambda_read", 0.0, "GetRecords by a Lambda trigger (free)",
          "aws.amazon.com/dynamodb/pricing/on-demand (\"Change data capture\")", "2026-12-01"),
    Price("logs_ingest", 0.50 / GB, "byte ingested, CloudWatch Logs standard",
          "aws.amazon.com/cloudwatch/pricing", "2026-12-01"),
    Price("xray_trace", 5.00 / MILLION, "trace recorded",
          "aws.amazon.com/xray/pricing", "2026-12-01"),
    Price("alarm_month", 0.10, "standard-resolution alarm metric per month",
          "aws.amazon.com/cloudwatch/pricing", "2026-12-01"),
    Price("dashboard_month", 3.00, "dashboard per month (3 free per account)",
          "aws.amazon.com/cloudwatch/pricing", "2026-12-01"),
    Price("custom_metric_month", 0.30, "custom metric (EMF) per month (first 10,000)",
          "aws.amazon.com/cloudwatch/pricing", "2026-12-01"),
)}
ARCHITECTURES = ("arm64", "x86_64")
# Not measurable here: the lines Lambda itself writes per invocation (START, END,
# REPORT; about 100 + 60 + 180 bytes as text without an init line, more as JSON).
# Declared. Lambda writes its START, END and REPORT lines at INFO: a function whose
# LoggingConfig says JSON with SystemLogLevel WARN gets none of them, and at WARN
# nothing else in a healthy run (deploy/template.py logging_config).
PLATFORM_LOG_BYTES = 340
QUIET_SYSTEM_LOG_LEVELS = ("WARN",)
# API Gateway's access-log line is not measurable here either (neither moto nor the
# local stack writes one): it is the stage's format as deployed (deploy/operations.py
# for REST, deploy/httpapi.py for the HTTP API) rendered with the values of a
# representative request, an add to cart answered 201. Each door's own request id
# (REST a UUID, the HTTP API 16 characters); "-" where API Gateway has no value.
ACCESS_LOG_SAMPLE = {
    "$context.httpMethod": "POST",
    "$context.resourcePath": "/api/cart/items",
    "$context.routeKey": "POST /api/cart/items",
    "$context.status": "201",
    "$context.responseLength": "1187",
    "$context.responseLatency": "48",
    "$context.integrationLatency": "44",
    "$context.integrationStatus": "200",
    "$context.integrationErrorMessage": "-",
    "$context.error.responseType": "-",
    "$context.requestTimeEpoch": "1796444394858",
    "$context.xrayTraceId": "Root=1-5e1b4151-5ac6c58f0b1c1e2a3d4e5f60",
}
ACCESS_LOG_REQUEST_IDS = {"REST": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                          "HTTP API": "JKJaXmPLvHcESHA="}


def access_log_bytes(front_door: str) -> int:
    """Bytes of the stage's access-log line for the representative request."""
    from deploy import httpapi, operations

    formats = {"REST": operations.ACCESS_LOG_FORMAT, "HTTP API": httpapi.ACCESS_LOG_FORMAT}
    values = {**ACCESS_LOG_SAMPLE, "$context.requestId": ACCESS_LOG_REQUEST_IDS[front_door]}
    line = re.sub(r"\$context\.[A-Za-z.]+", lambda m: values[m.group(0)], formats[front_door])
    return len(line.encode("utf-8"))


# Both doors are priced at the larger of the two lines (REST's: a longer request id).
ACCESS_LOG_BYTES = max(access_log_bytes(door) for door in ACCESS_LOG_REQUEST_IDS)
# X-Ray's default sampling rule: the first request each second, then 5%.
XRAY_RESERVOIR_PER_S = 1.0
XRAY_RATE = 0.05
MONTH_SECONDS = 30 * 24 * 3600
SMALL_SHOP_PER_MONTH = 10 * MILLION


def price(name: str) -> float:
    return PRICES[name].dollars


@dataclass(frozen=True)
class Fixed:
    alarms: int
    dashboards: int
    metrics: int

    def monthly(self) -> float:
        return (self.alarms * price("alarm_month") + self.dashboards * price("dashboard_month")
                + self.metrics * price("custom_metric_month"))


FRONT_DOORS = {"REST": "api_gateway_rest", "HTTP API": "api_gateway_http"}
FRONT_DOOR_LINE = "API Gateway (front door)"
TARGET = 4.00  # issue 20: dollars per 1M requests of the mix on the cheaper front door


def platform_log_bytes(logging_config: dict[str, Any] | None) -> int:
    """Bytes of Lambda's own lines per invocation under a function's LoggingConfig."""
    config = logging_config or {}
    if config.get("LogFormat") == "JSON" and config.get("SystemLogLevel") in \
            QUIET_SYSTEM_LOG_LEVELS:
        return 0
    return PLATFORM_LOG_BYTES


@dataclass(frozen=True)
class PlatformLogs:
    """Lambda's own log bytes per invocation, by function, as a template configures them."""

    api: int = PLATFORM_LOG_BYTES
    followups: dict[str, int] = field(default_factory=dict)  # handler -> bytes
    configured: str = "no LoggingConfig (text): START, END and REPORT on every invocation"

    def followup(self, handler: str) -> int:
        return self.followups.get(handler, PLATFORM_LOG_BYTES)


UNCONFIGURED = PlatformLogs()


def lines(fp: Footprint, wl: Workload, result: Result, arch: str,
          front_door: str = "REST", platform: PlatformLogs = UNCONFIGURED) -> dict[str, float]:
    """Dollars per 1M API requests of the mix, by line."""
    rate = result.rate
    gb_s = price(f"lambda_gb_s_{arch}")
    memory_gb = fp.memory_mb / 1024
    api_seconds = sum(share * billed_seconds(fp.operations[n].cpu_seconds,
                                             fp.operations[n].requests, fp)
                      for n, share in wl.mix)
    invocations = result.invocations_per_s / rate  # follow-up invocations per request
    stream_seconds = sum(m.batches_per_s * m.seconds_per_batch for m in result.mappings) / rate
    app_log = sum(share * fp.operations[n].log_bytes for n, share in wl.mix)
    stream_log = sum(m.log_bytes_per_s for m in result.mappings) / rate
    platform_log = (platform.api + sum(m.batches_per_s * platform.followup(m.mapping.name)
                                       for m in result.mappings) / rate)
    log_bytes = app_log + ACCESS_LOG_BYTES + platform_log + stream_log
    sampled = min(1.0, (XRAY_RESERVOIR_PER_S + XRAY_RATE * max(0.0, rate - 1)) / rate)
    return {
        FRONT_DOOR_LINE: MILLION * price(FRONT_DOORS[front_door]),
        "API function: requests": MILLION * price("lambda_request"),
        "API function: duration (GB-s)": MILLION * api_seconds * memory_gb * gb_s,
        "follow-ups: invocations": MILLION * invocations * price("lambda_request"),
        "follow-ups: duration (GB-s)": MILLION * stream_seconds * memory_gb * gb_s,
        "DynamoDB reads (API + follow-ups)": MILLION * result.table.rcu / rate
        * price("dynamodb_rru"),
        "DynamoDB writes (API + follow-ups)": MILLION * result.table.wcu / rate
        * price("dynamodb_wru"),
        "stream reads (Lambda trigger)": 0.0,
        "CloudWatch Logs ingestion": MILLION * log_bytes * price("logs_ingest"),
        "X-Ray traces (default sampling)": MILLION * sampled * (1 + invocations)
        * price("xray_trace"),
    }


def prod_template(handlers: list[str]) -> dict[str, Any] | None:
    """What the deploy merges into prod's template (.chalice/config.json), or None."""
    try:
        from deploy import settings, template

        return template.merge_template(settings.load_stage("prod"), handlers)
    except Exception:  # a template this bench cannot build: the caller says so
        return None


def configured_platform_logs(built: dict[str, Any] | None, handlers: list[str]) -> PlatformLogs:
    """Lambda's own log bytes per invocation, from each function's LoggingConfig."""
    if built is None:
        return dataclasses.replace(UNCONFIGURED, configured="the deploy template could not "
                                   "be built: priced as text logs")
    from deploy import template

    def config(handler: str) -> dict[str, Any] | None:
        resource = built.get("Resources", {}).get(template.logical_id(handler), {})
        found = resource.get("Properties", {}).get("LoggingConfig")
        return found if isinstance(found, dict) else None

    configs = {h: config(h) for h in (template.API_HANDLER, *handlers)}
    described = sorted({json.dumps(c, sort_keys=True) if c else "none (text)"
                        for c in configs.values()})
    return PlatformLogs(
        api=platform_log_bytes(configs[template.API_HANDLER]),
        followups={h: platform_log_bytes(configs[h]) for h in handlers},
        configured="prod's LoggingConfig " + "; ".join(described),
    )


def fixed_costs(built: dict[str, Any] | None, emf_metrics: int) -> Fixed:
    """Alarms and dashboards from the deploy template as built; metrics as measured."""
    alarms = dashboards = 0
    try:
        if built is None:
            raise ValueError("no template")
        for resource in built.get("Resources", {}).values():
            kind = resource.get("Type")
            if kind == "AWS::CloudWatch::Alarm":
                metrics = resource.get("Properties", {}).get("Metrics")
                alarms += len([m for m in metrics if "MetricStat" in m]) if metrics else 1
            elif kind == "AWS::CloudWatch::Dashboard":
                dashboards += 1
    except Exception:  # a template this bench cannot build prices at zero, and says so
        alarms = dashboards = -1
    return Fixed(alarms, dashboards, emf_metrics)


def run(section: Section, results: dict[str, Section] | None = None,
        quick: bool = False) -> None:
    results = results or {}
    scale = results.get("scale")
    if scale is None or scale.error or "footprint" not in scale.data:
        raise RuntimeError("needs the results of section (8), the scale model; see its error")
    fp: Footprint = scale.data["footprint"]
    result: Result = scale.data["result"]
    wl = result.workload
    from bench import peer

    handlers = [m.name for m in fp.mappings]
    built = prod_template(handlers)
    platform = configured_platform_logs(built, handlers)
    by_door = {door: lines(fp, wl, result, "arm64", door, platform) for door in FRONT_DOORS}
    by_arch = {arch: lines(fp, wl, result, arch, "HTTP API", platform)
               for arch in ARCHITECTURES}
    peer_lines = peer.lines(wl)
    table = Table(["per 1M API requests of the mix", *(f"{d}, arm64" for d in FRONT_DOORS),
                   "share (HTTP API)", "HTTP API, x86_64"])
    total = {door: sum(by_door[door].values()) for door in FRONT_DOORS}
    x86 = sum(by_arch["x86_64"].values())
    for line in by_door["REST"]:
        table.add(line.replace("(front door)", "(front door: see columns)"),
                  *(f"${by_door[d][line]:.3f}" for d in FRONT_DOORS),
                  f"{by_door['HTTP API'][line] / total['HTTP API']:.1%}",
                  f"${by_arch['x86_64'][line]:.3f}")
    table.add("**total**", *(f"**${total[d]:.2f}**" for d in FRONT_DOORS), "100%",
              f"**${x86:.2f}**")
    peer_total = sum(peer_lines.values())
    side = Table(["per 1M API requests of the mix", "this design, REST", "this design, HTTP API",
                  f"peer ({peer.SOURCE}), REST"])
    side.add("front door", f"${by_door['REST'][FRONT_DOOR_LINE]:.2f}",
             f"${by_door['HTTP API'][FRONT_DOOR_LINE]:.2f}",
             f"${peer_lines[peer.FRONT_DOOR_LINE]:.2f}")
    side.add("everything else", *(f"${total[d] - by_door[d][FRONT_DOOR_LINE]:.2f}"
                                  for d in FRONT_DOORS),
             f"${peer_total - peer_lines[peer.FRONT_DOOR_LINE]:.2f}")
    side.add("**total**", *(f"**${total[d]:.2f}**" for d in FRONT_DOORS),
             f"**${peer_total:.2f}**")
    befores = [(f"before issue 20 ({scale.data.get('before_20_commit', 'bb62e06')})",
                scale.data.get("before_20")),
               (f"last landing ({scale.data.get('landed_commit') or '4c73628'}: a record in "
                "every write)", scale.data.get("landed"))]
    if any(fp_ is not None for _, fp_ in befores):
        from bench.scale import evaluate

        for label, before_fp in befores:
            if before_fp is None:
                continue
            before_result = evaluate(before_fp, wl)
            before = {d: sum(lines(before_fp, wl, before_result, "arm64", d).values())
                      for d in FRONT_DOORS}
            before_lines = lines(before_fp, wl, before_result, "arm64", "HTTP API")
            side.add(f"{label}, total", *(f"${before[d]:.2f}" for d in FRONT_DOORS), "")
            side.add(f"{label}: DynamoDB writes, reads", *(
                f"${before_lines['DynamoDB writes (API + follow-ups)']:.2f}, "
                f"${before_lines['DynamoDB reads (API + follow-ups)']:.2f}"
                for _ in FRONT_DOORS), "")
        side.add("this code: DynamoDB writes, reads", *(
            f"${by_door[d]['DynamoDB writes (API + follow-ups)']:.2f}, "
            f"${by_door[d]['DynamoDB reads (API + follow-ups)']:.2f}" for d in FRONT_DOORS), "")
    peer_table = Table(["peer, per 1M API requests of the mix", "$"])
    for line, dollars in peer_lines.items():
        peer_table.add(line, f"${dollars:.3f}")
    peer_table.add("**total**", f"**${peer_total:.2f}**")
    fixed = fixed_costs(built, int(scale.data.get("emf_metrics", 0)))
    monthly = Table(["fixed, per month", "count", "$ / month"])
    if fixed.alarms < 0:
        monthly.add("alarms, dashboards", "the deploy template could not be built", "?")
    else:
        monthly.add("alarm metrics", fixed.alarms, f"${fixed.alarms * price('alarm_month'):.2f}")
        monthly.add("dashboards", fixed.dashboards,
                    f"${fixed.dashboards * price('dashboard_month'):.2f}")
    monthly.add("EMF custom metrics (as measured)", fixed.metrics,
                f"${fixed.metrics * price('custom_metric_month'):.2f}")
    cheaper = min(total.values())
    small = cheaper + max(fixed.monthly(), 0.0) / (SMALL_SHOP_PER_MONTH / MILLION)
    prices = Table(["price", "$", "per", "source", "looked up"])
    for p in PRICES.values():
        prices.add(p.name, f"{p.dollars:.10g}", p.unit, p.source, p.looked_up)
    http = by_door["HTTP API"]
    writes_line = "DynamoDB writes (API + follow-ups)"
    allowed = write_budget.budget(TARGET, total["HTTP API"], http[writes_line],
                                  price("dynamodb_wru"))
    writers = write_budget.writers(fp, result)
    spent, budget_sentence = write_budget.table(writers, allowed)
    one_item = write_budget.one_item_estimate(fp, result, writers)
    spent_wru = sum(w.wru for w in writers)
    one_item_total = (total["HTTP API"] - http[writes_line]
                      + MILLION * one_item * price("dynamodb_wru"))
    section.tables += [side, table, spent, peer_table, monthly, prices]
    section.data.update(total=total, lines=by_door, fixed=fixed.monthly(), peer=peer_total,
                        write_budget=allowed, one_item_cart=one_item_total)
    section.result = (
        f"${total['HTTP API']:.2f} per 1M API requests of the mix behind an HTTP API, "
        f"${total['REST']:.2f} behind REST (arm64; x86_64 ${x86:.2f} on the HTTP API); "
        f"target ≤ ${TARGET:.2f} on the cheaper door: "
        f"{'holds' if cheaper <= TARGET else 'misses'}. The peer's design priced alike: "
        f"${peer_total:.2f}. Fixed ${max(fixed.monthly(), 0.0):.2f} a month (a shop of 10M "
        f"requests a month pays ${small:.2f} per 1M with it). Largest line on the HTTP API: "
        f"{max(http, key=lambda k: http[k])}. {budget_sentence}")
    section.notes += [
        f"Mix and rate: section 8's ({wl.rate:,.0f} requests/s; "
        + ", ".join(f"{n} {s:.0%}" for n, s in wl.mix) + "). Follow-up invocations, "
        "their durations and units are per API request at that rate: the batches Lambda "
        "forms there (a slower shop forms smaller batches and pays more invocations per "
        "request).",
        f"Durations: section 8's (CPU measured here, slowed to {fp.memory_mb} MB's share of a "
        f"vCPU, plus an assumed {fp.round_trip_s * 1000:.0f} ms per DynamoDB request); the "
        "same on both architectures, which the GB-s price alone tells apart (Graviton's "
        "per-core speed against this machine's is not measured here).",
        "Logs: the app's own lines (access line, EMF metrics) measured per request and per "
        f"batch, as written (JSON log format leaves stdout lines as they are); Lambda's own "
        f"lines from the template: {platform.configured}, so {platform.api} bytes per API "
        f"invocation and {max(platform.followups.values(), default=PLATFORM_LOG_BYTES)} per "
        f"follow-up invocation ({PLATFORM_LOG_BYTES} declared for START, END and REPORT "
        "below WARN; at WARN Lambda writes nothing in a healthy run, a timeout or crash "
        f"adds its lines; the total before issue 20 is priced with that commit's template, "
        f"which had no LoggingConfig); plus a {ACCESS_LOG_BYTES}-byte API Gateway access-log "
        "line per request. Storage after ingestion ($0.03 per GB-month) and data transfer "
        "are not included.",
        "Free tiers (Lambda's 1M requests and 400,000 GB-s, CloudWatch's 10 alarms and 3 "
        "dashboards, 5 GB of logs) are left out: at this rate they round to nothing.",
        "Front doors: the same app behind API Gateway's REST API ($3.50 per million) or its "
        "HTTP API ($1.00 per million, payload format 1.0); every other line is the same code "
        "and the same footprint. The access-log line is priced at the same declared size on "
        "both; X-Ray traces are the Lambda function's on the HTTP API (the stage itself is "
        "not traced there) at the same default sampling.",
        "Where the writes go (the third table): the table's write units per request split "
        "by who spends them, each item named with the promise it keeps. Every item an "
        "operation writes is there because a standing promise needs it decided by DynamoDB "
        "in that write, and a transaction bills each item twice because the write must "
        "apply once however often the SDK sends it. The target's budget asks for "
        f"{1 - allowed / max(spent_wru, 1e-9):.0%} fewer units.",
        "A cart as one item, estimated from these same measured figures "
        "(bench/write_budget.py one_item_estimate; not built, not measured): its lines in "
        "a map with the count and the header, so that an add writes the cart and its key's "
        "record, a checkout the order, the cart, the key's record and the stock, and a set "
        "or a removal one UpdateItem conditioned on the version read; the stream as it is "
        f"(cart-status's summary and the exact counters stay): {one_item:.2f} write units "
        f"per request, ${one_item_total:.2f} per 1M on the HTTP API, still above "
        f"${TARGET:.2f}. Further down there are only promises to give up: X-Ray tracing on "
        f"prod (${http['X-Ray traces (default sampling)']:.2f}; Lambda samples 1 request a "
        "second plus 5%, not configurable), key records kept apart for 24 hours (kept in "
        "the cart item instead, each keyed write would grow it by its answer for a day, "
        "and a write bills per KB of the item), or counters kept exact by the stream.",
        *peer.notes(),
    ]
