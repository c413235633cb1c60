"""The Cognito user pool and its app client: one definition, like table.py's table.

The local stack (devstack/accounts.py), the tests and the deploy template
(deploy/cognito.py) all make the pool from these, so the password policy the
app checks first (accounts.PASSWORD_POLICY) is the one Cognito enforces.
"""

from __future__ import annotations

from typing import Any

from chalicelib.accounts import PASSWORD_POLICY, REFRESH_TOKEN_DAYS

ID_TOKEN_MINUTES = 60

USER_POOL_SPEC: dict[str, Any] = {
    # The e-mail is the user name; Cognito makes the `sub` the app keys on.
    "UsernameAttributes": ["email"],
    "UsernameConfiguration": {"CaseSensitive": False},
    "AutoVerifiedAttributes": ["email"],
    "Policies": {"PasswordPolicy": {**PASSWORD_POLICY, "TemporaryPasswordValidityDays": 7}},
    "AccountRecoverySetting": {
        "RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}],
    },
    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
    # A new e-mail takes effect only once the code sent to it is entered: until
    # then the verified one stays (and the app shows only a verified e-mail).
    "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": ["email"]},
}

APP_CLIENT_SPEC: dict[str, Any] = {
    "GenerateSecret": False,
    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    # Sign-in answers "wrong e-mail or password" alike for unknown e-mails.
    "PreventUserExistenceErrors": "ENABLED",
    "EnableTokenRevocation": True,
    "IdTokenValidity": ID_TOKEN_MINUTES,
    "AccessTokenValidity": ID_TOKEN_MINUTES,
    "RefreshTokenValidity": REFRESH_TOKEN_DAYS,
    "TokenValidityUnits": {"IdToken": "minutes", "AccessToken": "minutes",
                           "RefreshToken": "days"},
    "ReadAttributes": ["email", "email_verified"],
    "WriteAttributes": ["email"],
}


def ensure_user_pool(client: Any, pool_name: str, client_name: str) -> tuple[str, str, bool]:
    """(pool id, app client id, created?) of the pool named pool_name; made if missing."""
    created = False
    pool_id = next((pool["Id"] for page in client.get_paginator("list_user_pools")
                    .paginate(MaxResults=60) for pool in page["UserPools"]
                    if pool["Name"] == pool_name), None)
    if pool_id is None:
        pool_id = client.create_user_pool(PoolName=pool_name, **USER_POOL_SPEC)["UserPool"]["Id"]
        created = True
    clients = client.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)
    client_id = next((c["ClientId"] for c in clients["UserPoolClients"]
                      if c["ClientName"] == client_name), None)
    if client_id is None:
        client_id = client.create_user_pool_client(
            UserPoolId=pool_id, ClientName=client_name, **APP_CLIENT_SPEC,
        )["UserPoolClient"]["ClientId"]
        created = True
    return str(pool_id), str(client_id), created
