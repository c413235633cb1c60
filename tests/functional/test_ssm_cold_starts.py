"""A traffic ramp: many cold containers ask SSM for the cookie key at once.

SSM's GetParameter allows 40 requests/s per account and region by default.
`AccountThrottle` plays that limit across every container's client (a
before-send hook, as moto itself answers), so botocore sees real
ThrottlingException responses.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
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


class AccountThrottle:
    """At most `limit` GetParameter calls in any second, across every client it is on."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
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
            now = time.monotonic()
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
    throttle = AccountThrottle(SSM_LIMIT_PER_SECOND)
    # One session builds them all (quicker); each container still has its own client.
    session = boto3.session.Session()
    clients = [_cold_container_client(throttle, session) for _ in range(CONTAINERS)]
    start = threading.Barrier(CONTAINERS)

    def cold_start(client: Any) -> tuple[str, float]:
        start.wait()
        began = time.monotonic()
        value = runtime.read_secret_parameter(client, parameter)
        return value, time.monotonic() - began

    with ThreadPoolExecutor(CONTAINERS) as pool:
        results = list(pool.map(cold_start, clients))
    assert [value for value, _ in results] == [COOKIE_SECRET] * CONTAINERS
    assert max(took for _, took in results) < runtime.SSM_BUDGET_SECONDS
    # twice the limit at once: SSM really did refuse many of them first
    assert throttle.throttled >= CONTAINERS - SSM_LIMIT_PER_SECOND
    assert throttle.served == CONTAINERS


def test_when_the_budget_is_spent_the_key_is_unavailable_not_a_bug(parameter):
    throttle = AccountThrottle(0)  # SSM refuses everything
    client = _cold_container_client(throttle)
    began = time.monotonic()
    with pytest.raises(StoreUnavailable):
        runtime.read_secret_parameter(client, parameter, budget_seconds=0.5)
    took = time.monotonic() - began
    assert 0.2 < took < 0.5 + runtime.SSM_MAX_DELAY
    assert throttle.throttled >= 3


def _app_ssm_behind(throttle: AccountThrottle) -> None:
    runtime.reset()
    runtime._cache["ssm"] = _cold_container_client(throttle)


def test_a_throttled_cold_start_still_answers_the_shopper(client, parameter, monkeypatch):
    monkeypatch.setenv("CART_COOKIE_SECRET_PARAM", parameter)
    throttle = AccountThrottle(SSM_LIMIT_PER_SECOND)
    with throttle._lock:  # this second's 40 calls were taken by other containers
        throttle._served.extend([time.monotonic()] * SSM_LIMIT_PER_SECOND)
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
