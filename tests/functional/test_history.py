"""Every cart promise under concurrency and faults, judged from each shopper's history.

Many clients at once (threads, each request through the Chalice app and the
app's own botocore client, on moto) run seeded random operations on private
carts and on shared carts, while the fault layer injects what DynamoDB and the
SDK do: throttling, 5xx, connect timeouts, lost responses, stalls past the
SDK's timeout whose writes land late, transactions cancelled as throttled or
conflicting. Every request and response is recorded; tests/history.py then
checks the history against a sequential model (see its docstring), and after
the faults heal and the stream is drained, that cart-status, `inCarts` and
order status converge.

The run in `make test` is bounded (fixed seed, HISTORY_OPS per client);
`make soak` runs longer (SOAK=1 HISTORY_OPS=... HISTORY_SEED=...) and prints
the figures either way.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.test import HTTPResponse

from app import app
from chalicelib import runtime, table
from chalicelib.store import carts as cart_store
from tests.factories import JSON, SEED, TABLE_NAME
from tests.functional.botocore_faults import CANCELLED, CONFLICTED, ERRORS, Faults
from tests.history import Op, Report, check_private, check_shared, read_lines

SEED_VALUE = int(os.environ.get("HISTORY_SEED", "16"))
OPS_PER_CLIENT = int(os.environ.get("HISTORY_OPS", "30"))
PRIVATE_CLIENTS = int(os.environ.get("HISTORY_PRIVATE", "4"))
SHARED_CLIENTS = int(os.environ.get("HISTORY_SHARED", "3"))
FAULT_RATE = float(os.environ.get("HISTORY_FAULT_RATE", "0.12"))
# A small cap, so that the clients meet it (the checker reads the same value).
MAX_LINES = 4
PRODUCTS = [product.id for product in SEED[:6]]
KINDS = ("throughput", "server-error", "connect-timeout", "response-lost", "late",
         CANCELLED, CONFLICTED)
KEYED_RETRIES = 6


class _PerThread:
    """Chalice keeps the request on the app object; a Lambda sandbox runs one request
    at a time, these threads run many: each thread sees its own."""

    def __init__(self) -> None:
        self._local = threading.local()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return getattr(self._local, "value", None) if obj is not None else self

    def __set__(self, obj: Any, value: Any) -> None:
        self._local.value = value


class ThreadedChalice(Chalice):
    current_request = _PerThread()  # type: ignore[assignment]
    lambda_context = _PerThread()  # type: ignore[assignment]


class Shopper:
    """One client: a cookie jar, its recorded ops, its own random choices."""

    def __init__(self, shop: Shop, name: str, cart: str, seed: int) -> None:
        self.shop = shop
        self.name = name
        self.cart = cart
        self.rng = random.Random(seed)
        self.cookie: str | None = None

    def send(self, op: Op, method: str, path: str, body: Any = None,
             key: str | None = None) -> Op:
        headers = dict(JSON)
        if self.cookie:
            headers["Cookie"] = self.cookie
        if key:
            headers["Idempotency-Key"] = key
        op.start = time.monotonic()
        response = self.shop.request(method, path, headers, body)
        op.end = time.monotonic()
        op.status = response.status_code
        try:
            op.body = json.loads(response.body) if response.body else None
        except ValueError:
            op.body = response.body
        cookie = response.headers.get("Set-Cookie")
        if cookie and not self.cookie:
            self.cookie = cookie.split(";", 1)[0]
        return self.shop.record(op)

    def add(self, keyed: bool) -> Op:
        product = self.rng.choice(PRODUCTS)
        quantity = self.rng.choice([1, 1, 2, 5, 40])
        key = f"{self.name}-{self.rng.getrandbits(32):x}" if keyed else None
        op = Op(self.name, self.cart, "add", product, quantity, key)
        body = {"productId": product, "quantity": quantity}
        for _ in range(KEYED_RETRIES if keyed else 1):
            op = self.send(Op(self.name, self.cart, "add", product, quantity, key),
                           "POST", "/api/cart/items", body, key)
            if op.status != 503:
                break
        return op

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.45:
            self.add(keyed=self.rng.random() < 0.5)
        elif roll < 0.6:
            product, quantity = self.rng.choice(PRODUCTS), self.rng.choice([0, 1, 3, 99])
            self.send(Op(self.name, self.cart, "set", product, quantity), "PUT",
                      f"/api/cart/items/{product}", {"quantity": quantity})
        elif roll < 0.7:
            product = self.rng.choice(PRODUCTS)
            self.send(Op(self.name, self.cart, "remove", product), "DELETE",
                      f"/api/cart/items/{product}")
        elif roll < 0.8:
            self.send(Op(self.name, self.cart, "checkout"), "POST", "/api/cart/checkout")
        self.read()

    def read(self) -> Op:
        return self.send(Op(self.name, self.cart, "read"), "GET", "/api/cart")


class SharedShopper(Shopper):
    """Keyed adds (retried with the same key until definite), reads, now and then a checkout."""

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.75:
            self.add(keyed=True)
        elif roll < 0.85:
            self.send(Op(self.name, self.cart, "checkout"), "POST", "/api/cart/checkout")
        self.read()


class Shop:
    def __init__(self, client: Any) -> None:
        self._gateway = client.http._local_gateway
        self._lock = threading.Lock()
        self.history: list[Op] = []

    def request(self, method: str, path: str, headers: dict[str, str],
                body: Any) -> HTTPResponse:
        data = json.dumps(body).encode() if body is not None else b""
        response = self._gateway.handle_request(method=method, path=path, headers=headers,
                                                body=data)
        return HTTPResponse.create_from_dict(response)

    def record(self, op: Op) -> Op:
        with self._lock:
            op.index = len(self.history)
            self.history.append(op)
        return op


@pytest.fixture
def threaded_app(monkeypatch):
    monkeypatch.setattr(app, "__class__", ThreadedChalice)
    monkeypatch.setattr(cart_store, "MAX_LINES", MAX_LINES)
    yield app


def orders_of(dynamodb, cart_id: str) -> list[dict[str, Any]]:
    return dynamodb.query(
        TableName=TABLE_NAME, ConsistentRead=True,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :o)",
        ExpressionAttributeValues={":pk": {"S": table.cart_pk(cart_id)},
                                   ":o": {"S": table.ORDER_PREFIX}})["Items"]


def order_lines(item: dict[str, Any]) -> dict[str, int]:
    return {line["M"]["productId"]["S"]: int(line["M"]["quantity"]["N"])
            for line in item["lines"]["L"]}


def cart_id_of(cookie: str) -> str:
    return cookie.split("=", 1)[1].split(".")[0]


def test_every_promise_holds_in_a_history_of_concurrent_shoppers_meeting_faults(
        client, threaded_app, stream, dynamodb, capsys):
    shop = Shop(client)
    rng = random.Random(SEED_VALUE)
    private = [Shopper(shop, f"p{n}", f"private:{n}", rng.getrandbits(32))
               for n in range(PRIVATE_CLIENTS)]
    shared = [SharedShopper(shop, f"s{n}", "shared:0", rng.getrandbits(32))
              for n in range(SHARED_CLIENTS)]
    # The shared cart exists before the run: its shoppers hold one cookie.
    opener = shared[0]
    first = opener.send(Op(opener.name, opener.cart, "add", PRODUCTS[0], 1, "open"),
                        "POST", "/api/cart/items", {"productId": PRODUCTS[0], "quantity": 1},
                        "open")
    assert first.status == 201
    for shopper in shared[1:]:
        shopper.cookie = opener.cookie

    started = time.monotonic()
    scope = client.http._config.scope(client.http._config.chalice_stage, "api_handler")
    with client.http._patched_env_vars(scope.environment_variables), \
            Faults(runtime.dynamodb_client()) as faults:
        faults.serialize().chaos(SEED_VALUE, FAULT_RATE, KINDS)

        def run(shopper: Shopper) -> None:
            for _ in range(OPS_PER_CLIENT):
                shopper.step()

        with ThreadPoolExecutor(max_workers=len(private) + len(shared)) as pool:
            list(pool.map(run, private + shared))
        faults.heal()
        faults.settle()  # every stalled write has landed
        injected = Counter(kind for _, kind in faults.injected)
        # A last read of each cart, with no faults: the state the checker ends on.
        for shopper in private + shared[:1]:
            shopper.read()
    elapsed = time.monotonic() - started

    report = Report()
    carts: dict[str, dict[str, int]] = {}
    cookies: dict[str, str] = {}
    for shopper in private:
        ops = [op for op in shop.history if op.client == shopper.name]
        result, _ = check_private(ops, MAX_LINES)
        report.add(result)
        if shopper.cookie is None:
            continue
        cart_id = cart_id_of(shopper.cookie)
        carts[cart_id], cookies[cart_id] = read_lines(ops[-1].body), shopper.cookie
        # Every order is one the shopper was told of (with exactly its lines), or one an
        # indefinite checkout placed.
        stored = {item["orderId"]["S"]: order_lines(item)
                  for item in orders_of(dynamodb, cart_id)}
        told = {op.body["orderId"]: {i["productId"]: i["quantity"] for i in op.body["items"]}
                for op in ops if op.kind == "checkout" and op.status == 201}
        for order_id, lines in told.items():
            if stored.get(order_id) != lines:
                report.anomalies.append(f"{shopper.cart}: order {order_id} {lines} is "
                                        f"stored as {stored.get(order_id)}")
        unknown = len(set(stored) - set(told))
        maybe = sum(1 for op in ops if op.kind == "checkout" and op.indefinite)
        if unknown > maybe:
            report.anomalies.append(f"{shopper.cart}: {unknown} orders nobody was told of")
    shared_ops = [op for op in shop.history if op.cart == "shared:0"]
    shared_id = cart_id_of(opener.cookie or "")
    carts[shared_id] = read_lines(shared_ops[-1].body)  # the opener's last read
    cookies[shared_id] = opener.cookie or ""
    report.add(check_shared(shared_ops, carts[shared_id],
                            [order_lines(i) for i in orders_of(dynamodb, shared_id)], MAX_LINES))

    # Convergence: the stream's follow-ups catch up with what the carts hold.
    stream.drain(rounds=8)
    for cart_id, lines in carts.items():
        status = json.loads(shop.request("GET", "/api/cart/status",
                                         {**JSON, "Cookie": cookies[cart_id]}, None).body)
        if status["itemCount"] != sum(lines.values()):
            report.anomalies.append(f"cart {cart_id}: status {status} but lines {lines}")
    holding = Counter(product for lines in carts.values() for product in lines)
    products = json.loads(shop.request("GET", "/api/products", dict(JSON), None).body)
    counts = {p["id"]: p["inCarts"] for p in products["products"] if p["inCarts"]}
    if counts != dict(holding):
        report.anomalies.append(f"inCarts {counts}, carts hold {dict(holding)}")
    placed = [item for cart_id in carts for item in orders_of(dynamodb, cart_id)]
    # Stock (issue 17): what the orders hold left the shelves, nothing else did (a
    # re-sent or late checkout takes no unit twice), and no shard went below zero.
    sold: Counter[str] = Counter()
    for item in placed:
        sold.update(order_lines(item))
    seeded = {product.id: product for product in SEED}
    levels = runtime.repository().stock.levels(
        {p: seeded[p].stock_shards for p in PRODUCTS}, consistent=True)
    for product_id, shards in levels.items():
        units = [int(shard["units"]["N"]) for shard in shards if shard]
        if min(units) < 0 or seeded[product_id].stock - sum(units) != sold[product_id]:
            report.anomalies.append(f"{product_id}: stock {seeded[product_id].stock} -> "
                                    f"{units}, but the orders hold {sold[product_id]}")
    unconfirmed = [i["orderId"]["S"] for i in placed if i["status"]["S"] != "CONFIRMED"]
    if unconfirmed:
        report.anomalies.append(f"orders never confirmed: {unconfirmed}")

    with capsys.disabled():
        print(f"\nhistory (seed {SEED_VALUE}): {report.operations} operations, "
              f"{len(private)} private carts and 1 shared by {len(shared)} shoppers, "
              f"{report.reads} reads checked, {report.orders} orders, "
              f"{report.indefinite} indefinite (503), {sum(sold.values())} units sold; "
              f"faults injected: "
              f"{sum(injected.values())} {dict(injected)}; anomalies found: "
              f"{len(report.anomalies)}; {elapsed:.1f} s")
    assert report.anomalies == []
    assert sum(injected.values()) > 0
    assert set(injected) & {"late", "response-lost"} and set(injected) & set(ERRORS)
