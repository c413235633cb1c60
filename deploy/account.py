"""What the deploy keeps in the account outside the stack.

The code bucket has to exist before the stack that uses it, and
CloudFormation cannot create an SSM SecureString, so both live here. So does
API Gateway's logging role: one setting per account and region, shared by
every API there, which no stack should own or overwrite.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from deploy.settings import DeployError, Stage

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE (then `aws sso login` if it uses SSO), "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
)
NO_REGION = "no AWS region: set AWS_DEFAULT_REGION (or AWS_REGION), or `region` in your profile"
# Inline templates are limited to 51,200 bytes; larger ones go through S3.
MAX_TEMPLATE_BODY = 51_200
# Where AWS's own endpoints live (VPC and FIPS endpoints included).
AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".api.amazonwebservices.com.cn")
# Standard retries; AWS_MAX_ATTEMPTS still applies (default 3).
_CONFIG = Config(retries={"mode": "standard"})


@dataclass
class Account:
    """A checked boto3 session: region, account id and cached clients."""

    session: Any
    region: str
    account_id: str
    # Built on first use; a test may put its own (e.g. a stubbed one) here.
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service, config=_CONFIG)
        return self.clients[service]

    @property
    def stand_in(self) -> str | None:
        """CloudFormation's endpoint when it is not AWS (moto, via AWS_ENDPOINT_URL); else None."""
        url = str(self.client("cloudformation").meta.endpoint_url)
        host = urlsplit(url).hostname or ""
        return None if host.endswith(AWS_DOMAINS) else url


def connect(session: Any | None = None) -> Account:
    """The caller's account from the usual boto3 chain; DeployError when absent."""
    import boto3

    try:
        # boto3 reads AWS_DEFAULT_REGION; other AWS tools read AWS_REGION too.
        session = session or boto3.session.Session(region_name=os.environ.get("AWS_REGION"))
        if not session.region_name:
            raise DeployError(NO_REGION)
        if session.get_credentials() is None:
            raise DeployError(NO_CREDENTIALS)
        identity = session.client("sts", config=_CONFIG).get_caller_identity()
    except ProfileNotFound as exc:
        raise DeployError(f"{exc}: check AWS_PROFILE") from exc
    except NoCredentialsError as exc:
        raise DeployError(NO_CREDENTIALS) from exc
    except NoRegionError as exc:
        raise DeployError(NO_REGION) from exc
    return Account(session, session.region_name, str(identity["Account"]))


# -- API Gateway's logging role (account-wide) --------------------------------

API_LOGS_ROLE = "chalice-cart-apigateway-cloudwatch-logs"
API_LOGS_POLICY_NAME = "push-to-cloudwatch-logs"
# What AWS's AmazonAPIGatewayPushToCloudWatchLogs grants, limited to this account's
# log groups; written out so the role reads the same on AWS and on a stand-in.
API_LOGS_ACTIONS = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:PutLogEvents",
)
_API_GATEWAY_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# A new role takes a few seconds to be usable by another service (IAM is
# eventually consistent); API Gateway refuses it until then.
ROLE_PROPAGATION_ATTEMPTS = 10


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def ensure_api_logging_role(
    account: Account, sleep: Callable[[float], None] = time.sleep
) -> str | None:
    """Give API Gateway a role to write logs with, unless the account has one.

    The ARN set when this deploy set it; None when the account already had one
    (whoever set it keeps it: the stage's access logs use it too).
    """
    apigateway = account.client("apigateway")
    if apigateway.get_account().get("cloudwatchRoleArn"):
        return None
    iam = account.client("iam")
    try:
        arn = str(iam.get_role(RoleName=API_LOGS_ROLE)["Role"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            raise
        arn = str(
            iam.create_role(
                RoleName=API_LOGS_ROLE,
                AssumeRolePolicyDocument=json.dumps(_API_GATEWAY_TRUST),
                Description="API Gateway writes access and execution logs of every API in "
                "this account and region with it (set by chalice-cart's deploy)",
            )["Role"]["Arn"]
        )
    logs = f"arn:{partition(account.region)}:logs:*:{account.account_id}:log-group:*"
    iam.put_role_policy(
        RoleName=API_LOGS_ROLE,
        PolicyName=API_LOGS_POLICY_NAME,
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": list(API_LOGS_ACTIONS), "Resource": logs}
                ],
            }
        ),
    )
    for attempt in range(1, ROLE_PROPAGATION_ATTEMPTS + 1):
        try:
            apigateway.update_account(
                patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
            )
            return arn
        except ClientError as exc:
            # BadRequestException: "The role ARN does not have required permissions..."
            if exc.response.get("Error", {}).get("Code") != "BadRequestException" or (
                attempt == ROLE_PROPAGATION_ATTEMPTS
            ):
                raise
            sleep(min(2.0 * attempt, 10.0))
    return arn  # pragma: no cover (the loop returns or raises)


