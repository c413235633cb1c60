"""Stream lag on the local stack: a write acknowledged → cart-status shows it.

Starts its own stack (`python -m devstack run` on free ports, no reloader),
adds to carts over HTTP one write at a time and polls cart-status until the
summary the stream runner writes reflects the new quantity.

    .venv/bin/python -m bench.stream_lag [--writes 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.common import percentile
from devstack.background import LiveStack, start_stack

TARGET_P95 = 0.300
WRITES_PER_CART = 20  # a line holds at most 99: spread the writes over carts
PRODUCTS = ("espresso-cup", "pour-over", "kettle", "grinder", "filters")
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class StreamLag:
    writes: int
    p50: float
    p95: float
    max: float
    mean: float
    write_p50: float  # the add-to-cart request itself, for scale

    def holds(self) -> bool:
        return self.p95 <= TARGET_P95


class Visitor:
    """A new visitor (so a new cart) whose every request opens a new connection.

    chalice local answers on a kept-alive connection ~40 ms late (headers and
    body go out as two small TCP segments: Nagle meets delayed ACK). That is
    the dev server, not the stream, so it is kept out of the figure.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies = requests.cookies.RequestsCookieJar()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, f"{self.url}{path}", cookies=self.cookies,
                                    timeout=5, **kwargs)
        self.cookies.update(response.cookies)
        return response


def _one_write(visitor: Visitor, product_id: str, expected_count: int,
               timeout: float) -> tuple[float, float]:
    started = time.perf_counter()
    response = visitor.request("POST", "/api/cart/items", headers=JSON,
                               json={"productId": product_id, "quantity": 1})
    acknowledged = time.perf_counter()
    response.raise_for_status()
    deadline = acknowledged + timeout
    while True:
        status = visitor.request("GET", "/api/cart/status").json()
        if status["itemCount"] >= expected_count:
            return time.perf_counter() - acknowledged, acknowledged - started
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the summary did not show write {expected_count} "
                               f"within {timeout} s: {status}")
        time.sleep(0.002)


def measure(stack: LiveStack, writes: int = 200, timeout: float = 5.0) -> StreamLag:
    """Stream lag of `writes` sequential add-to-cart writes on a running stack."""
    lags: list[float] = []
    requests_: list[float] = []
    visitor = Visitor(stack.url)
    for n in range(writes):
        if n % WRITES_PER_CART == 0:
            visitor = Visitor(stack.url)
        count = n % WRITES_PER_CART + 1
        lag, request = _one_write(visitor, PRODUCTS[n % len(PRODUCTS)], count, timeout)
        lags.append(lag)
        requests_.append(request)
    return StreamLag(
        writes=writes,
        p50=percentile(lags, 50),
        p95=percentile(lags, 95),
        max=max(lags),
        mean=statistics.fmean(lags),
        write_p50=percentile(requests_, 50),
    )


def run(writes: int = 200) -> StreamLag:
    """Start a stack of its own, measure, stop it."""
    with tempfile.TemporaryDirectory(prefix="stream-lag-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            measure(stack, writes=10)  # warm up: first imports, first clients
            return measure(stack, writes=writes)
        finally:
            stack.stop()


def report(lag: StreamLag) -> str:
    verdict = "holds" if lag.holds() else "MISSES"
    return "\n".join([
        f"stream lag over {lag.writes} writes "
        "(add-to-cart acknowledged -> cart-status shows it), local stack",
        f"  p50  {lag.p50 * 1000:7.1f} ms",
        f"  p95  {lag.p95 * 1000:7.1f} ms   target <= {TARGET_P95 * 1000:.0f} ms: {verdict}",
        f"  max  {lag.max * 1000:7.1f} ms",
        f"  mean {lag.mean * 1000:7.1f} ms",
        f"  (the add-to-cart request itself: p50 {lag.write_p50 * 1000:.1f} ms)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_lag")
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args(argv)
    if args.writes < 1:
        parser.error("--writes must be at least 1")
    lag = run(args.writes)
    print(report(lag))
    return 0 if lag.holds() else 1


if __name__ == "__main__":
    sys.exit(main())
