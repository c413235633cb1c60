"""The CloudFormation stack driver against botocore's Stubber: no AWS, no moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from deploy.settings import DeployError
from deploy.stack import CloudFormationStack

STACK = "chalice-cart-dev"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/chalice-cart-dev/1"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(
    n: int, logical: str, status: str, reason: str = "", kind: str = "AWS::Lambda::Function"
) -> dict[str, Any]:
    found = {
        "EventId": f"e{n}",
        "StackId": STACK_ID,
        "StackName": STACK,
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "Timestamp": NOW,
    }
    if reason:
        found["ResourceStatusReason"] = reason
    return found


def stack(status: str) -> dict[str, Any]:
    return {
        "Stacks": [
            {"StackName": STACK, "StackId": STACK_ID, "StackStatus": status, "CreationTime": NOW}
        ]
    }


@pytest.fixture
def cfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def driver(client: Any, lines: list[str]) -> CloudFormationStack:
    return CloudFormationStack(client, STACK, out=lines.append, sleep=lambda _: None)


def change_set(stub: Stubber, changes: list[dict[str, Any]]) -> None:
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stub.add_response("create_change_set", {"Id": "cs-1", "StackId": STACK_ID})
    stub.add_response(
        "describe_change_set",
        {
            "Status": "CREATE_COMPLETE",
            "Changes": [{"Type": "Resource", "ResourceChange": change} for change in changes],
        },
    )


def test_failed_deploy_names_the_first_failing_resource_and_its_reason(
    cfn: tuple[Any, Stubber],
) -> None:
    client, stub = cfn
    change_set(
        stub,
        [
            {
                "Action": "Modify",
                "LogicalResourceId": "CartSummary",
                "ResourceType": "AWS::Lambda::Function",
                "Replacement": "False",
            }
        ],
    )
    stub.add_response("describe_stack_events", {"StackEvents": []})
    stub.add_response("execute_change_set", {})
    stub.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                event(4, STACK, "UPDATE_ROLLBACK_COMPLETE", kind="AWS::CloudFormation::Stack"),
                event(3, "APIHandler", "UPDATE_FAILED", "Resource update cancelled"),
                event(
                    2,
                    "CartSummary",
                    "UPDATE_FAILED",
                    "Cannot access stream: the role cannot perform dynamodb:GetRecords",
                ),
                event(1, "CartSummary", "UPDATE_IN_PROGRESS"),
            ]
        },
    )
    stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"))
    stub.add_response("describe_stack_events", {"StackEvents": []})
    lines: list[str] = []
    with pytest.raises(DeployError) as failure:
        driver(client, lines).deploy({"TemplateBody": "{}"}, {}, {})
    assert str(failure.value) == (
        "deploy failed (UPDATE_ROLLBACK_COMPLETE): CartSummary (AWS::Lambda::Function) "
        "UPDATE_FAILED: Cannot access stream: the role cannot perform dynamodb:GetRecords"
    )
    shown = [line.split()[1] for line in lines if line.startswith("  00:00:00")]
    assert shown == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_FAILED",
        "UPDATE_FAILED",
        "UPDATE_ROLLBACK_COMPLETE",
    ]


def test_change_set_without_changes_is_deleted_and_nothing_runs(cfn: tuple[Any, Stubber]) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stub.add_response("create_change_set", {"Id": "cs-1", "StackId": STACK_ID})
    stub.add_response(
        "describe_change_set",
        {
            "Status": "FAILED",
            "StatusReason": "The submitted information didn't contain changes. Submit "
            "different information to create a change set.",
        },
    )
    stub.add_response("delete_change_set", {}, {"ChangeSetName": "cs-1"})
    lines: list[str] = []
    assert driver(client, lines).deploy({"TemplateBody": "{}"}, {}, {}) is False
    assert lines[-1] == "==> no changes: the stack already matches this build"


def test_change_set_that_would_replace_a_protected_table_is_deleted_not_run(
    cfn: tuple[Any, Stubber],
) -> None:
    client, stub = cfn
    change_set(
        stub,
        [
            {
                "Action": "Modify",
                "LogicalResourceId": "CartTable",
                "ResourceType": "AWS::DynamoDB::Table",
                "Replacement": "True",
            }
        ],
    )
    stub.add_response("delete_change_set", {}, {"ChangeSetName": "cs-1"})
    with pytest.raises(DeployError, match="would replace CartTable and lose its data"):
        driver(client, []).deploy(
            {"TemplateBody": "{}"}, {}, {}, protected=frozenset({"CartTable"})
        )


@pytest.mark.parametrize("replacement", ["True", "Conditional"])
@pytest.mark.parametrize(("resource", "kind"), [("CartTable", "AWS::DynamoDB::Table"),
                                                ("UserPool", "AWS::Cognito::UserPool")])
def test_a_change_that_may_replace_the_table_or_the_user_pool_is_deleted_not_run(
    cfn: tuple[Any, Stubber], resource: str, kind: str, replacement: str,
) -> None:
    # A new pool means new `sub`s: every account's cart and orders orphaned.
    client, stub = cfn
    change_set(stub, [{"Action": "Modify", "LogicalResourceId": resource,
                       "ResourceType": kind, "Replacement": replacement}])
    stub.add_response("delete_change_set", {}, {"ChangeSetName": "cs-1"})
    with pytest.raises(DeployError, match=f"would replace {resource} and lose its data"):
        driver(client, []).deploy({"TemplateBody": "{}"}, {}, {},
                                  protected=frozenset({"CartTable", "UserPool"}))


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"])
def test_stack_left_empty_by_an_unfinished_first_create_is_deleted_before_creating_again(
    cfn: tuple[Any, Stubber], status: str
) -> None:
    """A failed first create, or a first change set never executed (moto would
    otherwise make a second stack of the same name)."""
    client, stub = cfn
    stub.add_response("describe_stacks", stack(status))
    stub.add_response("describe_stack_events", {"StackEvents": []})
    stub.add_response("delete_stack", {}, {"StackName": STACK_ID})
    stub.add_response(
        "describe_stack_events",
        {"StackEvents": [event(1, STACK, "DELETE_COMPLETE", kind="AWS::CloudFormation::Stack")]},
    )
    stub.add_response("describe_stacks", stack("DELETE_COMPLETE"))
    stub.add_response("describe_stack_events", {"StackEvents": []})
    stub.add_response("create_change_set", {"Id": "cs-1", "StackId": STACK_ID})
    stub.add_response(
        "describe_change_set",
        {"Status": "FAILED", "StatusReason": "No updates are to be performed."},
    )
    stub.add_response("delete_change_set", {}, {"ChangeSetName": "cs-1"})
    lines: list[str] = []
    driver(client, lines).deploy({"TemplateBody": "{}"}, {}, {})
    assert "==> creating change set" in lines[-2] and "(CREATE chalice-cart-dev)" in lines[-2]


def test_busy_stack_is_left_alone(cfn: tuple[Any, Stubber]) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"))
    with pytest.raises(DeployError, match="is UPDATE_IN_PROGRESS; wait for it to settle$"):
        driver(client, []).deploy({"TemplateBody": "{}"}, {}, {})


def test_destroying_a_stack_that_is_not_there_says_so(cfn: tuple[Any, Stubber]) -> None:
    client, stub = cfn
    stub.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist"
    )
    assert driver(client, []).destroy() is False


def test_create_change_set_refused_for_no_updates_means_no_changes(
    cfn: tuple[Any, Stubber],
) -> None:
    """moto refuses the call where AWS answers with a FAILED change set."""
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stub.add_client_error("create_change_set", "ValidationError", "No updates are to be performed.")
    lines: list[str] = []
    assert driver(client, lines).deploy({"TemplateBody": "{}"}, {}, {}) is False
    assert lines[-1] == "==> no changes: the stack already matches this build"


def test_create_change_set_refused_for_another_reason_is_an_error(
    cfn: tuple[Any, Stubber],
) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"))
    stub.add_client_error("create_change_set", "ValidationError", "Template format error")
    with pytest.raises(ClientError, match="Template format error"):
        driver(client, []).deploy({"TemplateBody": "{}"}, {}, {})


def test_stack_without_outputs_has_them_worked_out_from_its_resources(
    cfn: tuple[Any, Stubber],
) -> None:
    """moto's change sets create resources but never compute outputs."""
    client, stub = cfn
    described = stack("CREATE_COMPLETE")
    described["Stacks"][0]["Parameters"] = [
        {"ParameterKey": "CookieSecretParameter", "ParameterValue": "/app/dev/key"}
    ]
    stub.add_response("describe_stacks", described)
    template = {
        "Outputs": {
            "TableName": {"Value": {"Ref": "CartTable"}},
            "CookieSecretParameter": {"Value": {"Ref": "CookieSecretParameter"}},
            "EndpointURL": {
                "Value": {
                    "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/"
                }
            },
        }
    }
    stub.add_response("get_template", {"TemplateBody": json.dumps(template)})
    stub.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": logical,
                    "PhysicalResourceId": physical,
                    "ResourceType": kind,
                    "LastUpdatedTimestamp": NOW,
                    "ResourceStatus": "CREATE_COMPLETE",
                }
                for logical, physical, kind in [
                    ("CartTable", "dev-CartTable-1", "AWS::DynamoDB::Table"),
                    ("RestAPI", "abc123", "AWS::ApiGateway::RestApi"),
                ]
            ]
        },
    )
    lines: list[str] = []
    assert driver(client, lines).outputs() == {
        "TableName": "dev-CartTable-1",
        "CookieSecretParameter": "/app/dev/key",
        "EndpointURL": "https://abc123.execute-api.us-east-1.amazonaws.com/api/",
    }
    assert "worked out from its resources" in lines[-1]


def test_stack_being_created_has_no_outputs_yet(cfn: tuple[Any, Stubber]) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"))
    assert driver(client, []).outputs() == {}
