"""A traffic ramp: many cold containers ask SSM for the cookie key at once.

SSM's GetParameter allows 40 requests/s per account and region by default.
`AccountThrottle` plays that limit across every container's client (a
before-send hook, as moto itself answers), so botocore sees real
ThrottlingException responses.

The ramp runs on `VirtualTime`: each container is a thread running the real
retry loop against moto, but the clock moves only when every container is
waiting, to the earliest wake-up. What the test measures (seconds until each
container has the key, calls per second at SSM) is then the algorithm's, not
how busy this shared machine's CPUs are.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.core.models import botocore_stubber

from chalicelib import runtime
from chalicelib.domain import StoreUnavailable
from tests.factories import COOKIE_SECRET, add_body
from tests.functional.botocore_faults import error_response
from tests.functional.conftest import request

PARAMETER = "/chalice-cart/test/cookie-secret"
CONTAINERS = 80
SSM_LIMIT_PER_SECOND = 40


class VirtualTime:
    """A clock shared by `threads` threads that advances only while all of them sleep."""

    def __init__(self, threads: int) -> None:
        self.now = 0.0
        self._running = threads
        self._wakeups: list[float] = []
        self._changed = threading.Condition()

    def clock(self) -> float:
        return self.now

    def _advance(self) -> None:
        # Every thread waits: jump to the earliest wake-up and release all due then.
        if self._running == 0 and self._wakeups:
            self.now = heapq.heappop(self._wakeups)
            self._running = 1
            while self._wakeups and self._wakeups[0] <= self.now:
                heapq.heappop(self._wakeups)
                self._running += 1
            self._changed.notify_all()

    def sleep(self, seconds: float) -> None:
        with self._changed:
            wake = self.now + seconds
            heapq.heappush(self._wakeups, wake)
            self._running -= 1
            self._advance()
            while self.now < wake:
                self._changed.wait()

    def finished(self) -> None:
        with self._changed:
            self._running -= 1
            self._advance()


class AccountThrottle:
    """At most `limit` GetParameter calls in any second, across every client it is on."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._served: deque[float] = deque()
        self._lock = threading.Lock()
        self.throttled = 0
        self.served = 0

    def attach(self, client: Any) -> Any:
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", self)
        return client

    def __call__(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        with self._lock:
            now = self._clock()
            while self._served and now - self._served[0] >= 1.0:
                self._served.popleft()
            admitted = len(self._served) < self._limit
            if admitted:
                self._served.append(now)
                self.served += 1
            else:
                self.throttled += 1
        if not admitted:
            return error_response(request.url, "ThrottlingException", 400)
        return botocore_stubber(event_name=event_name, request=request, **kwargs)


@pytest.fixture
def parameter(aws: None) -> str:
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=COOKIE_SECRET, Type="SecureString")
    return PARAMETER


def _cold_container_client(throttle: AccountThrottle, session: Any = None) -> Any:
    # What runtime builds for SSM: one attempt per call, its own pacing on top.
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    session = session or boto3.session.Session()
    return throttle.attach(session.client("ssm", config=config))


def test_a_ramp_of_cold_containers_all_get_the_key_within_the_budget(parameter):
    time_ = VirtualTime(CONTAINERS)
    throttle = AccountThrottle(SSM_LIMIT_PER_SECOND, time_.clock)
    # One session builds them all (quicker); each container still has its own client.
    session = boto3.session.Session()
    clients = [_cold_container_client(throttle, session) for _ in range(CONTAINERS)]

    def cold_start(container: int) -> tuple[str, float]:
        try:
            value = runtime.read_secret_parameter(
                clients[container], parameter, clock=time_.clock, sleep=time_.sleep,
                jitter=random.Random(container).random)
            return value, time_.clock()
        finally:
            time_.finished()

    with ThreadPoolExecutor(CONTAINERS) as pool:
        results = list(pool.map(cold_start, range(CONTAINERS)))
    assert [value for value, _ in results] == [COOKIE_SECRET] * CONTAINERS
    slowest = max(took for _, took in results)
    assert slowest < runtime.SSM_BUDGET_SECONDS, slowest
    # twice the limit at once: SSM really did refuse many of them first, and the
    # last of them waited at least the second the limit takes to serve them
    assert throttle.throttled >= CONTAINERS - SSM_LIMIT_PER_SECOND
    assert throttle.served == CONTAINERS and slowest >= 1.0


def test_when_the_budget_is_spent_the_key_is_unavailable_not_a_bug(parameter):
    time_ = VirtualTime(1)
    throttle = AccountThrottle(0, time_.clock)  # SSM refuses everything
    client = _cold_container_client(throttle)
    with pytest.raises(StoreUnavailable):
        runtime.read_secret_parameter(client, parameter, budget_seconds=3.0,
                                      clock=time_.clock, sleep=time_.sleep,
                                      jitter=random.Random(7).random)
    # it gave up only when the next wait would have ended past the budget
    assert time_.now <= 3.0
    assert throttle.throttled >= 5


def _app_ssm_behind(throttle: AccountThrottle) -> None:
    runtime.reset()
    runtime._cache["ssm"] = _cold_container_client(throttle)


def test_a_throttled_cold_start_still_answers_the_shopper(client, parameter, monkeypatch):
    monkeypatch.setenv("CART_COOKIE_SECRET_PARAM", parameter)
    # Real seconds counted from the app's first call, so the full window below is
    # the one the app meets however slowly the machine reached the request.
    started: list[float] = []

    def since_first_call() -> float:
        now = time.monotonic()
        started[:] = started or [now]
        return now - started[0]

    throttle = AccountThrottle(SSM_LIMIT_PER_SECOND, since_first_call)
    with throttle._lock:  # this second's 40 calls were taken by other containers
        throttle._served.extend([0.0] * SSM_LIMIT_PER_SECOND)
    _app_ssm_behind(throttle)
    response = request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    assert response.status_code == 201, response.body
    assert throttle.throttled >= 1 and throttle.served == 1


def test_ssm_refusing_past_the_budget_is_a_503_with_retry_after(client, parameter,
                                                                monkeypatch):
    monkeypatch.setenv("CART_COOKIE_SECRET_PARAM", parameter)
    monkeypatch.setattr(runtime, "SSM_BUDGET_SECONDS", 0.3)
    _app_ssm_behind(AccountThrottle(0))
    response = request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.body)["Code"] == "ServiceUnavailable"
