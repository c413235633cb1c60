"""Issue 19's attacks over real HTTP: against `make run`, and (imported by
tests/emulated/test_security_deployed.py) against the deployed package on MiniStack.

Kept cheap: a handful of requests per test, one cart or account each.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.e2e.test_accounts_live import PASSWORD, post, signed_up
from tests.factories import JSON, add_body

WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/api/cart/items", {"productId": "grinder", "quantity": 5}),
    ("PUT", "/api/cart/items/kettle", {"quantity": 9}),
    ("DELETE", "/api/cart/items/kettle", None),
    ("POST", "/api/cart/checkout", None),
    ("POST", "/api/account/signout", None),
]


def own_origin(stack: Any) -> str:
    parts = urlsplit(stack.url)
    return f"{parts.scheme}://{parts.netloc}"


def lines(session: requests.Session, stack: Any) -> list[tuple[str, int]]:
    items = session.get(f"{stack.url}/api/cart", timeout=10).json()["items"]
    return sorted((item["productId"], item["quantity"]) for item in items)


def test_writes_from_another_origin_are_403_and_the_shops_own_still_work(
        live_stack: Any) -> None:
    shopper = requests.Session()
    assert shopper.post(f"{live_stack.url}/api/cart/items", headers=JSON, timeout=10,
                        data=add_body("kettle", 2)).status_code == 201
    port = urlsplit(live_stack.url).port or 80
    senders = [{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
               {"Sec-Fetch-Site": "same-site", "Origin": f"http://127.0.0.1:{port + 1}"}]
    for method, path, body in WRITES:
        for sender in senders:
            response = shopper.request(method, f"{live_stack.url}{path}", timeout=10,
                                       headers={**JSON, **sender},
                                       data=json.dumps(body) if body else None)
            assert response.status_code == 403, (method, path, sender, response.text)
            assert response.json()["Code"] == "ForbiddenError"
    assert lines(shopper, live_stack) == [("kettle", 2)]
    # The shop's own page (same origin) and a plain client still write.
    same = {"Origin": own_origin(live_stack), "Sec-Fetch-Site": "same-origin"}
    assert shopper.put(f"{live_stack.url}/api/cart/items/kettle", timeout=10,
                       headers={**JSON, **same}, data=json.dumps({"quantity": 3})
                       ).status_code == 200
    assert lines(shopper, live_stack) == [("kettle", 3)]


def test_head_a_duplicated_key_and_a_unicode_digit_cookie_answer_4xx_or_2xx_never_5xx(
        live_stack: Any) -> None:
    for path in ("/", "/api/cart/status"):
        head = requests.head(f"{live_stack.url}{path}", timeout=10)
        assert head.status_code == 200 and head.content == b"", path
    shopper = requests.Session()
    duplicated = '{"productId": "kettle", "quantity": 1, "quantity": 50}'
    response = shopper.post(f"{live_stack.url}/api/cart/items", headers=JSON, data=duplicated,
                            timeout=10)
    assert response.status_code == 400 and "more than once" in response.json()["Message"]
    odd = {"Cookie": f"cart={'a' * 32}.²." + "A" * 43}
    for path in ("/", "/api/cart"):
        assert requests.get(f"{live_stack.url}{path}", headers=odd, timeout=10
                            ).status_code == 200, path


def test_copies_of_the_cookies_are_refused_after_sign_out(live_stack: Any) -> None:
    browser = requests.Session()
    email = signed_up(requests.Session(), live_stack)
    signed_in = post(browser, live_stack, "/api/account/signin",
                     {"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    copy = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in browser.cookies)}
    assert requests.get(f"{live_stack.url}/api/account", headers=copy, timeout=10
                        ).json() == {"email": email}
    assert post(browser, live_stack, "/api/account/signout").status_code == 204
    after = requests.get(f"{live_stack.url}/api/account", headers=copy, timeout=10)
    assert after.status_code == 401, after.text
