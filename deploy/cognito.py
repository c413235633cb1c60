"""The stack's Cognito user pool and app client: pure functions, no IO.

`resources`, `configure_api` and `outputs` are what deploy/template.py's
merge_template adds: the pool, its client, and their ids for the API function.
Both are made from chalicelib/user_pool.py, the definition the local stack
uses too.

IAM: the app calls only Cognito's unauthenticated APIs (SignUp,
ConfirmSignUp, InitiateAuth with USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH)
and reads the pool's public JWKS, so the API's role gets no Cognito action
at all. Sign-in is rate-limited by Cognito's own per-pool quotas and its
lock-out after repeated wrong passwords, and in front of it by the API
stage's throttle (deploy/template.py THROTTLE_*), which caps every route.
"""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.user_pool import APP_CLIENT_SPEC, USER_POOL_SPEC
from deploy.settings import Stage, kept_data_policies

USER_POOL = "UserPool"
USER_POOL_CLIENT = "UserPoolClient"


def _pool(stage: Stage) -> dict[str, Any]:
    properties = copy.deepcopy(USER_POOL_SPEC)
    # CloudFormation spells the API's AccountRecoverySetting and policies alike,
    # but names the pool with UserPoolName.
    properties["UserPoolName"] = stage.stack_name
    properties["DeletionProtection"] = "ACTIVE" if stage.production else "INACTIVE"
    properties["EmailConfiguration"] = email_configuration(stage)
    # Accounts outlive a stack in production, as the table does: every cart and
    # order an account has hangs off its `sub`, which a new pool would not keep.
    # The deploy refuses a change set that would (or may) replace it (cli.py).
    return {
        "Type": "AWS::Cognito::UserPool",
        **kept_data_policies(stage),
        "Properties": properties,
    }


def email_configuration(stage: Stage) -> dict[str, str]:
    """The pool's mail: through the stage's SES identity when it names one.

    Cognito's own sender (COGNITO_DEFAULT) has a small daily quota meant for
    trying things out; past it sign-up answers 503 "mail cannot be sent right
    now". Production names a verified SES identity (docs/OPERATIONS.md).
    """
    if not stage.ses_identity_arn:
        return {"EmailSendingAccount": "COGNITO_DEFAULT"}
    configuration = {"EmailSendingAccount": "DEVELOPER", "SourceArn": stage.ses_identity_arn}
    if stage.mail_from:
        configuration["From"] = stage.mail_from
    return configuration


def _client(stage: Stage) -> dict[str, Any]:
    return {
        "Type": "AWS::Cognito::UserPoolClient",
        "Properties": {
            "UserPoolId": {"Ref": USER_POOL},
            "ClientName": f"{stage.stack_name}-web",
            **copy.deepcopy(APP_CLIENT_SPEC),
        },
    }


def resources(stage: Stage) -> dict[str, Any]:
    return {USER_POOL: _pool(stage), USER_POOL_CLIENT: _client(stage)}


def configure_api(function: dict[str, Any]) -> None:
    """Give the API function (a merge-template resource) the pool and client ids."""
    variables = (function.setdefault("Properties", {}).setdefault("Environment", {})
                 .setdefault("Variables", {}))
    variables["COGNITO_USER_POOL_ID"] = {"Ref": USER_POOL}
    variables["COGNITO_CLIENT_ID"] = {"Ref": USER_POOL_CLIENT}


def outputs() -> dict[str, Any]:
    return {"UserPoolId": {"Value": {"Ref": USER_POOL}},
            "UserPoolClientId": {"Value": {"Ref": USER_POOL_CLIENT}}}
