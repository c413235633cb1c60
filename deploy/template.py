"""The CloudFormation side of the package: pure functions, no IO.

`merge_template` is what `chalice package --merge-template` merges into the
SAM template Chalice writes: the table, the dead-letter queue, log groups,
each function's environment, and the failure handling of every stream
mapping that `@app.on_dynamodb_record` cannot express. `check_template`
verifies the merged result, so a renamed handler fails the build instead
of shipping a mapping without its failure handling.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from chalicelib.table import cloudformation_properties
from deploy.settings import Stage

TABLE = "CartTable"
DEAD_LETTER_QUEUE = "FollowupDeadLetterQueue"
SECRET_PARAMETER = "CookieSecretParameter"
API_HANDLER = "api_handler"
API_LOGICAL_ID = "APIHandler"
REST_API = "RestAPI"

MAX_RETRY_ATTEMPTS = 5
MAX_RECORD_AGE_SECONDS = 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# A public demo shop: cap what a burst of traffic can cost.
THROTTLE_RATE_PER_SECOND = 50
THROTTLE_BURST = 100
# Runtimes AWS accepts for new functions (the build follows the interpreter).
SUPPORTED_RUNTIMES = frozenset({"python3.10", "python3.11", "python3.12", "python3.13"})

MAPPING_FAILURE_HANDLING: dict[str, Any] = {
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
    "MaximumRecordAgeInSeconds": MAX_RECORD_AGE_SECONDS,
    "DestinationConfig": {
        "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "Arn"]}},
    },
}


def logical_id(handler: str) -> str:
    """The resource name Chalice gives a function in its SAM template."""
    if handler == API_HANDLER:
        return API_LOGICAL_ID
    return "".join(part.capitalize() for part in handler.split("_") if part)


def event_id(handler: str) -> str:
    return logical_id(handler) + "DynamodbEventSource"


def _table_resource(stage: Stage) -> dict[str, Any]:
    properties = copy.deepcopy(cloudformation_properties())
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    policy = "Retain" if stage.production else "Delete"
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": policy,
        "UpdateReplacePolicy": policy,
        "Properties": properties,
    }


def _log_group(stage: Stage, handler: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": "/aws/lambda/" + stage.function_name(handler),
            "RetentionInDays": stage.log_retention_days,
        },
    }


def _function(stage: Stage, handler: str, extra_env: dict[str, Any]) -> dict[str, Any]:
    return {
        # The log group exists (with its retention) before anything can log.
        "DependsOn": [logical_id(handler) + "LogGroup"],
        "Properties": {
            "FunctionName": stage.function_name(handler),
            "Environment": {
                "Variables": {
                    "TABLE_NAME": {"Ref": TABLE},
                    "TABLE_STREAM_ARN": {"Fn::GetAtt": [TABLE, "StreamArn"]},
                    **extra_env,
                }
            },
        },
    }


def merge_template(stage: Stage, stream_handlers: Iterable[str]) -> dict[str, Any]:
    """What `chalice package --merge-template` adds to Chalice's SAM template."""
    resources: dict[str, Any] = {
        TABLE: _table_resource(stage),
        DEAD_LETTER_QUEUE: {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True,
            },
        },
        API_LOGICAL_ID: _function(
            stage, API_HANDLER, {"CART_COOKIE_SECRET_PARAM": {"Ref": SECRET_PARAMETER}}
        ),
        API_LOGICAL_ID + "LogGroup": _log_group(stage, API_HANDLER),
        REST_API: {
            "Properties": {
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": THROTTLE_RATE_PER_SECOND,
                        "ThrottlingBurstLimit": THROTTLE_BURST,
                    }
                ]
            }
        },
    }
    for handler in stream_handlers:
        function = _function(stage, handler, {})
        function["Properties"]["Events"] = {
            event_id(handler): {
                "Type": "DynamoDB",
                "Properties": {
                    "Stream": {"Fn::GetAtt": [TABLE, "StreamArn"]},
                    **copy.deepcopy(MAPPING_FAILURE_HANDLING),
                },
            }
        }
        resources[logical_id(handler)] = function
        resources[logical_id(handler) + "LogGroup"] = _log_group(stage, handler)
    return {
        "Parameters": {
            SECRET_PARAMETER: {
                "Type": "String",
                "Default": stage.secret_parameter,
                "AllowedPattern": "^/[A-Za-z0-9_.\\-/]+$",
                "Description": "Name of the SSM SecureString holding the cart-cookie key "
                "(the deploy creates it; its value never enters the template)",
            }
        },
        "Resources": resources,
        "Outputs": {
            "TableName": {"Value": {"Ref": TABLE}},
            "TableStreamArn": {"Value": {"Fn::GetAtt": [TABLE, "StreamArn"]}},
            "DeadLetterQueueUrl": {"Value": {"Ref": DEAD_LETTER_QUEUE}},
            "CookieSecretParameter": {"Value": {"Ref": SECRET_PARAMETER}},
        },
    }


def functions(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            yield name, resource


def stream_events(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(function logical id, event properties) for every DynamoDB stream mapping."""
    for name, resource in functions(template):
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "DynamoDB":
                yield name, event["Properties"]


def with_code(template: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """The template with every function's code taken from s3://bucket/key."""
    result = copy.deepcopy(template)
    for _, resource in functions(result):
        resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return result


def check_template(template: dict[str, Any], stream_handlers: Iterable[str]) -> list[str]:
    """What is wrong with a merged template; empty when it is deployable."""
    problems: list[str] = []
    resources = template.get("Resources", {})
    stream_arn = {"Fn::GetAtt": [TABLE, "StreamArn"]}
    mapped = dict(stream_events(template))
    for handler in stream_handlers:
        name = logical_id(handler)
        if name not in resources:
            problems.append(f"no function {name} for handler {handler}")
        elif name not in mapped:
            problems.append(f"{name} has no DynamoDB stream mapping")
    for name, event in mapped.items():
        if event.get("Stream") != stream_arn:
            problems.append(f"{name}: the mapping does not read the table's stream")
        for key, value in MAPPING_FAILURE_HANDLING.items():
            if event.get(key) != value:
                problems.append(f"{name}: mapping {key} is {event.get(key)!r}")
    for name, resource in functions(template):
        properties = resource["Properties"]
        if properties.get("Runtime") not in SUPPORTED_RUNTIMES:
            problems.append(f"{name}: runtime {properties.get('Runtime')} is not supported")
        variables = properties.get("Environment", {}).get("Variables", {})
        if variables.get("TABLE_STREAM_ARN") != stream_arn:
            problems.append(f"{name}: TABLE_STREAM_ARN is not the table's stream")
        if variables.get("TABLE_NAME") != {"Ref": TABLE}:
            problems.append(f"{name}: TABLE_NAME is not the table")
    return problems
