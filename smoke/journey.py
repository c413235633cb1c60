"""`python -m smoke --base-url URL`: one shopper's journey against a running stack.

Local (`make run`: http://127.0.0.1:8000) or deployed (the URL `make deploy`
prints, https://.../api/): the same steps, over HTTP only, in one new cart of
its own. Each step prints ok or FAIL; the first failure ends the run with its
step named and exit status 1. Whatever the outcome, the lines it put in its
cart are removed again; the order it placed stays, as every order does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
REQUEST_TIMEOUT = 10.0
# From a write to its follow-up (summary, confirmation) through the stream:
# ~1 s locally; Lambda's stream polling adds a little when deployed.
STREAM_DEADLINE = 30.0
POLL_SECONDS = 0.25

Out = Callable[[str], None]


class StepFailed(Exception):
    """What the step expected and what the stack answered."""


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass
class Journey:
    base_url: str
    stream_deadline: float = STREAM_DEADLINE
    out: Out = _say
    session: requests.Session = field(default_factory=requests.Session)
    added: set[str] = field(default_factory=set)
    product: dict[str, Any] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    order_id: str = ""

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("products", self.products),
            ("add", self.add),
            ("cart-status", self.cart_status),
            ("display", self.display),
            ("set", self.set_quantity),
            ("remove", self.remove),
            ("checkout", self.checkout),
            ("order-confirmed", self.order_confirmed),
            ("bad-input", self.bad_input),
        ]

    # -- HTTP -----------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None) -> requests.Response:
        url = self.base_url.rstrip("/") + path
        data = body if isinstance(body, str) or body is None else json.dumps(body)
        try:
            return self.session.request(method, url, data=data, timeout=REQUEST_TIMEOUT,
                                        headers={**JSON_HEADERS, **(headers or {})})
        except requests.RequestException as exc:
            raise StepFailed(f"{method} {path}: no answer ({type(exc).__name__}: {exc})") from exc

    def _expect(self, response: requests.Response, status: int) -> Any:
        """The JSON body of an answer with this status; StepFailed otherwise."""
        request = response.request
        what = f"{request.method} {request.path_url}"
        if response.status_code != status:
            raise StepFailed(f"{what}: expected {status}, got {response.status_code}: "
                             f"{response.text[:300]}")
        if status == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise StepFailed(f"{what}: the answer is not JSON: {response.text[:200]}") from exc

    def _poll(self, what: str, read: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
        deadline = time.monotonic() + self.stream_deadline
        while True:
            value = read()
            if done(value):
                return value
            if time.monotonic() >= deadline:
                raise StepFailed(f"{what} within {self.stream_deadline:g} s; last answer: "
                                 f"{json.dumps(value)[:300]}")
            time.sleep(POLL_SECONDS)

    @staticmethod
    def _check(condition: bool, message: str) -> None:
        if not condition:
            raise StepFailed(message)

    # -- the steps ------------------------------------------------------

    def _root(self) -> None:
        """Take either form of the base URL: the shop's root, or a root ending in /api/.

        The app's paths start with /api/. Deployed, the URL `make deploy` prints
        ends with the stage (https://.../api/), so the products are at
        https://.../api/api/products; `chalice local` has no stage, so
        http://127.0.0.1:8000/api/ would look for /api/api/products. A base
        ending in /api whose /api/products is missing while the one above it
        answers is taken for the root above it, and the journey says so.
        """
        base = self.base_url.rstrip("/")
        if not base.endswith("/api") or self._call("GET", "/api/products").status_code != 404:
            return
        above = base.removesuffix("/api")
        try:
            answer = self.session.get(above + "/api/products", headers=JSON_HEADERS,
                                      timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            return
        if answer.status_code == 200:
            self.out(f"  note  {base}/api/products is not found but {above}/api/products "
                     f"is: the shop's root is {above}")
            self.base_url = above

    def products(self) -> None:
        self._root()
        listed = self._expect(self._call("GET", "/api/products"), 200).get("products")
        # Only products with units enough for the journey's adds (a sold-out one is a 409).
        if isinstance(listed, list):
            listed = [p for p in listed if isinstance(p, dict) and not p.get("soldOut")
                      and p.get("stock", 99) >= 3]
        self._check(isinstance(listed, list) and len(listed) >= 2,
                    f"expected at least two products, got {listed!r:.200}")
        for product in listed[:2]:
            self._check(isinstance(product.get("id"), str)
                        and isinstance(product.get("priceCents"), int),
                        f"a product without an id or integer priceCents: {product!r:.200}")
        self.product, self.other = listed[0], listed[1]

    def _add(self, product: dict[str, Any], quantity: int) -> dict[str, Any]:
        body = {"productId": product["id"], "quantity": quantity}
        response = self._call("POST", "/api/cart/items", body,
                              {"Idempotency-Key": uuid.uuid4().hex})
        self.added.add(product["id"])  # even if the answer was lost, clean it up
        line: dict[str, Any] = self._expect(response, 201)
        return line

    def add(self) -> None:
        line = self._add(self.product, 2)
        self._check(line.get("quantity") == 2
                    and line.get("lineTotalCents") == 2 * self.product["priceCents"],
                    f"expected 2 x {self.product['id']}, got {line}")
        self._check(bool(self.session.cookies), "the add set no cart cookie")

    def cart_status(self) -> None:
        price = self.product["priceCents"]
        self._poll(
            "the cart's status did not show the 2 items added (through the stream)",
            lambda: self._expect(self._call("GET", "/api/cart/status"), 200),
            lambda s: s.get("itemCount") == 2 and s.get("subtotalCents") == 2 * price,
        )

    def display(self) -> None:
        cart = self._expect(self._call("GET", "/api/cart"), 200)
        lines = {line.get("productId"): line.get("quantity") for line in cart.get("items", [])}
        self._check(lines == {self.product["id"]: 2}, f"expected 2 x {self.product['id']}, "
                    f"the cart shows {lines}")
        self._check(cart.get("subtotalCents") == 2 * self.product["priceCents"],
                    f"wrong subtotal: {cart.get('subtotalCents')}")

    def set_quantity(self) -> None:
        line = self._expect(self._call("PUT", f"/api/cart/items/{self.product['id']}",
                                       {"quantity": 3}), 200)
        self._check(line.get("quantity") == 3, f"expected quantity 3, got {line}")

    def remove(self) -> None:
        self._add(self.other, 1)
        self._expect(self._call("DELETE", f"/api/cart/items/{self.other['id']}"), 204)
        self.added.discard(self.other["id"])
        cart = self._expect(self._call("GET", "/api/cart"), 200)
        ids = [line.get("productId") for line in cart.get("items", [])]
        self._check(ids == [self.product["id"]], f"after the remove the cart holds {ids}")

    def checkout(self) -> None:
        order = self._expect(self._call("POST", "/api/cart/checkout", None,
                                        {"Idempotency-Key": uuid.uuid4().hex}), 201)
        self._check(order.get("status") in ("PLACED", "CONFIRMED")
                    and order.get("subtotalCents") == 3 * self.product["priceCents"],
                    f"expected an order for 3 x {self.product['id']}, got {order!r:.300}")
        self.order_id = str(order.get("orderId", ""))
        self.added.clear()  # the order took the cart's lines
        cart = self._expect(self._call("GET", "/api/cart"), 200)
        self._check(cart.get("items") == [], f"the cart still holds {cart.get('items')}")

    def order_confirmed(self) -> None:
        self._poll(
            f"order {self.order_id} did not turn CONFIRMED (through the stream)",
            lambda: self._expect(self._call("GET", f"/api/orders/{self.order_id}"), 200),
            lambda order: order.get("status") == "CONFIRMED",
        )

    def bad_input(self) -> None:
        for body in ({"productId": self.product["id"], "quantity": "lots"}, "{not json"):
            response = self._call("POST", "/api/cart/items", body)
            self._check(400 <= response.status_code < 500,
                        f"bad input {body!r} answered {response.status_code}, not a 4xx")
            error = self._expect(response, response.status_code)
            self._check(isinstance(error, dict) and isinstance(error.get("Code"), str)
                        and isinstance(error.get("Message"), str),
                        f"a 4xx not in the error shape {{Code, Message}}: {error!r:.200}")
        cart = self._expect(self._call("GET", "/api/cart"), 200)
        self._check(cart.get("items") == [], f"bad input changed the cart: {cart}")

    # -- running --------------------------------------------------------

    def clean_up(self) -> None:
        """Remove what this journey left in its own cart (only its cookie's cart)."""
        for product_id in sorted(self.added):
            try:
                self._call("DELETE", f"/api/cart/items/{product_id}")
            except StepFailed as exc:
                self.out(f"  note  could not remove {product_id} from the smoke cart: {exc}")
        self.added.clear()

    def run(self) -> int:
        self.out(f"smoke: the shopper's journey against {self.base_url}")
        try:
            for name, step in self.steps():
                started = time.perf_counter()
                try:
                    step()
                except StepFailed as exc:
                    self.out(f"  FAIL  {name:<16} {exc}")
                    self.out(f"smoke: FAILED at step {name}")
                    return 1
                self.out(f"  ok    {name:<16} {(time.perf_counter() - started) * 1000:6.0f} ms")
        finally:
            self.clean_up()
        self.out("smoke: passed")
        return 0


def run(base_url: str, stream_deadline: float = STREAM_DEADLINE, out: Out = _say) -> int:
    return Journey(base_url, stream_deadline, out).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True,
                        help="the shop's root: http://127.0.0.1:8000 or the deployed "
                             "https://.../api/ (a local http://127.0.0.1:8000/api/ works too)")
    parser.add_argument("--stream-deadline", type=float, default=STREAM_DEADLINE,
                        help=f"seconds to wait for a follow-up (default {STREAM_DEADLINE:g})")
    args = parser.parse_args(argv)
    if not args.base_url.startswith(("http://", "https://")):
        print(f"smoke: --base-url must be an http(s) URL, not {args.base_url!r}",
              file=sys.stderr)
        return 2
    return run(args.base_url, args.stream_deadline)
