"""Nothing gets in: cookies, other carts' orders, cross-site forms, markup, logs.

The module shares one table; every test makes the carts it needs over HTTP and
checks the victim's cart both before and after.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import pytest

from app import app
from chalicelib import logging_setup, runtime
from chalicelib.domain import CART_TTL_SECONDS, Product
from chalicelib.repository import DynamoCartRepository
from tests.factories import COOKIE_SECRET, TABLE_NAME, add_body, cookie_for, cookie_from
from tests.functional.conftest import request
from tests.log_capture import Collect, app_lines_on_stdout

ITEMS = "/api/cart/items"
EVIL = Product("evil-script", "<script>alert('name')</script>",
               "</p><img src=x onerror=alert(1)>", 700, "kettle.svg", stock=50)


@pytest.fixture(scope="module")
def client(module_shop):
    test_client, dynamodb = module_shop
    DynamoCartRepository(dynamodb, TABLE_NAME).seed_products([EVIL])
    return test_client


@pytest.fixture(scope="module")
def dynamodb(module_shop):
    return module_shop[1]


def body(response: Any) -> Any:
    return json.loads(response.body)


def new_cart(client: Any, *lines: tuple[str, int]) -> str:
    cookie = ""
    for product_id, quantity in lines or (("espresso-cup", 2), ("kettle", 1)):
        response = request(client, "POST", ITEMS, cookie or None, add_body(product_id, quantity))
        assert response.status_code == 201, response.body
        cookie = cookie or cookie_from(response)
    return cookie


def cart_id_of(cookie: str) -> str:
    return cookie.split("=", 1)[1].split(".")[0]


def lines_of(client: Any, cookie: str | None) -> list[tuple[str, int]]:
    items = body(request(client, "GET", "/api/cart", cookie))["items"]
    return [(item["productId"], item["quantity"]) for item in items]


def checkout(client: Any, cookie: str) -> str:
    response = request(client, "POST", "/api/cart/checkout", cookie)
    assert response.status_code == 201, response.body
    return str(body(response)["orderId"])


def table_items(dynamodb: Any) -> list[dict[str, Any]]:
    items = dynamodb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


# -- cart cookies: anything but a valid one is a new, empty cart --------------------

def bad_cookies(victim: str) -> dict[str, str]:
    """Cookies an attacker could send to reach the victim's cart; none may work."""
    cart_id = cart_id_of(victim)
    now = int(time.time())
    value = victim.split("=", 1)[1]
    _, issued, signature = value.split(".")
    other = "f" * 32 if cart_id != "f" * 32 else "e" * 32
    return {
        "bare-id": f"cart={cart_id}",
        "no-signature": f"cart={cart_id}.{now}.",
        "forged-signature": f"cart={cart_id}.{now}.{'A' * 43}",
        "tampered-issued": f"cart={cart_id}.{int(issued) + 1}.{signature}",
        "signature-moved-to-another-id": f"cart={other}.{issued}.{signature}",
        "expired": cookie_for(cart_id, now - CART_TTL_SECONDS - 1),
        "issued-in-the-future": cookie_for(cart_id, now + 86_400),
        "foreign-secret": cookie_for(cart_id, now, secret="someone-elses-secret-0123456789"),
        "uppercase-id": cookie_for(cart_id.upper(), now),
        "extra-part": f"{victim}.x",
        "quoted-garbage": 'cart="\\"; other=1',
        "huge": "cart=" + "9" * 4000,
    }


COOKIE_KINDS = list(bad_cookies("cart=" + "a" * 32 + ".1.sig"))


@pytest.mark.parametrize("kind", COOKIE_KINDS)
def test_a_bad_cookie_reads_as_a_new_empty_cart(client, kind):
    victim = new_cart(client)
    forged = bad_cookies(victim)[kind]
    assert lines_of(client, forged) == []
    status = body(request(client, "GET", "/api/cart/status", forged))
    assert (status["itemCount"], status["subtotalCents"]) == (0, 0)
    assert lines_of(client, victim) == [("espresso-cup", 2), ("kettle", 1)]


@pytest.mark.parametrize("kind", COOKIE_KINDS)
def test_a_write_with_a_bad_cookie_starts_another_cart_and_leaves_the_victim_alone(
        client, kind):
    victim = new_cart(client)
    forged = bad_cookies(victim)[kind]
    response = request(client, "POST", ITEMS, forged, add_body("grinder", 1))
    assert response.status_code == 201
    assert cart_id_of(cookie_from(response)) != cart_id_of(victim)
    assert request(client, "PUT", "/api/cart/items/kettle", forged,
                   {"quantity": 50}).status_code == 404
    assert request(client, "DELETE", "/api/cart/items/kettle", forged).status_code == 204
    assert request(client, "POST", "/api/cart/checkout", forged).status_code == 409
    assert lines_of(client, victim) == [("espresso-cup", 2), ("kettle", 1)]


