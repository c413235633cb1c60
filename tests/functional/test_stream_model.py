"""A stateful model of carts and their stream: random histories, exact outcomes.

Hypothesis drives random sequences of add (with and without Idempotency-Key,
retried or not) / set / remove / checkout / expire through the app and moto,
and delivers the table's real stream records to the follow-ups in random
batches, with duplicated records and replays of old batches. Whenever the
stream has drained: every cart's summary equals its lines, each product's
`inCarts` equals the number of carts holding it, and every quantity is 1..99.

The fault layer (tests/functional/botocore_faults.py) is on throughout, so the
app meets what real DynamoDB does and moto does not: eventually consistent
reads miss recent writes, a transaction holds at most 100 actions, an add
lands on a line while a checkout's transaction holds it (a 503, nothing
applied), another stream shard's transaction holds a popularity counter
(TransactionConflict), and a batch meets a store whose retries are spent
(its failures are retried from the lowest sequence reported, as Lambda does).

"expire" is DynamoDB's TTL deleting a line. moto never expires items, so the
test deletes the line itself and then marks the REMOVE record the way the TTL
process signs it (userIdentity: Service, dynamodb.amazonaws.com) before it is
delivered.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
from chalice.test import Client
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, precondition, rule
from moto import mock_aws

from app import app
from chalicelib import followups, runtime, table
from chalicelib.domain import MAX_QUANTITY
from chalicelib.repository import DynamoCartRepository
from chalicelib.store import retry
from devstack.streams import StreamReader
from tests.factories import SEED, TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import CONFLICTED, Exhausted, Faults
from tests.functional.conftest import Stream, request

PRODUCTS = ("espresso-cup", "kettle", "grinder")
PRICES = {product.id: product.price_cents for product in SEED}
TTL_PRINCIPAL = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
KEYS = st.none() | st.sampled_from(["a", "b"])
RUNS = {"examples": 0, "steps": 0, "faults": 0}


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering, the part STREAM_FILTER_PATTERNS uses: literals and prefixes."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            _matches(p, value.get(k)) for k, p in pattern.items())
    return any(value == p or (isinstance(p, dict) and isinstance(value, str)
                              and value.startswith(p["prefix"])) for p in pattern)


def delivered_by_lambda(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the mapping's filter lets through (the follow-ups' own writes do not)."""
    return [r for r in records
            if any(_matches(p, r) for p in followups.STREAM_FILTER_PATTERNS)]


def body(response: Any) -> Any:
    return json.loads(response.body)


