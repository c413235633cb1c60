"""Lambda's Python runtimes and the dates Lambda stops supporting them: one table.

Source: AWS Lambda Developer Guide, "Building Lambda functions with Python"
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html, its runtime
table) and "Lambda runtimes" (lambda-runtimes.html, "Deprecated runtimes").
Checked 2026-12-01. When AWS announces a date for a runtime, change it here:
the build refuses a template whose runtime is deprecated within
`WARNING_DAYS` of the day it is built, so a stage is moved on while Lambda
still creates and updates functions on its runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class LambdaRuntime:
    identifier: str
    deprecated: date  # no more security patches, no support
    create_blocked: date  # a new function on it fails: a first deploy
    update_blocked: date  # a code or configuration update fails: every redeploy


def _runtime(identifier: str, deprecated: str, create: str, update: str) -> LambdaRuntime:
    return LambdaRuntime(
        identifier, date.fromisoformat(deprecated), date.fromisoformat(create),
        date.fromisoformat(update),
    )


PYTHON_RUNTIMES: dict[str, LambdaRuntime] = {
    r.identifier: r
    for r in (
        _runtime("python3.14", "2029-06-30", "2029-07-31", "2029-08-31"),
        _runtime("python3.13", "2029-06-30", "2029-07-31", "2029-08-31"),
        _runtime("python3.12", "2028-10-31", "2028-11-30", "2029-01-10"),
        _runtime("python3.11", "2026-06-30", "2026-07-31", "2026-08-31"),
        _runtime("python3.10", "2026-06-30", "2026-07-31", "2026-08-31"),
        _runtime("python3.9", "2025-12-15", "2026-01-15", "2026-02-15"),
        _runtime("python3.8", "2024-10-14", "2025-02-28", "2025-03-31"),
    )
}
# A stage deployed today must be updatable for at least a year to come.
WARNING_DAYS = 365


def runtime_problem(identifier: str | None, today: date) -> str | None:
    """Why `identifier` must not be deployed on `today`; None when it may."""
    runtime = PYTHON_RUNTIMES.get(identifier or "")
    if runtime is None:
        return (
            f"runtime {identifier} is not in deploy/runtimes.py's table of Lambda Python "
            f"runtimes ({', '.join(sorted(PYTHON_RUNTIMES))})"
        )
    if runtime.deprecated <= today + timedelta(days=WARNING_DAYS):
        return (
            f"runtime {identifier} is deprecated by Lambda on {runtime.deprecated} "
            f"(new functions blocked {runtime.create_blocked}, updates blocked "
            f"{runtime.update_blocked}), within {WARNING_DAYS} days of {today}: "
            "build with a newer Python (make PYTHON=...)"
        )
    return None
