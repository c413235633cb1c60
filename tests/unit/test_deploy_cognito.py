"""The stack's user pool and app client (deploy/cognito.py), as the merge template has them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from chalicelib import accounts
from deploy import cognito
from deploy import template as tpl
from deploy.settings import CONFIG, DeployError, Stage, load_stage

DEV = Stage("chalice-cart", "dev", production=False)
PROD = Stage("chalice-cart", "prod", production=True)
POLICY = Path(__file__).resolve().parents[2] / ".chalice" / "policy-api.json"


def test_the_pool_signs_in_by_email_with_the_apps_password_policy() -> None:
    pool = tpl.merge_template(DEV, ("process_stream",))["Resources"]["UserPool"]
    properties = pool["Properties"]
    assert pool["Type"] == "AWS::Cognito::UserPool"
    assert properties["UserPoolName"] == "chalice-cart-dev"
    assert properties["UsernameAttributes"] == ["email"]
    assert properties["AutoVerifiedAttributes"] == ["email"]
    policy = properties["Policies"]["PasswordPolicy"]
    assert {k: policy[k] for k in accounts.PASSWORD_POLICY} == accounts.PASSWORD_POLICY


def test_the_client_allows_password_and_refresh_sign_in_and_has_no_secret() -> None:
    client = tpl.merge_template(DEV, ())["Resources"]["UserPoolClient"]
    properties = client["Properties"]
    assert properties["UserPoolId"] == {"Ref": "UserPool"}
    assert properties["GenerateSecret"] is False
    assert sorted(properties["ExplicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"]
    assert properties["PreventUserExistenceErrors"] == "ENABLED"
    assert properties["RefreshTokenValidity"] == accounts.REFRESH_TOKEN_DAYS
    assert properties["TokenValidityUnits"]["RefreshToken"] == "days"


def test_the_api_function_gets_the_pool_and_client_ids() -> None:
    merge = tpl.merge_template(DEV, ())
    variables = merge["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["COGNITO_USER_POOL_ID"] == {"Ref": "UserPool"}
    assert variables["COGNITO_CLIENT_ID"] == {"Ref": "UserPoolClient"}
    assert variables["TABLE_NAME"] == {"Ref": tpl.TABLE}  # what was there stays
    assert merge["Outputs"]["UserPoolId"] == {"Value": {"Ref": "UserPool"}}


def test_production_accounts_outlive_the_stack_and_dev_accounts_do_not() -> None:
    prod = cognito.resources(PROD)["UserPool"]
    dev = cognito.resources(DEV)["UserPool"]
    assert (prod["DeletionPolicy"], prod["UpdateReplacePolicy"],
            prod["Properties"]["DeletionProtection"]) == ("RetainExceptOnCreate", "Retain",
                                                          "ACTIVE")
    assert (dev["DeletionPolicy"], dev["Properties"]["DeletionProtection"]) == (
        "Delete", "INACTIVE")


def test_the_api_needs_no_cognito_permission_at_all() -> None:
    # SignUp, ConfirmSignUp and InitiateAuth are unauthenticated APIs.
    assert "cognito" not in POLICY.read_text()
    actions = {a for s in json.loads(POLICY.read_text())["Statement"] for a in s["Action"]}
    assert not any(action.startswith("cognito-idp:") for action in actions)


def test_a_stage_with_an_ses_identity_sends_the_pools_mail_through_ses() -> None:
    arn = "arn:aws:ses:us-east-1:123456789012:identity/shop.example.com"
    stage = dataclasses.replace(PROD, ses_identity_arn=arn,
                                mail_from="Shop <no-reply@shop.example.com>")
    mail = cognito.resources(stage)["UserPool"]["Properties"]["EmailConfiguration"]
    assert mail == {"EmailSendingAccount": "DEVELOPER", "SourceArn": arn,
                    "From": "Shop <no-reply@shop.example.com>"}
    default = cognito.resources(DEV)["UserPool"]["Properties"]["EmailConfiguration"]
    assert default == {"EmailSendingAccount": "COGNITO_DEFAULT"}


def test_an_email_change_waits_for_the_new_address_to_be_verified() -> None:
    pool = cognito.resources(PROD)["UserPool"]["Properties"]
    assert pool["UserAttributeUpdateSettings"] == {
        "AttributesRequireVerificationBeforeUpdate": ["email"]}
    client = cognito.resources(PROD)["UserPoolClient"]["Properties"]
    assert "email_verified" in client["ReadAttributes"]
    assert "email_verified" not in client["WriteAttributes"]


@pytest.mark.parametrize(("mail", "problem"), [
    ({"ses_identity_arn": "no-reply@shop.example.com"}, "must be an SES identity's ARN"),
    ({"ses_identity_arn": "arn:aws:ses:us-east-1:1:identity/x", "from": "nobody"},
     "must be an e-mail address"),
])
def test_a_malformed_mail_setting_is_refused_before_anything_deploys(
        tmp_path: Path, mail: dict[str, str], problem: str) -> None:
    config = json.loads(CONFIG.read_text())
    config["stages"]["prod"]["cognito_email"] = mail
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(DeployError, match=problem):
        load_stage("prod", path)
    config["stages"]["prod"]["cognito_email"] = {
        "ses_identity_arn": "arn:aws:ses:us-east-1:123456789012:identity/shop.example.com"}
    path.write_text(json.dumps(config))
    assert load_stage("prod", path).ses_identity_arn
