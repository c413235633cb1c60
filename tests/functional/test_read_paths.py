"""Every route's DynamoDB calls and every cache match what the scale model declares.

Each route of app.py is driven as a browser would, on a controlled clock, with
a counting botocore hook on the app's own client, three times: in a new
container (runtime.reset()), warm, and once every cache's lifetime has passed.
Warm must be the route's declared figures (bench/read_paths.py); what a new
container or the passing of time adds must be the refill of caches declared in
chalicelib/caching.py. A new call, route or cache fails here until the model
declares it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import NOT_FOUND_ROUTE, app
from bench import read_paths
from chalicelib import caching, runtime
from tests.factories import SEED, add_body
from tests.functional.test_accounts import PASSWORD, Browser, sign_up

T0 = 1_800_000_000.0
EMAIL = "model@example.com"


class Shop:
    """The app on a controlled clock, its calls counted."""

    def __init__(self, client: Client, stream: Any) -> None:
        self.client = client
        self.stream = stream
        self.now = T0
        self.calls: Counter[str] = Counter()
        self.counting = False
        self._fetch = runtime._cache.get("jwks_fetch")
        self.products = itertools.cycle([p.id for p in SEED])
        self.new_container()

    def new_container(self) -> None:
        runtime.reset()
        if self._fetch is not None:
            runtime.use_jwks(self._fetch)
        runtime.use_clock(lambda: self.now)
        runtime.dynamodb_client().meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        if self.counting:
            self.calls[model.name] += 1

    def count(self, send: Callable[[], Any]) -> Counter[str]:
        self.calls = Counter()
        self.counting = True
        try:
            response = send()
        finally:
            self.counting = False
        assert response.status_code < 400, response.body
        return self.calls

    @staticmethod
    def _setup(browser: Browser, method: str, path: str, body: Any = None) -> None:
        # A loaded machine can push moto past a request's deadline (a 503): the
        # setup is not what this test checks, so it is sent again.
        for _ in range(5):
            response = browser.send(method, path, body)
            if response.status_code != 503:
                assert response.status_code < 300, response.body
                return
        raise AssertionError(f"{method} {path}: 503 five times")

    def browser(self, lines: int = 2, orders: int = 0) -> Browser:
        """A browser whose cart holds `lines` lines and placed `orders` orders."""
        browser = Browser(self.client)
        for _ in range(orders):
            self._setup(browser, "POST", "/api/cart/items", add_body(next(self.products), 1))
            self._setup(browser, "POST", "/api/cart/checkout")
        for _ in range(lines):
            self._setup(browser, "POST", "/api/cart/items", add_body(next(self.products), 1))
        self.stream.drain()
        # The drain stands for time passing (it expires the caches): fill them again.
        assert self.client.http.get("/").status_code == 200
        return browser


Prepare = Callable[[Shop], Callable[[], Any]]


def _send(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
          lines: int = 2, orders: int = 0) -> Prepare:
    def prepare(shop: Shop) -> Callable[[], Any]:
        browser = shop.browser(lines, orders)
        order_id = ""
        if "{order_id}" in path:
            order_id = browser.send("GET", "/api/orders").json_body["orders"][0]["orderId"]
        product = browser.lines()[0][0] if browser.lines() else "kettle"
        target = path.replace("{order_id}", order_id).replace("{product_id}", product)
        return lambda: browser.send(method, target, body, headers)
    return prepare


def _new_line(keyed: bool) -> Prepare:
    def prepare(shop: Shop) -> Callable[[], Any]:
        browser = shop.browser()
        held = {product for product, _ in browser.lines()}
        product = next(p for p in shop.products if p not in held)
        headers = {"Idempotency-Key": f"key-{shop.now}-{product}"} if keyed else None
        return lambda: browser.send("POST", "/api/cart/items", add_body(product, 1), headers)
    return prepare


def _existing_line(shop: Shop) -> Callable[[], Any]:
    browser = shop.browser()
    product = browser.lines()[0][0]
    return lambda: browser.send("POST", "/api/cart/items", add_body(product, 1))


def _signed_in(method: str, path: str, body: Any = None) -> Prepare:
    def prepare(shop: Shop) -> Callable[[], Any]:
        browser = Browser(shop.client)
        assert browser.sign_in(EMAIL).status_code == 200
        return lambda: browser.send(method, path, body)
    return prepare


def _sign_in(shop: Shop) -> Callable[[], Any]:
    browser = shop.browser(lines=2, orders=1)
    return lambda: browser.sign_in(EMAIL)


_COUNTER = itertools.count()


def _sign_up(shop: Shop) -> Callable[[], Any]:
    email = f"new{next(_COUNTER)}@example.com"
    return lambda: Browser(shop.client).send("POST", "/api/account/signup",
                                             {"email": email, "password": PASSWORD})


def _confirm(shop: Shop) -> Callable[[], Any]:
    email = f"new{next(_COUNTER)}@example.com"
    sign_up(shop.client, email, confirm=False)
    return lambda: Browser(shop.client).send("POST", "/api/account/confirm",
                                             {"email": email, "code": "123456"})


CASES: dict[str, Prepare] = {
    "GET /": _send("GET", "/"),
    "GET /cart": _send("GET", "/cart"),
    "GET /account": _send("GET", "/account"),
    "GET /orders": _send("GET", "/orders", orders=1),
    "GET /orders/{order_id}": _send("GET", "/orders/{order_id}", orders=1),
    "GET /static/{name}": _send("GET", "/static/app.js", lines=0, orders=0),
    "GET /static/img/{name}": _send("GET", "/static/img/kettle.svg", lines=0, orders=0),
    "GET /{proxy+}": lambda shop: lambda: _not_found(shop),
    "GET /api/openapi.json": _send("GET", "/api/openapi.json", lines=0, orders=0),
    "GET /api/products": _send("GET", "/api/products"),
    "GET /api/cart": _send("GET", "/api/cart"),
    "GET /api/cart/status": _send("GET", "/api/cart/status"),
    "POST /api/cart/items": _new_line(keyed=True),
    "POST /api/cart/items:unkeyed, existing line": _existing_line,
    "PUT /api/cart/items/{product_id}": _send("PUT", "/api/cart/items/{product_id}",
                                              {"quantity": 3}),
    "DELETE /api/cart/items/{product_id}": _send("DELETE", "/api/cart/items/{product_id}"),
    "POST /api/cart/checkout": _send("POST", "/api/cart/checkout",
                                     headers={"Idempotency-Key": "checkout-key-1"}),
    "GET /api/orders/{order_id}": _send("GET", "/api/orders/{order_id}", orders=1),
    "GET /api/orders": _send("GET", "/api/orders", orders=1),
    "POST /api/account/signup": _sign_up,
    "POST /api/account/confirm": _confirm,
    "POST /api/account/signin": _sign_in,
    "POST /api/account/signout": _signed_in("POST", "/api/account/signout"),
    "GET /api/account": _signed_in("GET", "/api/account"),
}


def _not_found(shop: Shop) -> Any:
    response = shop.client.http.get("/no/such/page")
    assert response.status_code == 404
    response.status_code = 200  # the route answered as it should
    return response


@pytest.fixture
def shop(client: Client, stream: Any, user_pool: tuple[str, str]) -> Iterator[Shop]:
    sign_up(client, EMAIL)
    yield Shop(client, stream)
    runtime.reset()


def _refills() -> set[tuple[tuple[str, int], ...]]:
    """Every sum of declared refills: what passing time or a new container may add."""
    names = list(read_paths.CACHE_REFILLS)
    sums = set()
    for size in range(len(names) + 1):
        for chosen in itertools.combinations(names, size):
            sums.add(tuple(sorted(read_paths.refill(list(chosen)).items())))
    return sums


def test_every_route_of_the_app_is_declared_and_driven() -> None:
    # HEAD is answered by its GET's view (the same calls, no body).
    routes = {f"{method} {path}" for path, entries in app.routes.items()
              for method in entries if path != NOT_FOUND_ROUTE
              and not (method == "HEAD" and "GET" in entries)}
    routes.add(f"GET {NOT_FOUND_ROUTE}")
    declared = {key.split(":", 1)[0] for key in read_paths.ROUTES}
    assert routes == declared, "declare the new route in bench/read_paths.py"
    assert set(CASES) == set(read_paths.ROUTES)


def test_every_cache_the_code_keeps_is_one_the_model_prices() -> None:
    import chalicelib.services  # noqa: F401  (its caches register on import)

    assert {c.name for c in caching.registered()} == set(read_paths.CACHE_REFILLS)


def test_every_route_makes_the_declared_calls_and_caches_only_what_is_declared(
        shop: Shop) -> None:
    wrong: list[str] = []
    lifetime = max(c.seconds for c in caching.registered())
    for route, prepare in CASES.items():
        read = route.startswith("GET ")  # the same request can be sent again
        send = prepare(shop)
        shop.new_container()
        cold = shop.count(send)
        warm = shop.count(send if read else prepare(shop))
        if warm != read_paths.expected(route):
            wrong.append(f"{route} now makes {dict(warm)}, declared "
                         f"{read_paths.ROUTES[route]}: update bench/read_paths.py")
            continue
        if not read:
            send = prepare(shop)
        shop.now += lifetime + 0.01
        stale = shop.count(send)
        if warm - cold or tuple(sorted((cold - warm).items())) not in _refills():
            wrong.append(f"{route} in a new container makes {dict(cold)}, warm {dict(warm)}: "
                         "not the refill of declared caches")
        declared = read_paths.refill(list(read_paths.CACHES_READ.get(route.split(":")[0], ())))
        if stale - warm != declared or warm - stale:
            wrong.append(f"{route} once every cache expired makes {dict(stale)}, warm "
                         f"{dict(warm)}: declared refills {dict(declared)} "
                         "(bench/read_paths.py CACHES_READ)")
    assert not wrong, "\n".join(wrong)


def test_each_cache_is_refilled_just_after_its_declared_lifetime(shop: Shop) -> None:
    send = CASES["GET /"](shop)  # a read: the same request every time

    def refill_after(seconds: float) -> Counter[str]:
        runtime.cart_service().catalog.expire()
        shop.now += 3600
        shop.count(send)  # every cache loaded now
        warm = shop.count(send)
        shop.now += seconds
        return shop.count(send) - warm

    caches = caching.registered()
    for cache in caches:
        shorter = [c.name for c in caches if c.seconds < cache.seconds]
        upto = [c.name for c in caches if c.seconds <= cache.seconds]
        assert refill_after(cache.seconds - 0.01) == read_paths.refill(shorter), cache.name
        assert refill_after(cache.seconds + 0.01) == read_paths.refill(upto), cache.name


def test_a_cart_view_reads_its_prices_from_stock_shards_not_the_catalog_partition(
        shop: Shop) -> None:
    """Every product item lives under CATALOG: a view reading them took every view's reads."""
    from chalicelib import table

    send = CASES["GET /api/cart"](shop)
    keys: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        for request in params.get("RequestItems", {}).values():
            keys.extend(k["pk"]["S"] for k in request.get("Keys", []))

    runtime.dynamodb_client().meta.events.register(
        "provide-client-params.dynamodb.BatchGetItem", record)
    response = send()
    assert response.status_code == 200 and response.json_body["items"]
    assert keys and table.CATALOG_PK not in keys
    assert all(k.startswith(table.STOCK_PREFIX) for k in keys)
