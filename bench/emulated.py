"""(9) The deployed package on MiniStack beside `make run`, over HTTP, in one run.

The same requests go to the local stack (chalice local on moto) and to the
emulated stage (the package as deployed: MiniStack's API Gateway, its Lambda
running the function in a worker process, its DynamoDB), one after the other
for every route and round, so a loaded machine moves both alike.

Cold, per route: the emulated stage's first request on a new function worker
(it imports the app; MiniStack starts a new worker after any change to the
function's configuration, so each sample follows an update of one environment
variable nobody reads), against a fresh `make run`'s first request of that route
(chalice local imports the app once when it starts, so it pays only for lazy
imports and first clients).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.common import Section, Table, median, ms, percentile, ratio
from deploy import emulator
from deploy.settings import load_stage
from devstack.emulator import Emulator, deploy, start_ministack
from devstack.ports import free_port

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
API_FUNCTION = load_stage("emulated").function_name("api_handler")
Call = Callable[[requests.Session, str], requests.Response]


def _add(session: requests.Session, url: str) -> requests.Response:
    return session.post(f"{url}/api/cart/items", headers=JSON, timeout=30,
                        data=json.dumps({"productId": "filters", "quantity": 1}))


# (route, what it needs done first, untimed, or None, the timed request)
ROUTES: list[tuple[str, Call | None, Call]] = [
    ("GET /api/products", None, lambda s, u: s.get(f"{u}/api/products", timeout=30)),
    ("POST /api/cart/items", None, _add),
    ("PUT /api/cart/items/{id}", None, lambda s, u: s.put(
        f"{u}/api/cart/items/filters", headers=JSON, timeout=30,
        data=json.dumps({"quantity": 2}))),
    ("GET /api/cart", None, lambda s, u: s.get(f"{u}/api/cart", timeout=30)),
    ("GET /api/cart/status", None, lambda s, u: s.get(f"{u}/api/cart/status", timeout=30)),
    ("GET / (page)", None, lambda s, u: s.get(f"{u}/", timeout=30)),
    ("POST /api/cart/checkout", _add, lambda s, u: s.post(
        f"{u}/api/cart/checkout", headers=JSON, timeout=30)),
]


def _timed(call: Callable[[], requests.Response]) -> float:
    start = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - start
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url}: "
                           f"{response.status_code} {response.text[:200]}")
    return elapsed


def _warm(urls: dict[str, str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per stack, per route: the seconds each request took, the stacks interleaved."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in urls}
    sessions = {name: requests.Session() for name in urls}
    for round_ in range(rounds + 2):  # two rounds of warm-up, not kept
        for route, prepare, request in ROUTES:
            for name, url in urls.items():
                session = sessions[name]
                if prepare is not None:
                    prepare(session, url)
                seconds = _timed(lambda: request(session, url))  # noqa: B023
                if round_ >= 2:
                    samples[name].setdefault(route, []).append(seconds)
    return samples


class NewWorkers:
    """Makes MiniStack start a new worker of the API function before the next request."""

    def __init__(self, ministack: Emulator) -> None:
        import boto3

        self._functions = boto3.session.Session(
            aws_access_key_id=emulator.ACCESS_KEY, aws_secret_access_key=emulator.SECRET_KEY,
            region_name=emulator.REGION).client("lambda", endpoint_url=ministack.endpoint)
        self._variables: dict[str, Any] = self._functions.get_function_configuration(
            FunctionName=API_FUNCTION)["Environment"]["Variables"]
        self._runs = 0

    def next(self) -> None:
        """Any configuration change does: one environment variable nobody reads."""
        self._runs += 1
        self._functions.update_function_configuration(
            FunctionName=API_FUNCTION,
            Environment={"Variables": {**self._variables, "BENCH_COLD_RUN": str(self._runs)}})

    def restore(self) -> None:
        self._functions.update_function_configuration(
            FunctionName=API_FUNCTION, Environment={"Variables": self._variables})


def _first_responses(url: str, before: Callable[[], None] | None = None) -> dict[str, float]:
    """Each route's first request on one new shopper's session; `before` runs (untimed)
    after a route's own preparation, just before its timed request."""
    session, firsts = requests.Session(), {}
    for route, prepare, request in ROUTES:
        if prepare is not None:
            prepare(session, url)
        if before is not None:
            before()
        firsts[route] = _timed(lambda: request(session, url))  # noqa: B023
    return firsts


