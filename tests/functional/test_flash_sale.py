"""A flash sale, scaled down: many shoppers check out one scarce product at once.

The issue's sale is 100 units and 2,000 shoppers; moto copies the table on
every transaction and answers one call at a time, so here it is UNITS units
over SHARDS allotment shards and SHOPPERS carts checked out by THREADS
threads. Requests really interleave between their DynamoDB calls. The
promise: exactly UNITS sold, stock 0, every other checkout a 409 out of
stock, no 5xx, and few internal retries, with transactions conflicting
and answers lost on the way (bench/flash_sale.py models the real sale).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import runtime, services
from chalicelib.catalog import OutOfStock
from chalicelib.domain import DomainError, StoreUnavailable
from chalicelib.store.retry import Deadline
from deploy import catalog as catalog_file
from tests.factories import KETTLE, add_body, cookie_from
from tests.functional.botocore_faults import CONFLICTED, Faults
from tests.functional.conftest import request

UNITS = 10
SHARDS = 4
SHOPPERS = 32
THREADS = 8


@pytest.fixture
def faults(client):
    with Faults(runtime.dynamodb_client()) as layer:
        yield layer


def outcome(service, cart_id):
    try:
        service.checkout(cart_id)
    except OutOfStock:
        return "409 out of stock"
    except StoreUnavailable:
        return "503"
    except DomainError as exc:
        return f"409 {type(exc).__name__}"
    except Exception as exc:  # a 500 in the API
        return f"500 {type(exc).__name__}"
    return "201"


def counter_adds(sent):
    """The counter ADDs of the TransactWriteItems sent: (product sk, delta)."""
    return [(body["Key"]["sk"]["S"], int(body["ExpressionAttributeValues"][":delta"]["N"]))
            for actions in sent for action in actions
            if (body := action.get("Update")) and body["Key"]["pk"]["S"].startswith(
                "POPULARITY#")]


def test_a_flash_sale_sells_exactly_the_stock_and_refuses_everyone_else(client, repo, faults,
                                                                      monkeypatch, stream):
    # A request retries within a deadline meant for DynamoDB's milliseconds; moto
    # answers one call at a time and a transaction takes it ~0.3 s, so THREADS
    # requests queue for seconds. The deadline is stretched by that factor.
    monkeypatch.setattr(services, "Deadline", functools.partial(Deadline, seconds=60))
    catalog_file.apply(repo.catalog, [dataclasses.replace(KETTLE, stock=UNITS,
                                                          stock_shards=SHARDS)],
                       out=lambda line: None)
    service = runtime.cart_service()
    service.catalog.expire()
    cookies = []
    for _ in range(SHOPPERS):
        for _attempt in range(3):  # moto slows as the table grows: a shopper retries a 503
            added = request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
            if added.status_code != 503:
                break
        assert added.status_code == 201
        cookies.append(cookie_from(added))
    carts = [cookie.split("=", 1)[1].split(".")[0] for cookie in cookies]
    # The stream counts the shoppers: one batch of SHOPPERS carts, one counter write.
    sent: list[list[dict]] = []
    runtime.dynamodb_client().meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems",
        lambda params, **_: sent.append(params["TransactItems"]))
    stream.drain()
    assert counter_adds(sent) == [("PRODUCT#kettle", SHOPPERS)]
    sent.clear()

    # Faults during the sale: transactions cancelled by a conflicting one (retried
    # inside the request) and lost answers of applied ones (botocore re-sends them;
    # the request record answers the order they placed, no unit is taken twice).
    faults.serialize().fail("TransactWriteItems", CONFLICTED, times=3)
    faults.fail("TransactWriteItems", "response-lost", times=2)
    transactions_before = faults.attempts.count("TransactWriteItems")
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        answers = Counter(pool.map(lambda cart_id: outcome(service, cart_id), carts))
    elapsed = time.perf_counter() - started
    transactions = faults.attempts.count("TransactWriteItems") - transactions_before
    print(f"\nflash sale: {UNITS} units in {SHARDS} shards, {SHOPPERS} shoppers, {THREADS} "
          f"threads: {dict(answers)}; {transactions} transactions, "
          f"{service.checkout_retries} internal retries, {elapsed:.1f} s")

    assert answers == {"201": UNITS, "409 out of stock": SHOPPERS - UNITS}
    assert repo.products(["kettle"], consistent=True)["kettle"].stock == 0
    # Each shopper's checkout is one transaction, plus a retry where a shard ran
    # dry while another still held units: no storm.
    assert service.checkout_retries <= SHARDS + UNITS + 3
    assert ("TransactWriteItems", "response-lost") in faults.injected
    assert transactions <= SHOPPERS + service.checkout_retries
    sent.clear()
    stream.drain()  # the buyers' carts are empty now: one write takes them off the count
    assert counter_adds(sent) == [("PRODUCT#kettle", -UNITS)]
    assert repo.popularity.counts()["kettle"] == SHOPPERS - UNITS

    # What a shopper who came too late sees, over HTTP.
    late = next(c for c in cookies if json.loads(request(client, "GET", "/api/cart", c).body)
                ["items"])
    refused = request(client, "POST", "/api/cart/checkout", late)
    assert (refused.status_code, json.loads(refused.body)) == (409, {
        "Code": "OutOfStock",
        "Message": "not enough stock: Gooseneck kettle: sold out (the cart has 1)"})