# -- the cart-cookie signing key -----------------------------------------------


def ensure_cookie_secret(account: Account, stage: Stage) -> bool:
    """Create the stage's random key unless it exists; True when created.

    The value goes straight from here into SSM: never into the template,
    the repo or the function's environment (which holds only its name).
    """
    try:
        account.client("ssm").put_parameter(
            Name=stage.secret_parameter,
            Description=f"{stage.stack_name}: key that signs cart cookies",
            Value=secrets.token_urlsafe(48),
            Type="SecureString",
            Overwrite=False,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ParameterAlreadyExists":
            return False
        raise
    return True


def delete_cookie_secret(account: Account, stage: Stage) -> bool:
    try:
        account.client("ssm").delete_parameter(Name=stage.secret_parameter)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ParameterNotFound":
            return False
        raise
    return True


# -- the code bucket ---------------------------------------------------------------


def bucket_name(account: Account, stage: Stage) -> str:
    return f"{stage.app_name}-artifacts-{account.account_id}-{account.region}"


def _is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound")


def ensure_bucket(account: Account, stage: Stage) -> str:
    """The private code bucket, created on first use; refuses one owned by another account."""
    s3 = account.client("s3")
    name = bucket_name(account, stage)
    try:
        s3.head_bucket(Bucket=name, ExpectedBucketOwner=account.account_id)
        return name
    except ClientError as exc:
        if not _is_missing(exc):
            raise DeployError(
                f"bucket {name} exists but is not this account's ({exc.response['Error']})"
            ) from exc
    kwargs: dict[str, Any] = {"Bucket": name}
    if account.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": account.region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return name


def upload(account: Account, bucket: str, prefix: str, path: Path, suffix: str) -> str:
    """Put `path` under a content-addressed key (same bytes, same key); the key."""
    data = path.read_bytes()
    key = f"{prefix}/{hashlib.sha256(data).hexdigest()}{suffix}"
    account.client("s3").put_object(
        Bucket=bucket, Key=key, Body=data, ExpectedBucketOwner=account.account_id
    )
    return key


def template_url(account: Account, bucket: str, key: str) -> str:
    host = (
        "s3.amazonaws.com"
        if account.region == "us-east-1"
        else (f"s3.{account.region}.amazonaws.com")
    )
    return f"https://{host}/{bucket}/{key}"


def delete_objects(account: Account, bucket: str, prefix: str, keep: Collection[str] = ()) -> int:
    """Delete the stage's uploads except `keep`; how many went."""
    s3 = account.client("s3")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix + "/", ExpectedBucketOwner=account.account_id
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    except ClientError as exc:
        if _is_missing(exc):
            return 0
        raise
    doomed = [k for k in keys if k not in keep]
    for start in range(0, len(doomed), 1000):
        s3.delete_objects(
            Bucket=bucket,
            Delete={
                "Objects": [{"Key": k} for k in doomed[start : start + 1000]],
                "Quiet": True,
            },
        )
    return len(doomed)


def delete_bucket_if_empty(account: Account, bucket: str) -> bool:
    """Remove the code bucket once no stage uses it; True when it went."""
    s3 = account.client("s3")
    try:
        listing = s3.list_objects_v2(
            Bucket=bucket, MaxKeys=1, ExpectedBucketOwner=account.account_id
        )
        if listing.get("KeyCount", 0):
            return False
        s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=account.account_id)
    except ClientError as exc:
        if _is_missing(exc):
            return False
        raise
    return True
