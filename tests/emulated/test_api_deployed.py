"""The deployed API's answers through MiniStack's API Gateway: what `chalice local` skips.

Chalice's handler sees API Gateway's event here (requestContext, stage, base
path), and API Gateway answers some requests itself: the stage's gateway
responses must keep those in Chalice's error shape too.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests

from deploy import emulator as gaps
from tests.e2e.test_accounts_live import PASSWORD, new_email
from tests.emulated.conftest import EmulatedStack
from tests.factories import JSON, add_body


def error(response: requests.Response, status: int) -> dict[str, Any]:
    """The body of an error answer: Chalice's shape, {"Code", "Message"}, nothing else."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"Code", "Message"} and body["Message"], body
    return dict(body)


def test_a_keyed_add_sent_twice_lands_once_and_a_reused_key_is_refused(
        emulated_stack: EmulatedStack) -> None:
    shopper, url = requests.Session(), emulated_stack.url
    key = {"Idempotency-Key": f"add-{uuid.uuid4()}"}
    first = shopper.post(f"{url}/api/cart/items", headers={**JSON, **key},
                         data=add_body("kettle", 2), timeout=10)
    again = shopper.post(f"{url}/api/cart/items", headers={**JSON, **key},
                         data=add_body("kettle", 2), timeout=10)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json()
    cart = shopper.get(f"{url}/api/cart", timeout=10).json()
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("kettle", 2)]

    other = shopper.post(f"{url}/api/cart/items", headers={**JSON, **key},
                         data=add_body("filters", 1), timeout=10)
    assert error(other, 422)["Code"] == "UnprocessableEntityError"


def test_bad_input_is_a_4xx_in_chalices_shape_and_changes_nothing(
        emulated_stack: EmulatedStack) -> None:
    shopper, url = requests.Session(), emulated_stack.url
    shopper.post(f"{url}/api/cart/items", headers=JSON, data=add_body("kettle", 1), timeout=10)
    for body, status in ((add_body("kettle", 0), 400), (add_body("no-such-thing", 1), 400),
                         ("{not json", 400), (json.dumps({"productId": "kettle"}), 400),
                         ("x" * 9000, 413)):
        error(shopper.post(f"{url}/api/cart/items", headers=JSON, data=body, timeout=10),
              status)
    error(shopper.put(f"{url}/api/cart/items/kettle", headers=JSON,
                      data=json.dumps({"quantity": 100}), timeout=10), 400)
    error(shopper.post(f"{url}/api/cart/items", headers={"Content-Type": "text/plain"},
                       data=add_body("kettle", 1), timeout=10), 415)
    cart = shopper.get(f"{url}/api/cart", timeout=10).json()
    assert [(i["productId"], i["quantity"]) for i in cart["items"]] == [("kettle", 1)]


def test_unknown_paths_answer_404_a_page_for_people_and_json_for_the_api(
        emulated_stack: EmulatedStack) -> None:
    url = emulated_stack.url
    assert error(requests.get(f"{url}/api/no-such-thing", timeout=10), 404)["Code"] == (
        "NotFoundError")
    assert error(requests.get(f"{url}/api/orders/no-such-order", timeout=10), 404)
    page = requests.get(f"{url}/no-such-page", timeout=10)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
    # A known path, a method it lacks: on REST API Gateway answers itself, in the
    # stage's gateway response (deploy/template.py GATEWAY_RESPONSES); an HTTP API's
    # catch-all brings it to the app (deploy/httpapi.py). The same answer either way.
    assert error(requests.delete(f"{url}/api/products", timeout=10), 404)["Code"] == (
        "NotFoundError")
    # The root's other methods: an HTTP API's `ANY /` route brings them to Chalice,
    # which answers 405 in its error shape. On REST, AWS answers them with the
    # MISSING_AUTHENTICATION_TOKEN gateway response (404 in the error shape).
    root = requests.post(f"{url}/", timeout=10)
    if emulated_stack.api == "http":
        assert error(root, 405)["Code"] == "MethodNotAllowedError"
    else:
        assert root.status_code == 403, gaps.EMULATOR_GAPS["root_method"]


def test_the_pool_refuses_a_wrong_confirmation_code_and_takes_the_mailed_one(
        emulated_stack: EmulatedStack) -> None:
    session, url, email = requests.Session(), emulated_stack.url, new_email()
    signup = session.post(f"{url}/api/account/signup", headers=JSON, timeout=10,
                          json={"email": email, "password": PASSWORD})
    assert signup.status_code == 201, signup.text
    code = emulated_stack.confirmation_code(email)
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    error(session.post(f"{url}/api/account/confirm", headers=JSON, timeout=10,
                       json={"email": email, "code": wrong}), 400)
    assert session.post(f"{url}/api/account/confirm", headers=JSON, timeout=10,
                        json={"email": email, "code": code}).status_code == 204
    signed_in = session.post(f"{url}/api/account/signin", headers=JSON, timeout=10,
                             json={"email": email, "password": PASSWORD})
    assert signed_in.status_code == 200
    # Each cookie its own Set-Cookie line through either front door.
    lines = signed_in.raw.headers.getlist("Set-Cookie")
    assert sorted(line.split("=", 1)[0] for line in lines) == ["refresh", "session"], lines
    assert session.get(f"{url}/api/account", timeout=10).json() == {"email": email}


def test_the_stage_is_served_by_the_front_door_it_asked_for(
        emulated_stack: EmulatedStack) -> None:
    stack = "chalice-cart-emulated"
    http_apis = [a for a in emulated_stack.client("apigatewayv2").get_apis()["Items"]
                 if a["Name"] == stack]
    rest_apis = [a for a in emulated_stack.client("apigateway").get_rest_apis()["items"]
                 if a["name"] == stack]
    if emulated_stack.api == "rest":
        assert (len(rest_apis), http_apis) == (1, [])
        return
    [api] = http_apis
    assert rest_apis == []
    v2 = emulated_stack.client("apigatewayv2")
    [integration] = v2.get_integrations(ApiId=api["ApiId"])["Items"]
    assert integration["PayloadFormatVersion"] == "1.0"
    keys = {r["RouteKey"] for r in v2.get_routes(ApiId=api["ApiId"])["Items"]}
    assert {"GET /api/products", "ANY /{proxy+}", "ANY /"} <= keys
    assert emulated_stack.url.split("/_aws/execute-api/", 1)[1].startswith(api["ApiId"])