# -- orders: only the cart that placed one can read it -------------------------------

def test_order_ids_of_other_carts_answer_404(client):
    victim = new_cart(client)
    order_id = checkout(client, victim)
    attacker = new_cart(client, ("tote", 1))
    attacker_order = checkout(client, new_cart(client, ("filters", 1)))
    askers = {"attacker": attacker, "no-cookie": None, **bad_cookies(victim)}
    for name, cookie in askers.items():
        for path in (f"/api/orders/{order_id}", f"/orders/{order_id}"):
            response = request(client, "GET", path, cookie)
            assert response.status_code == 404, (name, path)
            assert order_id not in response.body.decode(), (name, path)
    # Nearby and guessed ids from the victim's own cart are 404 too.
    guesses = [attacker_order, order_id[:-1] + ("0" if order_id[-1] != "0" else "1"),
               "0" * 32, "f" * 32, order_id.upper(), order_id + "0"]
    for guess in guesses:
        assert request(client, "GET", f"/api/orders/{guess}", victim).status_code == 404, guess
    assert request(client, "GET", f"/api/orders/{order_id}", victim).status_code == 200


def test_the_404_for_another_carts_order_says_nothing_about_it(client):
    victim = new_cart(client)
    order_id = checkout(client, victim)
    theirs = request(client, "GET", f"/api/orders/{order_id}", new_cart(client))
    made_up = request(client, "GET", f"/api/orders/{'0' * 32}", new_cart(client))
    assert body(theirs) == body(made_up) == {"Code": "NotFoundError", "Message": "no such order"}


# -- cross-site forms cannot act --------------------------------------------------

def test_every_state_changing_route_accepts_json_only():
    for path, entries in app.routes.items():
        for method, entry in entries.items():
            if method not in ("GET", "HEAD", "OPTIONS"):
                assert entry.content_types == ["application/json"], (method, path)


FORM_TYPES = {
    "application/x-www-form-urlencoded": "productId=kettle&quantity=5",
    "multipart/form-data; boundary=xyz": (
        '--xyz\r\nContent-Disposition: form-data; name="productId"\r\n\r\nkettle\r\n--xyz--'),
    "text/plain": '{"productId": "kettle", "quantity": 5}',
}


@pytest.mark.parametrize("content_type", list(FORM_TYPES))
@pytest.mark.parametrize(("method", "path"), [
    ("POST", ITEMS), ("PUT", "/api/cart/items/kettle"), ("DELETE", "/api/cart/items/kettle"),
    ("POST", "/api/cart/checkout"),
])
def test_a_cross_site_form_gets_415_and_changes_nothing(client, dynamodb, method, path,
                                                        content_type):
    # SameSite=Lax keeps the cookie off a cross-site POST, and the cross-origin
    # guard refuses a foreign Origin (test_attacks.py); without either, a form
    # still cannot send JSON, so it is refused before any view runs.
    victim = new_cart(client)
    before = table_items(dynamodb)
    response = client.http.request(method, path, body=FORM_TYPES[content_type].encode(),
                                   headers={"Content-Type": content_type, "Cookie": victim})
    assert response.status_code == 415
    assert body(response)["Code"] == "UnsupportedMediaType"
    assert "Set-Cookie" not in response.headers
    assert table_items(dynamodb) == before


# -- the cookie's flags ------------------------------------------------------------

def cookie_flags(response: Any) -> list[str]:
    return [part.strip() for part in response.headers["Set-Cookie"].split(";")][1:]


@pytest.mark.parametrize(("proto", "secure"), [(None, False), ("http", False), ("https", True)])
def test_the_cart_cookie_is_httponly_lax_and_secure_over_https(client, proto, secure):
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    added = request(client, "POST", ITEMS, body=add_body("kettle", 1), headers=headers)
    cookie = cookie_from(added)
    changed = request(client, "PUT", "/api/cart/items/kettle", cookie, {"quantity": 2},
                      headers=headers)
    removed = request(client, "PUT", "/api/cart/items/kettle", cookie, {"quantity": 0},
                      headers=headers)
    for response in (added, changed, removed):
        flags = cookie_flags(response)
        assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Path=/" in flags
        assert ("Secure" in flags) is secure
        assert f"Max-Age={CART_TTL_SECONDS}" in flags


# -- HTML: security headers everywhere, data escaped ---------------------------------

def assert_security_headers(response: Any) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp or "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


def test_every_html_response_carries_csp_nosniff_and_a_referrer_policy(client):
    cookie = new_cart(client)
    order_id = checkout(client, cookie)
    pages = [("/", cookie, 200), ("/", None, 200), ("/cart", cookie, 200), ("/cart", None, 200),
             (f"/orders/{order_id}", cookie, 200), (f"/orders/{order_id}", None, 404),
             ("/orders/not-an-order", cookie, 404)]
    for path, who, status in pages:
        response = request(client, "GET", path, who)
        assert response.status_code == status, path
        assert response.headers["Content-Type"].startswith("text/html"), path
        assert_security_headers(response)


