"""moto-backed fixtures, each building on the one before.

aws → table (created from the shared definition, seeded) → client (the app
through chalice.test.Client) → stream (real records read back from moto's
stream, delivered to the app's own follow-up functions).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from app import app
from chalicelib import followups, runtime, table
from chalicelib.repository import DynamoCartRepository
from devstack import greedy_routes, moto_memory
from devstack.streams import StreamReader
from tests.factories import JSON, SEED, TABLE_NAME, add_body, cookie_from

# The test client routes as the local stack's chalice local does: the app's
# greedy 404 route matches any unknown path, as on API Gateway.
greedy_routes.install()
# A cancelled transaction leaves the stream as it was, as on DynamoDB (moto puts back
# a copy of the table, stream shard and all, and shard iterators then read a shard
# nobody writes to): every new cart line meets one cancelled transaction.
moto_memory.undo_by_item()

FOLLOWUPS = ("process_stream",)  # the one stream function (app.py)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        runtime.reset()
        yield
        runtime.reset()


@pytest.fixture
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb")


@pytest.fixture
def stream_arn(dynamodb: Any) -> str:
    arn = table.create_table(dynamodb, TABLE_NAME)
    DynamoCartRepository(dynamodb, TABLE_NAME).seed_products(SEED)
    return arn


@pytest.fixture
def repo(dynamodb: Any, stream_arn: str) -> DynamoCartRepository:
    return DynamoCartRepository(dynamodb, TABLE_NAME)


@pytest.fixture
def client(stream_arn: str) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


class Stream:
    """The table's stream, delivered to the follow-ups as Lambda would."""

    def __init__(self, client: Client, stream_arn: str) -> None:
        self._client = client
        self.reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn)

    def read(self) -> list[dict[str, Any]]:
        return self.reader.read()

    def deliver(self, records: list[dict[str, Any]],
                functions: tuple[str, ...] = FOLLOWUPS) -> dict[str, Any]:
        """Invoke each function with one batch; its partial-batch responses.

        A follow-up's own name (followups.FOLLOWUPS) runs that follow-up alone,
        as the stream function would among the others.
        """
        alone = dict(followups.FOLLOWUPS)
        results = {}
        for name in functions:
            if name in alone:
                results[name] = alone[name](records, runtime.repository())
                continue
            response = self._client.lambda_.invoke(name, {"Records": records})
            results[name] = response.payload
        # Shoppers see counts COUNTS_CACHE_SECONDS after the stream applies them:
        # a delivery here stands for that much time passing.
        runtime.cart_service().catalog.expire()
        return results

    def drain(self, rounds: int = 5) -> list[dict[str, Any]]:
        """Deliver until the follow-ups' own writes stop producing records."""
        delivered: list[dict[str, Any]] = []
        for _ in range(rounds):
            records = self.read()
            if not records:
                return delivered
            for name, result in self.deliver(records).items():
                assert result == {"batchItemFailures": []}, (name, result)
            delivered.extend(records)
        raise AssertionError("the stream did not settle")


@pytest.fixture
def stream(client: Client, stream_arn: str) -> Stream:
    return Stream(client, stream_arn)


def request(client: Client, method: str, path: str, cookie: str | None = None,
            body: Any = None, headers: dict[str, str] | None = None) -> Any:
    all_headers = dict(JSON)
    if cookie:
        all_headers["Cookie"] = cookie
    all_headers.update(headers or {})
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    return client.http.request(method, path, headers=all_headers, body=body or b"")


@pytest.fixture
def cart(client: Client) -> str:
    """A cart holding 2 espresso cups and 1 kettle; its cookie."""
    first = request(client, "POST", "/api/cart/items", body=add_body("espresso-cup", 2))
    assert first.status_code == 201
    cookie = cookie_from(first)
    second = request(client, "POST", "/api/cart/items", cookie, add_body("kettle", 1))
    assert second.status_code == 201
    return cookie


@pytest.fixture(scope="module")
def module_shop() -> Iterator[tuple[Client, Any]]:
    """One seeded table and app client for all of a module's tests.

    For modules whose tests change little or nothing (bad input, security):
    a table per test would be most of their run time.
    """
    with mock_aws():
        runtime.reset()
        dynamodb = boto3.client("dynamodb")
        table.create_table(dynamodb, TABLE_NAME)
        DynamoCartRepository(dynamodb, TABLE_NAME).seed_products(SEED)
        with Client(app) as test_client:
            yield test_client, dynamodb
        runtime.reset()


# -- accounts: a moto user pool the app signs shoppers into -----------------------

POOL_NAME = "chalice-cart-test"


@pytest.fixture
def user_pool(aws: None, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The app's user pool and client (made as the local stack makes them); their ids.

    moto answers the pool's JWKS URL only through its `requests` mock, so the
    verifier fetches the same URL with requests here; the local stack and the
    e2e tests exercise the app's own HTTP fetch against moto's server.
    """
    import requests

    from chalicelib import tokens
    from chalicelib import user_pool as pools

    pool_id, client_id, _ = pools.ensure_user_pool(
        boto3.client("cognito-idp"), POOL_NAME, POOL_NAME)
    monkeypatch.setenv("COGNITO_USER_POOL_ID", pool_id)
    monkeypatch.setenv("COGNITO_CLIENT_ID", client_id)
    url = tokens.jwks_url("us-east-1", pool_id)
    runtime.use_jwks(lambda: requests.get(url, timeout=5).json())  # type: ignore[no-any-return]
    return pool_id, client_id
