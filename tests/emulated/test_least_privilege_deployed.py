"""Least privilege, executed: the deployed functions call AWS as their execution roles.

The session's MiniStack runs with AUTH=true: every call a function makes is
signed with its role's session and judged by MiniStack's IAM evaluator against
the role's policies (.chalice/policy-*.json as deployed; a transaction item by
item, as AWS does). So every journey in tests/emulated passing means the
policies hold what the code calls; this test shows a missing action fails.
What the evaluator does not see (AWS does) is in docs/OPERATIONS.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from deploy.settings import load_stage
from tests.e2e.helpers import wait_until
from tests.emulated.conftest import EmulatedStack
from tests.factories import JSON, add_body

# One front door is enough: the functions' roles are the same behind either
# (tests/emulated/conftest.py).
ONE_FRONT_DOOR = True

API_FUNCTION = load_stage("emulated").function_name("api_handler")
STREAM_FUNCTION = load_stage("emulated").function_name("process_stream")


@contextmanager
def without_action(stack: EmulatedStack, function: str, action: str) -> Iterator[None]:
    """The function's role with `action` taken out of its inline policy; put back after."""
    iam = stack.client("iam")
    role = stack.client("lambda").get_function_configuration(
        FunctionName=function)["Role"].rsplit("/", 1)[1]
    [name] = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document: Any = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    narrowed = json.loads(json.dumps(document))
    for statement in narrowed["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [
            statement["Action"]]
        statement["Action"] = [a for a in actions if a != action]
    assert narrowed != document, f"{action} is not in {role}'s policy"
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(narrowed))
    try:
        yield
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def test_an_action_missing_from_the_api_role_fails_the_request_that_needs_it(
        emulated_stack: EmulatedStack) -> None:
    shopper, url = requests.Session(), emulated_stack.url
    # A new cart's first add Puts its header and line; an add to the line after it
    # updates the line (an Update action).
    made = shopper.post(f"{url}/api/cart/items", headers=JSON, data=add_body("kettle", 1),
                        timeout=10)
    assert made.status_code == 201, made.text
    with without_action(emulated_stack, API_FUNCTION, "dynamodb:UpdateItem"):
        denied = shopper.post(f"{url}/api/cart/items", headers=JSON,
                              data=add_body("kettle", 1), timeout=10)
        # A read the role still allows goes through (cart-status: one GetItem; the
        # products' counts may take the snapshot's lease, an UpdateItem).
        assert shopper.get(f"{url}/api/cart/status", timeout=10).status_code == 200
    assert denied.status_code == 500, denied.text
    assert denied.json() == {"Code": "InternalServerError",
                             "Message": "An internal server error occurred."}
    # Refused to the function's role: its log has the ClientError its transaction raised
    # (an add's transaction updates the line or the cart's header: UpdateItem is checked
    # per action; the role's policy is the only thing that changed, and the add works
    # again below).
    failures = [line for line in emulated_stack.function_log(API_FUNCTION).splitlines()
                if '"error":"ClientError"' in line]  # the app's compact JSON
    assert failures and "transact_write_items" in failures[-1]
    added = shopper.post(f"{url}/api/cart/items", headers=JSON, data=add_body("kettle", 1),
                         timeout=10)
    assert added.status_code == 201, added.text
    assert added.json()["quantity"] == 2  # the denied add applied nothing


def test_an_action_missing_from_the_stream_role_fails_the_follow_up_and_the_emulator_drops_it(
        emulated_stack: EmulatedStack) -> None:
    """EMULATOR_GAPS["partial_batch"], asserted: a MiniStack that honours the function's
    reported failure (as Lambda does: retry, then the dead-letter queue) fails this."""
    shopper, url = requests.Session(), emulated_stack.url
    sqs = emulated_stack.client("sqs")
    with without_action(emulated_stack, STREAM_FUNCTION, "dynamodb:PutItem"):
        added = shopper.post(f"{url}/api/cart/items", headers=JSON,
                             data=add_body("scale", 1), timeout=10)
        assert added.status_code == 201, added.text
        sequence = wait_until(lambda: [
            line for line in emulated_stack.function_log(STREAM_FUNCTION).splitlines()
            if "stream_record_failed" in line and "AccessDenied" in line], timeout=20)
    assert '"followup": "cart_summary"' in sequence[-1].replace('\\"', '"')
    time.sleep(3)  # Lambda would retry now; MiniStack has moved on
    assert shopper.get(f"{url}/api/cart/status", timeout=10).json()["itemCount"] == 0
    assert sqs.receive_message(QueueUrl=emulated_stack.queue_url,
                               VisibilityTimeout=0).get("Messages", []) == []
    # The cart's next write rebuilds its summary from every line (the lost one included).
    shopper.post(f"{url}/api/cart/items", headers=JSON, data=add_body("tote", 1), timeout=10)
    wait_until(lambda: shopper.get(f"{url}/api/cart/status", timeout=10).json()[
        "itemCount"] == 2, timeout=15)
