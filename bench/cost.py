"""(7) Cost model: dollars per 1M cart operations on AWS, from sections (1) and (2)."""

from __future__ import annotations

import math
from typing import Any

from bench.common import Section, Table

# Public on-demand prices, us-east-1 (US East, N. Virginia), x86, first pricing tier.
# Looked up 2026-11-25 with the project's documentation search (stored copies):
#   Lambda requests  $0.20 per 1M            docs.aws.amazon.com/whitepapers/latest/
#                                            how-aws-pricing-works/lambda.html
#   Lambda duration  $0.0000166667 per GB-s  aws.amazon.com/lambda/pricing/ (x86, first
#                                            6 billion GB-s per month)
#   DynamoDB on-demand, Standard table class, since the 2024-11-01 price cut:
#     $0.625 per 1M write request units, $0.125 per 1M read request units
#                                            aws.amazon.com/dynamodb/pricing/on-demand/
#   CPU: "At 1,769 MB, a function has the equivalent of one vCPU"
#                                            docs.aws.amazon.com/lambda/latest/dg/
#                                            resource-model.html
PRICES_LOOKED_UP = "2026-11-25"
REGION = "us-east-1"
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = 0.0000166667
DYNAMODB_PER_WRU = 0.625 / 1_000_000
DYNAMODB_PER_RRU = 0.125 / 1_000_000
ONE_VCPU_MB = 1769
MEMORY_SIZES = (128, 256)
# An assumption, not a measurement: a DynamoDB round trip from Lambda in the same
# region ("single-digit millisecond" per the DynamoDB documentation).
DYNAMODB_ROUND_TRIP_S = 0.005
MILLION = 1_000_000


def lambda_duration(cpu_seconds: float, requests: int, memory_mb: int) -> float:
    """Billed seconds: CPU slowed to the memory size's share of a vCPU, plus the waits,
    rounded up to the next millisecond."""
    scaled = cpu_seconds * max(1.0, ONE_VCPU_MB / memory_mb)
    return math.ceil((scaled + requests * DYNAMODB_ROUND_TRIP_S) * 1000) / 1000


def per_million(duration_s: float, memory_mb: int, rru: float, wru: float) -> dict[str, float]:
    lambda_requests = MILLION * LAMBDA_PER_REQUEST
    lambda_compute = MILLION * duration_s * memory_mb / 1024 * LAMBDA_PER_GB_SECOND
    dynamodb = MILLION * (rru * DYNAMODB_PER_RRU + wru * DYNAMODB_PER_WRU)
    return {"lambda_requests": lambda_requests, "lambda_compute": lambda_compute,
            "dynamodb": dynamodb, "total": lambda_requests + lambda_compute + dynamodb}


def run(section: Section, results: dict[str, Section] | None = None) -> None:
    results = results or {}
    capacity, overhead = results.get("capacity"), results.get("overhead")
    if capacity is None or overhead is None or capacity.error or overhead.error:
        raise RuntimeError("needs the results of sections (1) and (2); see their errors")
    ops: dict[str, Any] = capacity.data["operations"]
    timing: dict[str, Any] = overhead.data
    headers = ["operation", "requests", "RRU", "WRU", "CPU ms (measured)"]
    for mb in MEMORY_SIZES:
        headers += [f"billed ms @{mb} MB", f"$ / 1M @{mb} MB"]
    table = Table(headers)
    totals = {mb: 0.0 for mb in MEMORY_SIZES}
    shares = {mb: {"lambda_requests": 0.0, "lambda_compute": 0.0, "dynamodb": 0.0}
              for mb in MEMORY_SIZES}
    for name, op in ops.items():
        t = timing[name]
        # app(event) time minus the time moto spent emulating DynamoDB: what the
        # function itself computes (Chalice, the app, botocore).
        cpu = max(0.0, t["cpu_p50"])
        row: list[Any] = [name, op["requests"], f"{op['read_units']:g}",
                          f"{op['write_units']:g}", f"{cpu * 1000:.2f}"]
        for mb in MEMORY_SIZES:
            billed = lambda_duration(cpu, op["requests"], mb)
            cost = per_million(billed, mb, op["read_units"], op["write_units"])
            totals[mb] += cost["total"] / len(ops)
            for part in shares[mb]:
                shares[mb][part] += cost[part] / len(ops)
            row += [f"{billed * 1000:.0f}", f"{cost['total']:.2f}"]
        table.add(*row)
    table.add("**equal mix of the 8**", "", "", "", "",
              *[cell for mb in MEMORY_SIZES for cell in ("", f"**{totals[mb]:.2f}**")])
    parts = Table(["of the equal mix", *(f"@{mb} MB" for mb in MEMORY_SIZES)])
    for part, label in (("lambda_requests", "Lambda requests"),
                        ("lambda_compute", "Lambda duration (GB-s)"),
                        ("dynamodb", "DynamoDB request units")):
        parts.add(label, *(f"${shares[mb][part]:.2f} ({shares[mb][part] / totals[mb]:.0%})"
                           for mb in MEMORY_SIZES))
    section.tables += [table, parts]
    section.data.update(totals=totals)
    section.result = (f"an equal mix of the 8 API operations costs "
                      f"${totals[128]:.2f} per 1M at 128 MB and ${totals[256]:.2f} at 256 MB "
                      f"(Lambda + DynamoDB on-demand, {REGION}, prices of "
                      f"{PRICES_LOOKED_UP}).")
    section.notes += [
        f"Prices ({REGION}, on-demand, x86, looked up {PRICES_LOOKED_UP} with the project's "
        "documentation search): Lambda $0.20 per 1M requests and $0.0000166667 per GB-second "
        "(aws.amazon.com/lambda/pricing, docs.aws.amazon.com/whitepapers/latest/"
        "how-aws-pricing-works/lambda.html); DynamoDB on-demand $0.625 per 1M write request "
        "units and $0.125 per 1M read request units since the 1 November 2024 price cut "
        "(aws.amazon.com/dynamodb/pricing/on-demand). AWS renders the figures on its pricing "
        "pages client-side, so the stored copies carry the rules (units, rounding) and the "
        "figures were cross-checked against secondary sources quoting them; re-check before "
        "relying on them.",
        "Duration model: the CPU the function spent here per request (section 2's "
        "app(event, context) time minus the time inside moto, median: Chalice, the app and "
        "botocore) is slowed by 1,769 MB / memory (Lambda gives a function CPU in "
        "proportion to memory: one vCPU at 1,769 MB, docs.aws.amazon.com/lambda/latest/dg/"
        f"resource-model.html), plus an **assumed** {DYNAMODB_ROUND_TRIP_S * 1000:.0f} ms per "
        "DynamoDB round trip (not measurable here), rounded up to 1 ms as Lambda bills. "
        "This machine's core may be faster or slower than a Lambda vCPU.",
        "Request units are section (1)'s, computed from item sizes. Not included: API Gateway "
        "(charged per API call, usually the largest line for small requests), data transfer, "
        "storage, CloudWatch Logs (one access-log line per request), the free tiers, and the "
        "stream follow-ups (per batch of K carts: cart_summary one Query and one PutItem per "
        "cart, product_popularity one 2-item transaction per line that starts or stops being "
        "held — see section 1's batch table).",
    ]
