"""The CloudFormation side of the package: pure functions, no IO.

`merge_template` is what `chalice package --merge-template` merges into the
SAM template Chalice writes: the table, the dead-letter queue, log groups,
each function's environment, the API's throttling and the error responses
API Gateway makes itself (in Chalice's error shape), and the failure handling
of every stream mapping that `@app.on_dynamodb_record` cannot express.
`check_template` verifies the merged result, so a renamed handler fails the
build instead of shipping a mapping without its failure handling.

`expand` runs the AWS::Serverless transform here, with AWS's own translator,
so what CloudFormation receives is plain CloudFormation: the template the
tests lint and assert on is the one deployed, and a stand-in account such as
moto (which has no SAM transform) can run it. `explicit_routes` is for such a
stand-in only.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from chalicelib import followups
from chalicelib.table import cloudformation_properties
from deploy import cognito
from deploy import operations as ops
from deploy.runtimes import runtime_problem
from deploy.settings import DEFAULT_SYSTEM_LOG_LEVEL, Stage, kept_data_policies

TABLE = "CartTable"
DEAD_LETTER_QUEUE = "FollowupDeadLetterQueue"
SECRET_PARAMETER = "CookieSecretParameter"  # nosec B105: the parameter's logical id
API_HANDLER = "api_handler"
API_LOGICAL_ID = "APIHandler"
REST_API = "RestAPI"

MAX_RETRY_ATTEMPTS = 5
MAX_RECORD_AGE_SECONDS = 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# Lambda's price per GB-second is ~20% lower on Graviton; the package carries
# only pure-Python and aarch64 wheels (deploy.build.check_zip).
ARCHITECTURE = "arm64"
# How many batches of one shard run at once: the follow-ups' own choice.
PARALLELIZATION_FACTOR: int = followups.PARALLELIZATION_FACTOR
# API Gateway answers some requests itself (no such route: 403, throttled: 429,
# integration failure: 5xx) in its own {"message": ...} shape. These put them in
# Chalice's error shape; the status code stays API Gateway's. messageString is
# already a quoted JSON string; responseType (e.g. THROTTLED) is a bare word.
ERROR_TEMPLATE = '{"Code":"$context.error.responseType","Message":$context.error.messageString}'
THROTTLED_RETRY_AFTER_SECONDS = 1
NOT_FOUND_TEMPLATE = (
    '{"Code":"NotFoundError","Message":"no route for $context.httpMethod at this path"}')
GATEWAY_RESPONSES: dict[str, Any] = {
    "DEFAULT_4XX": {"ResponseTemplates": {"application/json": ERROR_TEMPLATE}},
    "DEFAULT_5XX": {"ResponseTemplates": {"application/json": ERROR_TEMPLATE}},
    "THROTTLED": {
        "ResponseTemplates": {"application/json": ERROR_TEMPLATE},
        # A header value in a gateway response is a quoted static value.
        "ResponseParameters": {"Headers": {"Retry-After": f"'{THROTTLED_RETRY_AFTER_SECONDS}'"}},
    },
    # Unknown paths reach the app's greedy /{proxy+} route (app.py answers 404,
    # a page or JSON by path: a gateway response template is plain substitution,
    # no VTL, so it cannot choose by path). What is left here is a known path
    # with a method it lacks (chalice local: 405): not found, in the error shape.
    "MISSING_AUTHENTICATION_TOKEN": {
        "StatusCode": "404",
        "ResponseTemplates": {"application/json": NOT_FOUND_TEMPLATE},
    },
}
MAPPING_FAILURE_HANDLING: dict[str, Any] = {
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "BisectBatchOnFunctionError": True,
    "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
    "MaximumRecordAgeInSeconds": MAX_RECORD_AGE_SECONDS,
    "DestinationConfig": {
        "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": [DEAD_LETTER_QUEUE, "Arn"]}},
    },
}


# Lambda's advanced logging controls. JSON, so Lambda filters by level; the app's own
# lines (chalicelib/logging_setup.py, the EMF lines of chalicelib/metrics.py) go to stdout
# as JSON objects and reach CloudWatch as written: the runtime's JSON formatter sits on
# the root logger only, which none of them propagate to. Lambda reads a stdout line with
# no "level" (an EMF line) as INFO, so ApplicationLogLevel above INFO would drop the
# metrics; SystemLogLevel is the stage's (settings.SYSTEM_LOG_LEVELS).
LOG_FORMAT = "JSON"
APPLICATION_LOG_LEVEL = "INFO"
APPLICATION_LOG_LEVELS_KEEPING_EMF = ("TRACE", "DEBUG", "INFO")


def logging_config(stage: Stage) -> dict[str, str]:
    """A function's LoggingConfig: JSON, the app's INFO lines, Lambda's own at the stage's."""
    return {
        "LogFormat": LOG_FORMAT,
        "ApplicationLogLevel": APPLICATION_LOG_LEVEL,
        "SystemLogLevel": stage.system_log_level,
    }


# checkov's findings this stack accepts, each with its reason (docs/OPERATIONS.md).
NO_VPC = ("CKV_AWS_117", "Reaches only DynamoDB, SQS, SSM and CloudWatch over their public "
          "endpoints: a VPC would add NAT or endpoint cost to a reference stack")
FUNCTION_SKIPS = (
    NO_VPC,
    ("CKV_AWS_173", "Environment holds names and ARNs only; the cookie key is a SecureString "
     "read at run time, so a customer-managed KMS key would protect nothing secret"),
    ("CKV_AWS_116", "Never invoked asynchronously (API Gateway and a stream mapping); the "
     "stream mapping's on-failure destination is the dead-letter queue"),
)
# API Gateway methods as a stand-in gets them (explicit_routes): on AWS they sit in
# the RestApi's OpenAPI Body, where checkov does not look, and are just as open.
PUBLIC_API = (
    "CKV_AWS_59",
    "A public shop: browsing, the cart and sign-in are for anonymous visitors, so no "
    "method can require an API Gateway authorizer; the app authenticates what needs it "
    "(HMAC-signed cart cookie, Cognito ID token verified on every request, cross-origin "
    "writes refused) and the stage throttle caps every route",
)
NO_RESERVED_CONCURRENCY = (
    "CKV_AWS_115",
    "This stage reserves no concurrency (a new account's quota can be as low as 10); set "
    "reserved_concurrency in .chalice/config.json",
)


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
    return {
        "Type": "AWS::DynamoDB::Table",
        "Metadata": ops.checkov_skip(
            ("CKV_AWS_119", "Encrypted at rest with the AWS-owned key; a customer-managed KMS "
             "key is out of scope for a reference stack"),
        ),
        **kept_data_policies(stage),
        "Properties": properties,
    }


def _log_group(stage: Stage, handler: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Metadata": ops.checkov_skip(ops.NO_CMK_LOGS),
        "Properties": {
            "LogGroupName": "/aws/lambda/" + stage.function_name(handler),
            "RetentionInDays": stage.log_retention_days,
        },
    }


def filter_criteria() -> dict[str, Any]:
    """The mapping's event filters: only records some follow-up acts on invoke it."""
    return {
        "Filters": [
            {"Pattern": json.dumps(pattern, separators=(",", ":"), sort_keys=True)}
            for pattern in followups.STREAM_FILTER_PATTERNS
        ]
    }