def _local_cold() -> dict[str, float]:
    """A fresh `make run`: each route's first request after it says it is ready."""
    from devstack.background import start_stack

    with tempfile.TemporaryDirectory(prefix="bench-cold-stack-") as tmp:
        fresh = start_stack(Path(tmp))
        try:
            return _first_responses(fresh.url)
        finally:
            fresh.stop()


def run(section: Section, _results: dict[str, Section] | None = None, *,
        stack: Any, rounds: int = 60, cold_runs: int = 5) -> None:
    local_url = stack.url
    local_cold = _local_cold()
    with tempfile.TemporaryDirectory(prefix="bench-ministack-") as tmp:
        ministack = start_ministack(free_port(), Path(tmp) / "ministack.log")
        try:
            started = time.perf_counter()
            deployed = deploy(ministack.endpoint)
            deploy_seconds = time.perf_counter() - started
            emulated_url = deployed.api.rstrip("/")
            first = _timed(lambda: requests.get(f"{emulated_url}/api/products", timeout=60))
            workers = NewWorkers(ministack)
            colds = [_first_responses(emulated_url, workers.next) for _ in range(cold_runs)]
            workers.restore()
            samples = _warm({"make run": local_url, "emulated": emulated_url}, rounds)
        finally:
            ministack.stop()

    cold = Table(["route", "make run: first request after start ms",
                  f"emulated: a new worker's first request, median of {cold_runs} ms",
                  "emulated max ms", "emulated / make run"])
    for route in local_cold:
        values = [run[route] for run in colds]
        cold.add(route, ms(local_cold[route]), ms(median(values)), ms(max(values)),
                 ratio(median(values), local_cold[route]))
    section.tables.append(cold)

    warm = Table(["route", "make run p50 ms", "make run p95 ms", "emulated p50 ms",
                  "emulated p95 ms", "emulated / make run (p50)"])
    for route in samples["make run"]:
        local, emulated = samples["make run"][route], samples["emulated"][route]
        warm.add(route, ms(median(local)), ms(percentile(local, 95)), ms(median(emulated)),
                 ms(percentile(emulated, 95)), ratio(median(emulated), median(local)))
    section.tables.append(warm)
    all_local = [s for values in samples["make run"].values() for s in values]
    all_emulated = [s for values in samples["emulated"].values() for s in values]
    all_cold = [s for run in colds for s in run.values()]
    section.data.update(cold_median=median(all_cold), first=first,
                        warm_ratio=median(all_emulated) / median(all_local),
                        deploy_seconds=deploy_seconds)
    section.result = (
        f"a new worker's first response {median(all_cold) * 1000:.0f} ms (median over every "
        f"route, {cold_runs} runs; the first after the deploy {first * 1000:.0f} ms) against "
        f"{median(list(local_cold.values())) * 1000:.0f} ms for `make run`'s first requests; "
        f"warm, the deployed package answers at "
        f"{median(all_emulated) / median(all_local):.2f}x `make run`'s p50 over every route "
        f"({rounds} rounds); the deploy took {deploy_seconds:.0f} s.")
    section.notes.append(
        "Measured by bench/emulated.py: `make run`'s stack and the emulated stage deployed "
        "to a MiniStack of the run's own (AUTH=true, as `make emulate` runs it), every "
        "route sequentially on one shopper session per stack, the two stacks interleaved "
        "request by request. Cold, emulated: before each route's timed request MiniStack is "
        "made to start a new worker for the API function (any configuration change does): "
        "a new Python process importing the package and reading the cookie key, as a "
        "Lambda cold start does, without Lambda's sandbox. Cold, `make run`: a fresh stack's "
        "first request of each route after it says ready (chalice local imported the app "
        "at start and answered GET /api/products before saying so: its first answers pay "
        "only for lazy imports and first clients). A checkout's own add goes first, "
        "untimed; the set changes the line the add before it made.")
