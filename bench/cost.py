"""(9) Cost model: dollars per 1M API requests of the declared mix, everything it pulls in.

The footprint is section 8's (bench/footprint.py, measured on the real code): per
request of the mix, the API function's billed duration, its DynamoDB units and
log bytes; the stream functions' invocations, durations, units and log bytes per
request at the declared rate (bench/scale.py forms the batches). This module only
prices them.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# REPORT; about 100 + 60 + 180 bytes without an init line) and API Gateway's access
# log line (the stage's format, about 350 bytes with request id, IP, route, status,
# latency). Declared.
PLATFORM_LOG_BYTES = 340
ACCESS_LOG_BYTES = 350
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


def lines(fp: Footprint, wl: Workload, result: Result, arch: str) -> dict[str, float]:
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
    log_bytes = (app_log + ACCESS_LOG_BYTES + PLATFORM_LOG_BYTES * (1 + invocations)
                 + stream_log)
    sampled = min(1.0, (XRAY_RESERVOIR_PER_S + XRAY_RATE * max(0.0, rate - 1)) / rate)
    return {
        "API Gateway (REST)": MILLION * price("api_gateway_rest"),
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


def fixed_costs(handlers: list[str], emf_metrics: int) -> Fixed:
    """Alarms and dashboards from the deploy template as built; metrics as measured."""
    alarms = dashboards = 0
    try:
        from deploy import settings, template

        stage = settings.Stage("chalice-cart", "prod", True)
        built = template.merge_template(stage, handlers)
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
    by_arch = {arch: lines(fp, wl, result, arch) for arch in ARCHITECTURES}
    table = Table(["per 1M API requests of the mix", *ARCHITECTURES, "share (arm64)"])
    total = {arch: sum(by_arch[arch].values()) for arch in ARCHITECTURES}
    for line in by_arch["arm64"]:
        table.add(line, *(f"${by_arch[arch][line]:.3f}" for arch in ARCHITECTURES),
                  f"{by_arch['arm64'][line] / total['arm64']:.1%}")
    table.add("**total**", *(f"**${total[arch]:.2f}**" for arch in ARCHITECTURES), "100%")
    fixed = fixed_costs([m.name for m in fp.mappings], int(scale.data.get("emf_metrics", 0)))
    monthly = Table(["fixed, per month", "count", "$ / month"])
    if fixed.alarms < 0:
        monthly.add("alarms, dashboards", "the deploy template could not be built", "?")
    else:
        monthly.add("alarm metrics", fixed.alarms, f"${fixed.alarms * price('alarm_month'):.2f}")
        monthly.add("dashboards", fixed.dashboards,
                    f"${fixed.dashboards * price('dashboard_month'):.2f}")
    monthly.add("EMF custom metrics (as measured)", fixed.metrics,
                f"${fixed.metrics * price('custom_metric_month'):.2f}")
    small = total["arm64"] + max(fixed.monthly(), 0.0) / (SMALL_SHOP_PER_MONTH / MILLION)
    prices = Table(["price", "$", "per", "source", "looked up"])
    for p in PRICES.values():
        prices.add(p.name, f"{p.dollars:.10g}", p.unit, p.source, p.looked_up)
    section.tables += [table, monthly, prices]
    section.data.update(total=total, lines=by_arch, fixed=fixed.monthly())
    saving = 1 - total["arm64"] / total["x86_64"]
    section.result = (
        f"${total['arm64']:.2f} per 1M API requests of the mix on arm64, "
        f"${total['x86_64']:.2f} on x86_64 ({saving:.1%} less); fixed "
        f"${max(fixed.monthly(), 0.0):.2f} a month (a shop of 10M requests a month pays "
        f"${small:.2f} per 1M with it). Largest line: "
        f"{max(by_arch['arm64'], key=lambda k: by_arch['arm64'][k])}.")
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
        f"batch; plus declared {PLATFORM_LOG_BYTES} bytes of Lambda platform lines per "
        f"invocation and a {ACCESS_LOG_BYTES}-byte API Gateway access-log line per request. "
        "Storage after ingestion ($0.03 per GB-month) and data transfer are not included.",
        "Free tiers (Lambda's 1M requests and 400,000 GB-s, CloudWatch's 10 alarms and 3 "
        "dashboards, 5 GB of logs) are left out: at this rate they round to nothing.",
    ]