def test_markup_in_rendered_data_comes_out_escaped(client):
    cookie = new_cart(client, (EVIL.id, 1))
    pages = [request(client, "GET", "/", cookie), request(client, "GET", "/cart", cookie)]
    order_id = checkout(client, cookie)
    pages.append(request(client, "GET", f"/orders/{order_id}", cookie))
    for page in pages:
        assert page.status_code == 200
        html = page.body.decode()
        assert "<script>alert(" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html


def test_markup_in_the_url_is_not_reflected_raw(client):
    response = request(client, "GET", "/orders/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert response.status_code == 404
    assert "<script>alert(1)" not in response.body.decode()


# -- logs: structured, with a request id, and nothing private -----------------------

@pytest.fixture
def log_lines():
    collect = Collect()
    loggers = [logging.getLogger(logging_setup.ACCESS_LOGGER), app.log]
    for logger in loggers:
        logger.addHandler(collect)
    yield collect.lines
    for logger in loggers:
        logger.removeHandler(collect)


def test_each_request_logs_one_json_line_with_its_request_id(client, log_lines):
    cookie = new_cart(client)
    log_lines.clear()
    responses = [request(client, "GET", "/api/cart", cookie),
                 request(client, "PUT", "/api/cart/items/kettle", cookie, {"quantity": 4}),
                 request(client, "GET", "/api/orders/" + "0" * 32, cookie)]
    entries = [json.loads(line) for line in log_lines]
    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("GET", "/api/cart", 200), ("PUT", "/api/cart/items/{product_id}", 200),
        ("GET", "/api/orders/{order_id}", 404)]
    ids = [e["requestId"] for e in entries]
    assert ids == [r.headers["X-Request-Id"] for r in responses]
    assert len(set(ids)) == 3 and all(ids)
    assert all(isinstance(e["durationMs"], int | float) and e["durationMs"] >= 0
               for e in entries)
    lambda_ids = [e["lambdaRequestId"] for e in entries]
    assert len(set(lambda_ids)) == 3 and all(lambda_ids)
    assert not [e for e in entries if "coldStart" in e]  # warm: new_cart came first
    # The 404's line names its error; the others have none.
    assert [e.get("errorCode") for e in entries] == [None, None, "NotFoundError"]


def test_logs_never_hold_cookies_secrets_or_bodies(client, log_lines):
    cookie = new_cart(client)
    log_lines.clear()
    marker = "private-marker-7f3a"
    request(client, "POST", ITEMS, cookie, add_body("kettle", 1, note=marker))
    request(client, "POST", ITEMS, cookie, "{" + marker)
    request(client, "POST", ITEMS, cookie, add_body("kettle", 1, pad="x" * 9000))
    request(client, "GET", f"/api/cart?{marker}=1", cookie,
            headers={"Authorization": marker, "X-Forwarded-For": marker})
    text = "\n".join(log_lines)
    assert len(log_lines) == 4
    for private in (marker, cookie.split("=", 1)[1], cart_id_of(cookie), COOKIE_SECRET,
                    "Cookie", "productId"):
        assert private not in text, private


def test_metric_lines_never_hold_cookies_or_bodies(client, log_lines, monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    runtime.reset()
    marker = "private-marker-7f3a"
    with app_lines_on_stdout(app.log):  # the access lines carry the metrics
        cookie = cookie_from(request(client, "POST", ITEMS, body=add_body("kettle", 1)))
        request(client, "POST", ITEMS, cookie, add_body("kettle", 1, note=marker))
        request(client, "PUT", "/api/cart/items/kettle", cookie, {"quantity": 2},
                headers={"Authorization": marker})
        printed = capsys.readouterr().out
    emf = [line for line in printed.splitlines() if '"_aws"' in line]
    assert len(emf) == 2  # the add with a stray field was refused
    for private in (marker, cookie.split("=", 1)[1], cart_id_of(cookie), COOKIE_SECRET,
                    "kettle", "productId"):
        assert private not in printed, private


def test_an_error_log_line_has_the_type_and_frames_but_not_the_message():
    record = logging.LogRecord("chalice-cart", logging.ERROR, __file__, 1,
                               "Caught exception for path %s", ("/api/cart",), None)
    private = "the body was {private-marker-7f3a}"
    try:
        raise ValueError(private)
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = json.loads(logging_setup.JsonFormatter().format(record))
    assert entry["level"] == "ERROR" and entry["message"] == "Caught exception for path /api/cart"
    assert entry["error"] == "ValueError"
    assert "test_security.py" in entry["traceback"]
    assert "private-marker" not in json.dumps(entry)
