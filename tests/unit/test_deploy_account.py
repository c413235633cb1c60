"""Which endpoint the deploy talks to (AWS, or a stand-in such as moto), and what the
deploy sets in the account outside the stack."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from deploy.account import API_LOGS_ACTIONS, API_LOGS_ROLE, Account, ensure_api_logging_role


def account() -> Account:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    return Account(session, "eu-west-1", "123456789012")


def test_aws_endpoints_are_not_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)
    assert account().stand_in is None


def test_a_vpc_endpoint_of_aws_is_not_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    vpce = "https://vpce-0abc-xyz.cloudformation.eu-west-1.vpce.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", vpce)
    assert account().stand_in is None


def test_an_endpoint_url_outside_aws_is_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert account().stand_in == "http://127.0.0.1:5000"


def _stubbed(*services: str) -> tuple[Account, dict[str, Stubber]]:
    found = account()
    stubs = {}
    for service in services:
        client = found.session.client(service, region_name="eu-west-1")
        found.clients[service] = client
        stubs[service] = Stubber(client)
    return found, stubs


def test_an_account_that_has_an_api_gateway_logging_role_keeps_it() -> None:
    found, stubs = _stubbed("apigateway", "iam")
    existing = "arn:aws:iam::123456789012:role/someone-elses"
    stubs["apigateway"].add_response("get_account", {"cloudwatchRoleArn": existing})
    with stubs["apigateway"], stubs["iam"]:
        assert ensure_api_logging_role(found, sleep=lambda _: None) is None
        stubs["apigateway"].assert_no_pending_responses()


def test_an_account_without_one_gets_the_role_once_iam_has_propagated_it() -> None:
    found, stubs = _stubbed("apigateway", "iam")
    arn = f"arn:aws:iam::123456789012:role/{API_LOGS_ROLE}"
    apigateway, iam = stubs["apigateway"], stubs["iam"]
    apigateway.add_response("get_account", {})
    iam.add_client_error("get_role", "NoSuchEntity", http_status_code=404)
    role = {
        "Path": "/", "RoleName": API_LOGS_ROLE, "RoleId": "AROAEXAMPLE0123456789",
        "Arn": arn, "CreateDate": "2026-12-01T00:00:00Z",
    }
    iam.add_response("create_role", {"Role": role})
    iam.add_response(
        "put_role_policy",
        {},
        {
            "RoleName": API_LOGS_ROLE,
            "PolicyName": "push-to-cloudwatch-logs",
            "PolicyDocument": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": list(API_LOGS_ACTIONS),
                            "Resource": "arn:aws:logs:*:123456789012:log-group:*",
                        }
                    ],
                }
            ),
        },
    )
    patch = {"patchOperations": [{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]}
    # A brand-new role: API Gateway cannot assume it yet, then it can.
    apigateway.add_client_error(
        "update_account", "BadRequestException", "The role ARN does not have required "
        "permissions set to API Gateway", 400, expected_params=patch,
    )
    apigateway.add_response("update_account", {"cloudwatchRoleArn": arn}, patch)
    waits: list[float] = []
    with apigateway, iam:
        assert ensure_api_logging_role(found, sleep=waits.append) == arn
        apigateway.assert_no_pending_responses()
        iam.assert_no_pending_responses()
    assert waits == [2.0]
