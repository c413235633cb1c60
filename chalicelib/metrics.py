"""Business and stream metrics as CloudWatch embedded metric format (EMF) on stdout.

Lambda sends stdout to CloudWatch Logs, which turns each EMF line into metric
values: no PutMetricData call on the request path, no client, no credentials.
An API request's metrics ride on its access line (request_members: the EMF
members chalicelib/logging_setup.py adds to that one JSON object; CloudWatch
keeps the other members as fields); a stream batch, which writes no access
line, prints one EMF line of its own (invocation).

The names follow Powertools for AWS Lambda (namespace and service from
POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME, "service" as the one
dimension, the same document shape), so the dashboard and alarms read the
same metrics either way. Powertools itself is not used: its wheel alone is
about the size of the whole deployment package and it adds to every cold
start (docs/OPERATIONS.md, "Metrics"; `make bench`, cold start).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib import table

NAMESPACE_VARIABLE = "POWERTOOLS_METRICS_NAMESPACE"
SERVICE_VARIABLE = "POWERTOOLS_SERVICE_NAME"
DISABLED_VARIABLE = "POWERTOOLS_METRICS_DISABLED"
DEFAULT_NAMESPACE = "ChaliceCart"
DEFAULT_SERVICE = "chalice-cart"
DIMENSION = "service"

COUNT = "Count"
MILLISECONDS = "Milliseconds"

ADD_TO_CART = "AddToCart"
SET_QUANTITY = "SetQuantity"
REMOVE_FROM_CART = "RemoveFromCart"
CHECKOUTS_PLACED = "CheckoutsPlaced"
ORDERS_CONFIRMED = "OrdersConfirmed"
STREAM_RECORDS_PROCESSED = "StreamRecordsProcessed"
STREAM_RECORDS_FAILED = "StreamRecordsFailed"
STREAM_NEWEST_RECORD_AGE_MS = "StreamNewestRecordAgeMs"

# A successful request to one of these routes is one business event. The
# route is Chalice's resource path, so the template, never a product id.
ROUTE_METRICS: dict[tuple[str, str], str] = {
    ("POST", "/api/cart/items"): ADD_TO_CART,
    ("PUT", "/api/cart/items/{product_id}"): SET_QUANTITY,
    ("DELETE", "/api/cart/items/{product_id}"): REMOVE_FROM_CART,
    ("POST", "/api/cart/checkout"): CHECKOUTS_PLACED,
}

Write = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    namespace: str = DEFAULT_NAMESPACE
    service: str = DEFAULT_SERVICE
    enabled: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Powertools' variables. Off outside Lambda unless asked for: `make run`
        and the tests print no metric lines unless POWERTOOLS_METRICS_DISABLED=false."""
        disabled = environ.get(DISABLED_VARIABLE, "").strip().lower()
        if disabled:
            enabled = disabled not in ("1", "true", "yes")
        else:
            enabled = bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))
        return cls(
            namespace=environ.get(NAMESPACE_VARIABLE) or DEFAULT_NAMESPACE,
            service=environ.get(SERVICE_VARIABLE) or DEFAULT_SERVICE,
            enabled=enabled,
        )


@dataclass
class MetricSet:
    """What one invocation recorded; counts add up, other units keep the last value."""

    settings: Settings
    values: dict[str, tuple[str, float]] = field(default_factory=dict)

    def add(self, name: str, value: float = 1, unit: str = COUNT) -> None:
        if unit == COUNT and name in self.values:
            value += self.values[name][1]
        self.values[name] = (unit, value)

    def document(self, timestamp_ms: int) -> dict[str, Any] | None:
        """The EMF document, or None when nothing was recorded."""
        if not self.values:
            return None
        return {
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.settings.namespace,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": unit}
                                for name, (unit, _) in self.values.items()],
                }],
            },
            DIMENSION: self.settings.service,
            **{name: value for name, (_, value) in self.values.items()},
        }


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextmanager
def invocation(settings: Settings, write: Write = _stdout,
               clock: Callable[[], float] = time.time) -> Iterator[MetricSet]:
    """Collect what this invocation records; one EMF line when it ends, even on error."""
    metrics = MetricSet(settings)
    try:
        yield metrics
    finally:
        document = metrics.document(int(clock() * 1000)) if settings.enabled else None
        if document is not None:
            write(json.dumps(document, separators=(",", ":")))


def record_request(metrics: MetricSet, method: str, route: str, status: int) -> None:
    """Count a successful request to a business route."""
    name = ROUTE_METRICS.get((method, route))
    if name is not None and 200 <= status < 300:
        metrics.add(name)


def request_members(settings: Settings, method: str, route: str, status: int,
                    clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """A request's EMF members for its access line: none when off or nothing counted."""
    if not settings.enabled:
        return {}
    metrics = MetricSet(settings)
    record_request(metrics, method, route, status)
    return metrics.document(int(clock() * 1000)) or {}


def _sequence(record: Mapping[str, Any]) -> int:
    return int(record.get("dynamodb", {}).get("SequenceNumber", "0"))


def _placed_order(record: Mapping[str, Any]) -> bool:
    if record.get("eventName") != "INSERT":
        return False
    stream = record.get("dynamodb", {})
    keys, image = stream.get("Keys", {}), stream.get("NewImage") or {}
    sort_key = str(keys.get("sk", {}).get("S", ""))
    return (sort_key.startswith(table.ORDER_PREFIX)
            and image.get("status", {}).get("S") == "PLACED")


def record_batch(metrics: MetricSet, records: list[dict[str, Any]],
                 response: Mapping[str, Any], now: float) -> None:
    """The stream function's batch: processed, handed back, newest age, orders confirmed.

    Lambda retries from the lowest sequence number reported, so every record
    from there on is failed for now (it comes back); every record before it
    is processed.
    """
    failures = [int(f["itemIdentifier"]) for f in response.get("batchItemFailures", [])]
    retry_from = min(failures) if failures else None
    processed = [r for r in records if retry_from is None or _sequence(r) < retry_from]
    metrics.add(STREAM_RECORDS_PROCESSED, len(processed))
    metrics.add(STREAM_RECORDS_FAILED, len(records) - len(processed))
    metrics.add(ORDERS_CONFIRMED, sum(1 for r in processed if _placed_order(r)))
    created = [float(r["dynamodb"]["ApproximateCreationDateTime"]) for r in processed
               if "ApproximateCreationDateTime" in r.get("dynamodb", {})]
    if created:
        age_ms = max(0.0, (now - max(created)) * 1000)
        metrics.add(STREAM_NEWEST_RECORD_AGE_MS, round(age_ms), MILLISECONDS)


def record_batch_error(metrics: MetricSet, records: list[dict[str, Any]]) -> None:
    """The stream function raised: every record of the batch comes back."""
    metrics.add(STREAM_RECORDS_PROCESSED, 0)
    metrics.add(STREAM_RECORDS_FAILED, len(records))
