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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from deploy.settings import load_stage
from tests.emulated.conftest import EmulatedStack
from tests.factories import JSON, add_body

API_FUNCTION = load_stage("emulated").function_name("api_handler")


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
    with without_action(emulated_stack, API_FUNCTION, "dynamodb:UpdateItem"):
        denied = shopper.post(f"{url}/api/cart/items", headers=JSON,
                              data=add_body("kettle", 1), timeout=10)
        # A read the role still allows goes through.
        assert shopper.get(f"{url}/api/products", timeout=10).status_code == 200
    assert denied.status_code == 500, denied.text
    assert denied.json() == {"Code": "InternalServerError",
                             "Message": "An internal server error occurred."}
    # Refused to the function's role: its log has the ClientError its UpdateItem raised
    # (the role's policy is the only thing that changed, and the add works again below).
    failures = [line for line in emulated_stack.function_log(API_FUNCTION).splitlines()
                if '"error": "ClientError"' in line]
    assert failures and "update_item" in failures[-1]
    added = shopper.post(f"{url}/api/cart/items", headers=JSON, data=add_body("kettle", 1),
                         timeout=10)
    assert added.status_code == 201, added.text
