"""What every benchmark section shares: timing statistics, tables, the in-process stack."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# The in-process sections run against moto only; never a real account.
BENCH_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # nosec B105: moto's dummy key
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "TABLE_NAME": "chalice-cart-bench",
    "CART_COOKIE_SECRET": "bench-secret-never-deployed-0123456789",  # nosec B105
}
_UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
              "CART_COOKIE_SECRET_PARAM")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def verdict(value: float, limit: float) -> str:
    return "holds" if value <= limit else "misses"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([str(cell) for cell in cells])

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---" for _ in self.headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Section:
    """One benchmark's outcome: its tables, a one-line result against the target, notes."""

    key: str
    title: str
    target: str
    result: str = ""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", f"**Target:** {self.target}", ""]
        if self.error:
            parts += ["**Crashed:**", "", "```", self.error.rstrip(), "```", ""]
        if self.result:
            parts += [f"**Result:** {self.result}", ""]
        for table in self.tables:
            parts += [table.markdown(), ""]
        parts += [f"- {note}" for note in self.notes]
        if self.notes:
            parts.append("")
        parts.append(f"_Section time: {self.seconds:.1f} s._")
        return "\n".join(parts)


@contextlib.contextmanager
def bench_environment() -> Iterator[None]:
    """The variables the app and moto need, restored afterwards."""
    saved = {name: os.environ.get(name) for name in (*BENCH_ENV, *_UNSET_ENV)}
    for name in _UNSET_ENV:
        os.environ.pop(name, None)
    os.environ.update(BENCH_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def quiet_app_logs() -> Iterator[None]:
    """Send the app's log lines to /dev/null: still formatted and written, never shown."""
    with open(os.devnull, "w") as sink:
        swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
        names = [n for n in logging.root.manager.loggerDict if n.startswith("chalice-cart")]
        for name in names:
            for handler in logging.getLogger(name).handlers:
                if isinstance(handler, logging.StreamHandler):
                    swapped.append((handler, handler.setStream(sink)))
        try:
            yield
        finally:
            for handler, stream in swapped:
                handler.setStream(stream)


@dataclass
class InProcessStack:
    """The app over chalice.test.Client, moto in-process, a seeded table."""

    client: Any  # chalice.test.Client
    dynamodb: Any  # the app's own botocore client (runtime.dynamodb_client())
    table_name: str
    stream_arn: str
    secret: bytes

    def cookie(self, cart_id: str) -> str:
        from chalicelib import cookies

        return f"{cookies.COOKIE_NAME}={cookies.sign(self.secret, cart_id, int(time.time()))}"

    def request(self, method: str, path: str, cookie: str | None = None,
                body: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if cookie:
            headers["Cookie"] = cookie
        return self.client.http.request(method, path, headers=headers, body=body or b"")


@contextlib.contextmanager
def in_process_stack() -> Iterator[InProcessStack]:
    """mock_aws + the table (from TABLE_SPEC, seeded) + the app's test client."""
    with bench_environment():
        from chalice.test import Client
        from moto import mock_aws

        with mock_aws():
            from app import app
            from devstack.moto_memory import undo_by_item

            undo_by_item()  # a cancelled transaction leaves the stream as it was
            from chalicelib import runtime, table
            from deploy.catalog import on_sale, seed

            SEED = on_sale(seed())

            runtime.reset()
            dynamodb = runtime.dynamodb_client()
            name = runtime.table_name()
            arn = table.create_table(dynamodb, name)
            runtime.repository().seed_products(SEED)
            try:
                with quiet_app_logs(), Client(app) as client:
                    yield InProcessStack(client, dynamodb, name, arn, runtime.cookie_secret())
            finally:
                runtime.reset()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
