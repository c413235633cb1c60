"""DynamoDB throttling, 5xx and timeouts: 503 with Retry-After, never 500, no partial state.

Faults come in through botocore's event hooks (tests/functional/botocore_faults.py):
`Faults` fails single attempts, so botocore's standard retry mode really runs;
`Exhausted` answers every call as botocore does once its retries are spent.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from chalicelib import runtime
from chalicelib.http_errors import STORE_BUSY_MESSAGE
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import CANCELLED, NOTHING_APPLIED, Exhausted, Faults
from tests.functional.conftest import request

ROOT = Path(__file__).resolve().parents[2]
INJECTED: Counter[str] = Counter()
# The page shows Message as it is: shopper words, no header names.
BUSY = {"Code": "ServiceUnavailable", "Message": STORE_BUSY_MESSAGE}


@pytest.fixture(scope="module", autouse=True)
def count_faults():
    yield
    print(f"\nfaults injected in {__name__}: {sum(INJECTED.values())} {dict(INJECTED)}")


def snapshot(dynamodb):
    items = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def assert_busy(response):
    assert response.status_code == 503, (response.status_code, response.body)
    assert json.loads(response.body) == BUSY
    assert int(response.headers["Retry-After"]) >= 1


def test_boto3_retries_in_standard_mode_within_the_lambda_timeout():
    runtime.reset()
    config = runtime.dynamodb_client().meta.config
    runtime.reset()
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    stages = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]
    lambda_timeout = stages["prod"]["lambda_functions"]["api_handler"]["lambda_timeout"]
    # Standard mode sleeps up to 2 ** (attempt - 1) seconds between attempts.
    backoff = sum(2 ** n for n in range(config.retries["total_max_attempts"] - 1))
    attempts = config.retries["total_max_attempts"]
    worst_call = attempts * (config.connect_timeout + config.read_timeout) + backoff
    assert worst_call < lambda_timeout


# -- every route, every fault, retries spent -------------------------------------------

@pytest.fixture
def shop(client, dynamodb, stream_arn):
    """A cart with two lines and one placed order; its cookie and the order id."""
    cart = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("kettle", 1)))
    order = json.loads(request(client, "POST", "/api/cart/checkout", cart).body)["orderId"]
    request(client, "POST", "/api/cart/items", cart, add_body("espresso-cup", 2))
    request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    return cart, order


KEY = {"Idempotency-Key": "retry-me"}
API = [
    ("GET", "/api/products", None, None),
    ("POST", "/api/cart/items", add_body("kettle", 1), None),
    ("POST", "/api/cart/items", add_body("kettle", 1), KEY),
    ("PUT", "/api/cart/items/kettle", {"quantity": 3}, None),
    ("PUT", "/api/cart/items/kettle", {"quantity": 0}, None),
    ("DELETE", "/api/cart/items/kettle", None, None),
    ("GET", "/api/cart", None, None),
    ("GET", "/api/cart/status", None, None),
    ("POST", "/api/cart/checkout", None, None),
    ("POST", "/api/cart/checkout", None, KEY),
    ("GET", "/api/orders/{order}", None, None),
]
PAGES = ["/", "/cart", "/orders/{order}"]


@pytest.mark.parametrize("kind", Exhausted.KINDS)
def test_every_route_answers_503_when_every_call_fails(client, dynamodb, shop, kind):
    cart, order = shop
    before = snapshot(dynamodb)
    answers = []
    with Exhausted(runtime.dynamodb_client(), kind) as faults:
        for method, path, payload, headers in API:
            response = request(client, method, path.format(order=order), cart, payload, headers)
            answers.append((method, path, response.status_code,
                            response.headers.get("Retry-After"), json.loads(response.body)))
        for path in PAGES:
            response = request(client, "GET", path.format(order=order), cart)
            answers.append(("GET", path, response.status_code, None, None))
    INJECTED.update({f"{kind} (retries spent)": len(faults.injected)})
    assert [a for a in answers[:len(API)] if a[2:] != (503, "1", BUSY)] == []
    assert [a for a in answers[len(API):] if a[2] != 503] == []
    assert snapshot(dynamodb) == before


@pytest.mark.parametrize("method, path, payload, headers, operation", [
    ("POST", "/api/cart/items", add_body("grinder", 1), KEY, "TransactWriteItems"),
    ("POST", "/api/cart/checkout", None, None, "TransactWriteItems"),
    ("POST", "/api/cart/checkout", None, KEY, "TransactWriteItems"),
])
@pytest.mark.parametrize("kind", ["throughput", "read-timeout"])
def test_a_write_failing_after_its_read_leaves_the_table_as_it_was(
        client, dynamodb, shop, method, path, payload, headers, operation, kind):
    cart, _ = shop
    before = snapshot(dynamodb)
    with Exhausted(runtime.dynamodb_client(), kind, (operation,)) as faults:
        assert_busy(request(client, method, path, cart, payload, headers))
    INJECTED.update({f"{kind} (retries spent)": len(faults.injected)})
    assert faults.injected == [operation]
    assert snapshot(dynamodb) == before


def test_a_cold_catalog_read_that_fails_writes_nothing(client, dynamodb, stream_arn):
    before = snapshot(dynamodb)
    with Exhausted(runtime.dynamodb_client(), "server-error", ("Query",)) as faults:
        response = request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    INJECTED.update({"server-error (retries spent)": len(faults.injected)})
    assert_busy(response)
    assert snapshot(dynamodb) == before


def test_a_new_visitors_busy_add_names_its_cart_so_the_keyed_retry_applies_there_once(
        client, dynamodb, stream_arn):
    # Without the cookie a retry would start yet another cart: if the first
    # try landed after all, its key would be remembered in a cart nobody holds.
    with Exhausted(runtime.dynamodb_client(), "read-timeout", ("TransactWriteItems",)):
        response = request(client, "POST", "/api/cart/items", body=add_body("kettle", 2),
                           headers=KEY)
    assert_busy(response)
    cookie = cookie_from(response)
    retry = request(client, "POST", "/api/cart/items", cookie, add_body("kettle", 2), KEY)
    assert retry.status_code == 201
    assert cookie_from(retry).split(".")[0] == cookie.split(".")[0]
    again = request(client, "POST", "/api/cart/items", cookie, add_body("kettle", 2), KEY)
    assert json.loads(again.body) == json.loads(retry.body)
    cart = json.loads(request(client, "GET", "/api/cart", cookie).body)
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("kettle", 2)]


# -- botocore's own retries ----------------------------------------------------------

@pytest.mark.parametrize("kind", NOTHING_APPLIED)
def test_three_failed_attempts_make_a_503_and_change_nothing(client, dynamodb, cart, kind):
    before = snapshot(dynamodb)
    with Faults(runtime.dynamodb_client()) as faults:
        faults.always("TransactWriteItems", kind)
        response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    INJECTED.update({kind: len(faults.injected)})
    assert_busy(response)
    # The add reads its line once (to pick its write), then botocore tries the write 3 times.
    assert faults.attempts == ["GetItem"] + ["TransactWriteItems"] * 3
    assert snapshot(dynamodb) == before


@pytest.mark.parametrize("kind", ["throughput", "server-error", "connect-timeout"])
def test_faults_that_clear_within_the_retries_are_invisible(client, cart, kind):
    with Faults(runtime.dynamodb_client()) as faults:
        faults.fail("TransactWriteItems", kind, times=2)
        response = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 1))
    INJECTED.update({kind: len(faults.injected)})
    assert (response.status_code, json.loads(response.body)["quantity"]) == (201, 2)
    assert faults.attempts == ["GetItem"] + ["TransactWriteItems"] * 3 + ["GetItem"]


@pytest.mark.parametrize("headers", [None, KEY])
def test_a_checkout_cancelled_for_throttling_is_a_503_and_keeps_the_cart(
        client, dynamodb, cart, headers):
    before = snapshot(dynamodb)
    with Faults(runtime.dynamodb_client()) as faults:
        faults.always("TransactWriteItems", CANCELLED)
        response = request(client, "POST", "/api/cart/checkout", cart, headers=headers)
    INJECTED.update({CANCELLED: len(faults.injected)})
    assert_busy(response)
    # A cancelled transaction applied nothing: retried inside the request until
    # its deadline (store/retry.py), then the 503.
    assert len(faults.injected) > 1
    assert set(faults.injected) == {("TransactWriteItems", CANCELLED)}
    assert snapshot(dynamodb) == before


def test_a_keyed_add_cancelled_for_throttling_is_a_503(client, dynamodb, cart):
    before = snapshot(dynamodb)
    with Faults(runtime.dynamodb_client()) as faults:
        faults.always("TransactWriteItems", CANCELLED)
        response = request(client, "POST", "/api/cart/items", cart, add_body(), KEY)
    INJECTED.update({CANCELLED: len(faults.injected)})
    assert_busy(response)
    assert snapshot(dynamodb) == before


# -- stream follow-ups ------------------------------------------------------------------

def test_a_follow_up_that_is_throttled_reports_its_records_and_a_redelivery_is_exact(
        client, cart, stream):
    records = stream.read()
    with Exhausted(runtime.dynamodb_client(), "throughput",
                   ("Query", "TransactWriteItems")) as faults:
        results = stream.deliver(records, ("cart_summary",))
    INJECTED.update({"throughput (retries spent)": len(faults.injected)})
    line_records = {r["dynamodb"]["SequenceNumber"] for r in records
                    if r["dynamodb"]["Keys"]["sk"]["S"].startswith("LINE#")}
    assert {f["itemIdentifier"] for f in results["cart_summary"]["batchItemFailures"]} \
        == line_records
    stream.deliver(records)  # Lambda retries the batch
    stream.drain()
    status = json.loads(request(client, "GET", "/api/cart/status", cart).body)
    assert (status["itemCount"], status["subtotalCents"]) == (3, 8300)
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    assert {p["id"]: p["inCarts"] for p in products if p["inCarts"]} == {
        "espresso-cup": 1, "kettle": 1}