class CartsAndStream(RuleBasedStateMachine):
    carts = Bundle("carts")

    def __init__(self) -> None:
        super().__init__()
        self._aws = mock_aws()
        self._aws.start()
        runtime.reset()
        self.dynamodb = boto3.client("dynamodb")
        stream_arn = table.create_table(self.dynamodb, TABLE_NAME)
        DynamoCartRepository(self.dynamodb, TABLE_NAME).seed_products(SEED)
        self.faults = Faults(runtime.dynamodb_client()).__enter__()
        # The cart's items read stale; the stock shards (read through the catalog's
        # own cache) as written: see Faults.stale.
        self.faults.stale(apart=(table.STOCK_PREFIX,))
        self._client_context = Client(app)
        self.client = self._client_context.__enter__()
        self.stream = Stream(self.client, stream_arn)
        # A cancelled transaction makes moto put back a copy of the table, stream
        # shard included: iterators taken before then see nothing new. Take a
        # fresh one after every empty read (devstack.streams.StreamReader).
        self.stream.reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn,
                                          reanchor_after=1)
        self.lines: dict[str, dict[str, int]] = {}
        # cart -> key -> (the request, the first answer)
        self.keys: dict[str, dict[str, tuple[Any, Any]]] = {}
        self.pending: list[dict[str, Any]] = []
        self.delivered: list[list[dict[str, Any]]] = []
        RUNS["examples"] += 1

    def teardown(self) -> None:
        try:
            self.settle()
        finally:
            RUNS["faults"] += len(self.faults.injected)
            self.faults.__exit__(None, None, None)
            self._client_context.__exit__(None, None, None)
            runtime.reset()
            self._aws.stop()

    # -- the app ---------------------------------------------------------------

    def _remembered(self, cart: str, key: str | None, what: Any) -> Any:
        """The first answer for a key already used on this cart; None if unused."""
        if key is None or key not in self.keys[cart]:
            return None
        first_request, first_answer = self.keys[cart][key]
        return first_answer if first_request == what else 422

    @rule(target=carts, product=st.sampled_from(PRODUCTS),
          quantity=st.integers(1, MAX_QUANTITY))
    def open_cart(self, product: str, quantity: int) -> str:
        RUNS["steps"] += 1
        response = request(self.client, "POST", "/api/cart/items", body=add_body(product, quantity))
        assert response.status_code == 201, response.body
        cart = cookie_from(response)
        self.lines[cart] = {product: quantity}
        self.keys[cart] = {}
        return cart

    @rule(cart=carts, product=st.sampled_from(PRODUCTS),
          quantity=st.integers(1, MAX_QUANTITY), key=KEYS, retried=st.booleans())
    def add(self, cart: str, product: str, quantity: int, key: str | None,
            retried: bool) -> None:
        RUNS["steps"] += 1
        what = ("add", product, quantity)
        remembered = self._remembered(cart, key, what)
        headers = {"Idempotency-Key": key} if key else None
        response = request(self.client, "POST", "/api/cart/items", cart,
                           add_body(product, quantity), headers)
        held = self.lines[cart].get(product, 0)
        if remembered == 422:
            assert response.status_code == 422
        elif remembered is not None:
            assert (response.status_code, body(response)) == (201, remembered)
        elif held + quantity > MAX_QUANTITY:
            assert response.status_code == 409
        else:
            assert response.status_code == 201
            assert body(response)["quantity"] == held + quantity
            self.lines[cart][product] = held + quantity
            if key is not None:
                self.keys[cart][key] = (what, body(response))
        if key is not None and retried and response.status_code == 201:
            again = request(self.client, "POST", "/api/cart/items", cart,
                            add_body(product, quantity), headers)
            assert (again.status_code, body(again)) == (201, body(response))

    @rule(cart=carts, product=st.sampled_from(PRODUCTS), quantity=st.integers(0, MAX_QUANTITY))
    def set_quantity(self, cart: str, product: str, quantity: int) -> None:
        RUNS["steps"] += 1
        response = request(self.client, "PUT", f"/api/cart/items/{product}", cart,
                           {"quantity": quantity})
        if quantity == 0:
            assert response.status_code == 204
            self.lines[cart].pop(product, None)
        elif product in self.lines[cart]:
            assert (response.status_code, body(response)["quantity"]) == (200, quantity)
            self.lines[cart][product] = quantity
        else:
            assert response.status_code == 404

    @rule(cart=carts, product=st.sampled_from(PRODUCTS))
    def remove(self, cart: str, product: str) -> None:
        RUNS["steps"] += 1
        response = request(self.client, "DELETE", f"/api/cart/items/{product}", cart)
        assert response.status_code == 204
        self.lines[cart].pop(product, None)

    @rule(cart=carts, key=KEYS)
    def checkout(self, cart: str, key: str | None) -> None:
        RUNS["steps"] += 1
        remembered = self._remembered(cart, key, ("checkout",))
        headers = {"Idempotency-Key": key} if key else None
        response = request(self.client, "POST", "/api/cart/checkout", cart, headers=headers)
        if remembered == 422:
            assert response.status_code == 422
        elif remembered is not None:
            assert (response.status_code, body(response)) == (201, remembered)
        elif not self.lines[cart]:
            assert response.status_code == 409
        else:
            assert response.status_code == 201
            order = body(response)
            assert {i["productId"]: i["quantity"] for i in order["items"]} == self.lines[cart]
            self.lines[cart] = {}
            if key is not None:
                self.keys[cart][key] = (("checkout",), order)

    @rule(cart=carts, product=st.sampled_from(PRODUCTS), quantity=st.integers(1, 5))
    def add_during_checkout(self, cart: str, product: str, quantity: int) -> None:
        """An add lands while checkout's transaction is in flight on the same cart."""
        RUNS["steps"] += 1
        if not self.lines[cart]:
            return
        answers: list[Any] = []

        def add() -> None:
            held = app.current_request
            try:
                answers.append(request(self.client, "POST", "/api/cart/items", cart,
                                       add_body(product, quantity)))
            finally:
                app.current_request = held

        self.faults.during("TransactWriteItems", add)
        deadline, retry.DEADLINE_SECONDS = retry.DEADLINE_SECONDS, 0.2  # it cannot land
        try:
            order = request(self.client, "POST", "/api/cart/checkout", cart)
        finally:
            retry.DEADLINE_SECONDS = deadline
        assert order.status_code == 201, order.body
        assert {i["productId"]: i["quantity"] for i in body(order)["items"]} == self.lines[cart]
        if product in self.lines[cart]:
            # The line is inside the transaction: DynamoDB cancels the add's, and the add
            # tries again until its deadline. Here the checkout stays in flight all that
            # time: a 503, nothing applied (on DynamoDB the checkout commits in
            # milliseconds and the add lands).
            assert answers[0].status_code == 503
            assert answers[0].headers["Retry-After"] == "1"
            self.lines[cart] = {}
        else:
            # A new line touches nothing the checkout holds (the header is not counted
            # down): it lands, after the checkout's read, and stays in the cart.
            assert answers[0].status_code == 201, answers[0].body
            self.lines[cart] = {product: quantity}

    @rule(cart=carts, product=st.sampled_from(PRODUCTS))
    def expire(self, cart: str, product: str) -> None:
        RUNS["steps"] += 1
        if product not in self.lines[cart]:
            return
        self.pending.extend(delivered_by_lambda(self.stream.read()))
        cart_id = cart.split("=", 1)[1].split(".")[0]
        self.dynamodb.delete_item(TableName=TABLE_NAME, Key={
            "pk": {"S": table.cart_pk(cart_id)}, "sk": {"S": table.line_sk(product)}})
        removal = self.stream.read()
        assert [r["eventName"] for r in removal] == ["REMOVE"]
        removal[0]["userIdentity"] = TTL_PRINCIPAL
        self.pending.extend(removal)
        del self.lines[cart][product]

    # -- the stream --------------------------------------------------------------

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for name, result in self.stream.deliver(batch).items():
            assert result == {"batchItemFailures": []}, (name, result)

    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """Deliver the oldest pending records; maybe one of them twice."""
        RUNS["steps"] += 1
        self.pending.extend(delivered_by_lambda(self.stream.read()))
        if not self.pending:
            return
        size = data.draw(st.integers(1, len(self.pending)), label="batch size")
        batch, self.pending = self.pending[:size], self.pending[size:]
        if data.draw(st.booleans(), label="duplicate a record"):
            at = data.draw(st.integers(0, len(batch) - 1), label="duplicated")
            batch.insert(at + 1, copy.deepcopy(batch[at]))
        self._deliver(batch)
        self.delivered.append(batch)

    @rule(data=st.data(), conflict=st.booleans())
    def deliver_under_faults(self, data: st.DataObject, conflict: bool) -> None:
        """A batch meets a counter held by another shard, or a store out of retries.

        Spent retries: Lambda retries from the lowest sequence reported, so the
        records from there on go back to the front of the queue.
        """
        RUNS["steps"] += 1
        self.pending.extend(delivered_by_lambda(self.stream.read()))
        if not self.pending:
            return
        size = data.draw(st.integers(1, len(self.pending)), label="batch size")
        batch, self.pending = self.pending[:size], self.pending[size:]
        if conflict:
            self.faults.fail("TransactWriteItems", CONFLICTED)
            self._deliver(batch)
            self.faults.heal()
            self.delivered.append(batch)
            return
        with Exhausted(runtime.dynamodb_client(), "throughput",
                       ("PutItem", "TransactWriteItems", "UpdateItem")) as exhausted:
            result = self.stream.deliver(batch)["process_stream"]
        RUNS["faults"] += len(exhausted.injected)
        failures = [int(f["itemIdentifier"]) for f in result["batchItemFailures"]]
        if failures:
            retry_from = min(failures)
            self.pending = [r for r in batch
                            if int(r["dynamodb"]["SequenceNumber"]) >= retry_from] + self.pending

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """Lambda delivers an old batch again (a retry after a timeout, say)."""
        RUNS["steps"] += 1
        self._deliver(data.draw(st.sampled_from(self.delivered), label="replayed batch"))

    @rule()
    def settle(self) -> None:
        """Drain the stream, then compare what it built with the lines."""
        self.pending.extend(delivered_by_lambda(self.stream.read()))
        if self.pending:
            self._deliver(self.pending)
            self.delivered.append(self.pending)
            self.pending = []
        self.stream.drain()
        # The counts are read eventually consistently: by the time the catalog
        # cache lets a shopper see them, the replicas have caught up.
        self.faults.catch_up()
        holders = {product: 0 for product in PRICES}
        for cart, lines in self.lines.items():
            shown = body(request(self.client, "GET", "/api/cart", cart))
            assert {i["productId"]: i["quantity"] for i in shown["items"]} == lines
            assert all(1 <= q <= MAX_QUANTITY for q in lines.values())
            status = body(request(self.client, "GET", "/api/cart/status", cart))
            expected = (sum(lines.values()), sum(PRICES[p] * q for p, q in lines.items()))
            assert (status["itemCount"], status["subtotalCents"]) == expected, cart
            for product in lines:
                holders[product] += 1
        products = body(request(self.client, "GET", "/api/products"))["products"]
        assert {p["id"]: p["inCarts"] for p in products} == holders


CartsAndStream.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestCartsAndStream = CartsAndStream.TestCase


def test_the_model_ran() -> None:
    # Runs after TestCartsAndStream, in file order: the counts (`pytest -s` shows them).
    print(f"\nstream model: {RUNS['examples']} examples, {RUNS['steps']} steps, "
          f"{RUNS['faults']} faults injected")
    assert RUNS["examples"] >= 20 and RUNS["steps"] >= RUNS["examples"]
    assert RUNS["faults"] > 0