def mapping_properties() -> dict[str, Any]:
    """Everything a stream mapping carries besides its stream."""
    return {
        **copy.deepcopy(MAPPING_FAILURE_HANDLING),
        "FilterCriteria": filter_criteria(),
        "ParallelizationFactor": PARALLELIZATION_FACTOR,
    }


def metrics_environment(stage: Stage) -> dict[str, str]:
    """Powertools reads these: the business metrics' namespace and `service` dimension."""
    return {
        "POWERTOOLS_METRICS_NAMESPACE": ops.METRICS_NAMESPACE,
        "POWERTOOLS_SERVICE_NAME": stage.service_name,
    }


def _function(stage: Stage, handler: str, extra_env: dict[str, Any]) -> dict[str, Any]:
    skips: tuple[tuple[str, str], ...] = FUNCTION_SKIPS
    if handler not in stage.reserved_concurrency:
        skips = (*skips, NO_RESERVED_CONCURRENCY)
    return {
        # The log group exists (with its retention) before anything can log.
        "DependsOn": [logical_id(handler) + "LogGroup"],
        "Metadata": ops.checkov_skip(*skips),
        "Properties": {
            "FunctionName": stage.function_name(handler),
            "LoggingConfig": logging_config(stage),
            "Environment": {
                "Variables": {
                    "TABLE_NAME": {"Ref": TABLE},
                    "TABLE_STREAM_ARN": {"Fn::GetAtt": [TABLE, "StreamArn"]},
                    **metrics_environment(stage),
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
            "Metadata": ops.checkov_skip(
                ("CKV_AWS_27", "Encrypted with SQS-managed keys (SqsManagedSseEnabled); "
                 "checkov counts only KMS keys"),
            ),
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
            # For the stage SAM makes (`expand` hands them on).
            "Metadata": ops.checkov_skip(
                ("CKV_AWS_120", "No caching: every answer depends on the shopper's cart "
                 "cookie, and a cache would serve one cart to another"),
            ),
            "Properties": {
                # Chalice leaves the name to the OpenAPI title; moto's CloudFormation
                # needs one (see explicit_routes), and it tells stages apart in the console.
                "Name": stage.stack_name,
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": stage.api_rate_limit,
                        "ThrottlingBurstLimit": stage.api_burst_limit,
                    }
                ],
                "TracingEnabled": stage.tracing,
                "AccessLogSetting": ops.access_log_setting(),
                # SAM writes these into the OpenAPI Body (x-amazon-apigateway-gateway-
                # responses), not as AWS::ApiGateway::GatewayResponse resources: a
                # Body update overwrites the whole API and drops such resources, and
                # SAM's deployment id follows the Body, so a change here redeploys.
                "GatewayResponses": copy.deepcopy(GATEWAY_RESPONSES),
            }
        },
    }
    handlers = tuple(stream_handlers)
    for handler in handlers:
        function = _function(stage, handler, {})
        function["Properties"]["Events"] = {
            event_id(handler): {
                "Type": "DynamoDB",
                "Properties": {
                    "Stream": {"Fn::GetAtt": [TABLE, "StreamArn"]},
                    **mapping_properties(),
                },
            }
        }
        resources[logical_id(handler)] = function
        resources[logical_id(handler) + "LogGroup"] = _log_group(stage, handler)
    functions = {h: logical_id(h) for h in (API_HANDLER, *handlers)}
    streams = [logical_id(h) for h in handlers]
    resources.update(ops.access_logs(stage))
    resources.update(ops.topic(stage))
    resources.update(ops.alarms(stage, functions, streams, TABLE, DEAD_LETTER_QUEUE))
    resources.update(ops.dashboard(stage, functions, streams, TABLE, DEAD_LETTER_QUEUE))
    resources.update(cognito.resources(stage))
    cognito.configure_api(resources[API_LOGICAL_ID])
    return {
        "Conditions": ops.conditions(),
        "Parameters": {
            **ops.parameters(),
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
            **ops.outputs(),
            **cognito.outputs(),
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


def check_template(
    template: dict[str, Any],
    stream_handlers: Iterable[str],
    today: date | None = None,
    tracing: bool = True,
    architecture: str = ARCHITECTURE,
    system_log_level: str = DEFAULT_SYSTEM_LOG_LEVEL,
) -> list[str]:
    """What is wrong with a merged template; empty when it is deployable on `today`."""
    today = today or date.today()
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
        for key, value in mapping_properties().items():
            if event.get(key) != value:
                problems.append(f"{name}: mapping {key} is {event.get(key)!r}")
    for name, resource in functions(template):
        properties = resource["Properties"]
        runtime = runtime_problem(properties.get("Runtime"), today)
        if runtime:
            problems.append(f"{name}: {runtime}")
        if properties.get("Architectures") != [architecture]:
            problems.append(
                f"{name}: architectures {properties.get('Architectures')} are not "
                f"[{architecture!r}] (.chalice/config.json lambda_architecture)"
            )
        wanted = "Active" if tracing else "PassThrough"
        if properties.get("Tracing") != wanted:
            problems.append(f"{name}: tracing is {properties.get('Tracing')}, not {wanted}")
        problems += _logging_problems(name, properties.get("LoggingConfig"), system_log_level)
        variables = properties.get("Environment", {}).get("Variables", {})
        if variables.get("TABLE_STREAM_ARN") != stream_arn:
            problems.append(f"{name}: TABLE_STREAM_ARN is not the table's stream")
        if variables.get("TABLE_NAME") != {"Ref": TABLE}:
            problems.append(f"{name}: TABLE_NAME is not the table")
    return problems


def _logging_problems(name: str, config: Any, system_log_level: str) -> list[str]:
    if not isinstance(config, dict) or config.get("LogFormat") != LOG_FORMAT:
        return [f"{name}: LoggingConfig is {config!r}, not LogFormat {LOG_FORMAT} (without it "
                "Lambda writes START/END/REPORT lines for every invocation)"]
    problems = []
    if config.get("ApplicationLogLevel") not in APPLICATION_LOG_LEVELS_KEEPING_EMF:
        problems.append(f"{name}: ApplicationLogLevel {config.get('ApplicationLogLevel')} drops "
                        "the EMF metric lines (Lambda reads them as INFO)")
    if config.get("SystemLogLevel") != system_log_level:
        problems.append(f"{name}: SystemLogLevel is {config.get('SystemLogLevel')}, not "
                        f"{system_log_level} (.chalice/config.json system_log_level)")
    return problems


# -- the AWS::Serverless transform, run here ----------------------------------------


def _no_managed_policies() -> dict[str, str]:
    """Every role is written out in full: no managed policy name to look up."""
    return {}


def expand(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """The template as the AWS::Serverless transform hands it to CloudFormation."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    session = boto3.session.Session(region_name=region)
    translator = Translator(None, Parser(), boto_session=session)
    expanded: dict[str, Any] = translator.translate(
        copy.deepcopy(template),
        parameter_values=dict(parameters),
        get_managed_policy_map=_no_managed_policies,
    )
    # SAM hands a Serverless::Api's Metadata to the RestApi, not to its stage.
    resources = expanded["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::ApiGateway::Stage":
            api = resources.get(resource["Properties"]["RestApiId"].get("Ref", ""), {})
            if "Metadata" in api:
                resource["Metadata"] = copy.deepcopy(api["Metadata"])
    return expanded


def protected_resources(stage: Stage) -> frozenset[str]:
    """What the deploy must never replace: carts and orders, and the accounts (their
    `sub`s) they hang off. Dev stages may lose both."""
    return frozenset({TABLE, cognito.USER_POOL}) if stage.production else frozenset()


def for_cloudformation(template: dict[str, Any], parameters: dict[str, str], region: str,
                       stand_in: bool) -> dict[str, Any]:
    """Exactly what CloudFormation receives: what the deploy sends, what checkov reads."""
    expanded = expand(template, parameters, region)
    return explicit_routes(expanded) if stand_in else expanded


def sam_translator_version() -> str:
    from samtranslator import __version__

    return str(__version__)


# -- for a stand-in account (moto) only ----------------------------------------------

OPENAPI_METHODS = {
    "get": "GET",
    "put": "PUT",
    "post": "POST",
    "delete": "DELETE",
    "options": "OPTIONS",
    "head": "HEAD",
    "patch": "PATCH",
    "x-amazon-apigateway-any-method": "ANY",
}


def _name(path: str) -> str:
    return "".join(c for c in path.title() if c.isalnum()) or "Root"


def _unique(name: str, added: dict[str, Any], template: dict[str, Any]) -> str:
    """`name`, or `name` with a number when two paths spell the same (/a-b, /ab)."""
    candidate, n = name, 1
    while candidate in added or candidate in template["Resources"]:
        n += 1
        candidate = f"{name}{n}"
    return candidate


def explicit_routes(template: dict[str, Any]) -> dict[str, Any]:
    """The expanded template with the API's routes as Resource and Method resources.

    moto's CloudFormation ignores a RestApi `Body` (the OpenAPI document) and then
    refuses a Deployment of an API without methods. The same routes, methods and
    Lambda integrations as explicit resources let it build the API and deploy it.
    AWS does not need this: it gets the template as `expand` makes it.
    """
    result = copy.deepcopy(template)
    properties = result["Resources"][REST_API]["Properties"]
    body = properties.pop("Body")
    if body.get("x-amazon-apigateway-binary-media-types"):
        properties["BinaryMediaTypes"] = body["x-amazon-apigateway-binary-media-types"]
    api = {"Ref": REST_API}
    paths: dict[str, Any] = {"": {"Fn::GetAtt": [REST_API, "RootResourceId"]}}
    added: dict[str, Any] = {}
    methods: list[str] = []
    for path, operations in body["paths"].items():
        prefix = ""
        for part in (p for p in path.split("/") if p):
            parent, prefix = paths[prefix], f"{prefix}/{part}"
            if prefix not in paths:
                name = _unique(f"{REST_API}Resource{_name(prefix)}", added, result)
                added[name] = {
                    "Type": "AWS::ApiGateway::Resource",
                    "Properties": {"RestApiId": api, "ParentId": parent, "PathPart": part},
                }
                paths[prefix] = {"Ref": name}
        for verb, operation in operations.items():
            if verb not in OPENAPI_METHODS:
                continue
            integration = operation["x-amazon-apigateway-integration"]
            name = _unique(f"{REST_API}Method{_name(path)}{OPENAPI_METHODS[verb]}", added, result)
            added[name] = {
                "Type": "AWS::ApiGateway::Method",
                "Metadata": ops.checkov_skip(PUBLIC_API),
                "Properties": {
                    "RestApiId": api,
                    "ResourceId": paths[prefix],
                    "HttpMethod": OPENAPI_METHODS[verb],
                    "AuthorizationType": "NONE",
                    "Integration": {
                        "Type": integration["type"].upper(),
                        "IntegrationHttpMethod": integration["httpMethod"],
                        "Uri": integration["uri"],
                    },
                },
            }
            methods.append(name)
    # moto creates a change set's resources in template order, DependsOn aside:
    # the methods go before the deployment that needs them.
    resources: dict[str, Any] = {}
    for name, resource in result["Resources"].items():
        if resource["Type"] == "AWS::ApiGateway::Deployment":
            resource["DependsOn"] = sorted(methods)
            resources.update(added)
            added = {}
        resources[name] = resource
    resources.update(added)
    result["Resources"] = resources
    return result


def resolve_outputs(outputs: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The outputs that are a `Ref` or an `Fn::Sub` of `values` (physical ids,
    parameters, pseudo parameters); the others (`Fn::GetAtt`) are left out."""
    resolved: dict[str, str] = {}
    for key, output in outputs.items():
        value = output.get("Value")
        if isinstance(value, dict) and value.get("Ref") in values:
            resolved[key] = values[value["Ref"]]
        elif isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
            names = re.findall(r"\$\{([^}]+)\}", value["Fn::Sub"])
            if all(name in values for name in names):
                resolved[key] = re.sub(r"\$\{([^}]+)\}", lambda m: values[m[1]], value["Fn::Sub"])
    return resolved
