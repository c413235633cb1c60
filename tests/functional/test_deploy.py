"""The deploy, verified offline: the real package and template, cfn-lint, IAM, moto.

The package and both stages' templates are built once for this module, and
the SAM transform is expanded with the deploy's own `deploy.template.expand`:
the template these tests lint and assert on is the one CloudFormation gets.

`python -m deploy` then runs end to end against a moto server standing in for
an account: deploy, deploy again, deploy new code, destroy. The tests assert
what the stand-in holds after each step through its own APIs. What moto does
not emulate is named in MOTO_GAPS and asserted as such, so a moto upgrade
that closes a gap shows up here. Stack events and a failed deploy's reason,
which moto never reports, run against a Stubber-driven CloudFormation.
"""

from __future__ import annotations

import ast
import base64
import copy
import dataclasses
import hashlib
import json
import re
import socket
import subprocess  # nosec B404
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber
from moto.server import ThreadedMotoServer

from chalicelib import followups, runtime, table
from deploy import account as acct
from deploy import cli
from deploy import template as tpl
from deploy.build import (
    EXCLUDED_PACKAGES,
    MAX_ZIP_BYTES,
    Build,
    asset_files,
    build,
    checkov,
    foreign_binaries,
)
from deploy.runtimes import runtime_problem
from deploy.settings import ROOT, Stage, load_stage
from tests.factories import FULL_SEED as SEED  # a deploy seeds the whole file
from tests.factories import add_body, cookie_from
from tests.functional.conftest import Stream, request

# moto warns for each AWS::Serverless::* resource it skips: expected here.
# (No "::" in the filter: pytest would read it as a field separator.)
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS")

REGION = "us-east-1"
ACCOUNT = "123456789012"
CODE_BUCKET = "chalice-cart-artifacts-123456789012-us-east-1"
FOLLOWUPS = {"ProcessStream"}
# What each function's code calls, as IAM actions (repository.py, followups.py).
EXPECTED_TABLE_ACTIONS = {
    "APIHandler": {"GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem",
                   "BatchGetItem", "BatchWriteItem"},  # order history (store/history.py)
    # the summary and lines read, its put (a transaction when the cart's holdings
    # change, with the counters' updates), and old holder marks deleted (migration)
    "ProcessStream": {"GetItem", "Query", "UpdateItem", "PutItem", "DeleteItem"},
}
STREAM_ACTIONS = {"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"}
XRAY_ACTIONS = {"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
TRANSACT_PARTS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@dataclass(frozen=True)
class Built:
    stage: Stage
    build: Build
    template: dict[str, Any]  # with code in S3, as deployed
    expanded: dict[str, Any]  # after the SAM transform, as CloudFormation runs it
    path: Path


def _build(stage_name: str, work: Path) -> Built:
    stage = load_stage(stage_name)
    built = build(stage, REGION, build_root=ROOT / "build" / "test")
    template = tpl.with_code(built.template, CODE_BUCKET, f"{stage.name}/code.zip")
    path = work / f"{stage.name}.json"
    path.write_text(json.dumps(template, indent=1))
    parameters = {tpl.SECRET_PARAMETER: stage.secret_parameter}
    # What the deploy sends (cli.deploy calls the same function): to AWS, to a stand-in.
    expanded = tpl.for_cloudformation(template, parameters, REGION, stand_in=False)
    (work / f"{stage.name}-expanded.json").write_text(json.dumps(expanded, indent=1))
    # An HTTP API's routes are resources already: a stand-in gets what AWS gets.
    stand_in = (tpl.for_cloudformation(template, parameters, REGION, stand_in=True)
                if stage.api == "rest" else expanded)
    (work / f"{stage.name}-stand-in.json").write_text(json.dumps(stand_in, indent=1))
    return Built(stage, built, template, expanded, path)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def dev(work: Path) -> Built:
    return _build("dev", work)


@pytest.fixture(scope="module")
def prod(work: Path) -> Built:
    return _build("prod", work)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def _role_of(template: dict[str, Any], function: str) -> dict[str, Any]:
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return template["Resources"][role]  # type: ignore[no-any-return]


def _statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    policies = _role_of(template, function)["Properties"]["Policies"]
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def _allowed(template: dict[str, Any], function: str, service: str) -> dict[str, Any]:
    """{action without prefix: resource} for one service's actions."""
    allowed: dict[str, Any] = {}
    for statement in _statements(template, function):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            prefix, name = action.split(":")
            if prefix == service:
                allowed[name] = statement["Resource"]
    return allowed


# -- the template ----------------------------------------------------------------


def test_templates_pass_cfn_lint_before_and_after_the_sam_transform(
    dev: Built, prod: Built, work: Path
) -> None:
    files = [
        str(dev.path),
        str(prod.path),
        str(work / "dev-expanded.json"),
        str(work / "prod-expanded.json"),
        str(work / "dev-stand-in.json"),  # what a moto stand-in gets
    ]
    result = subprocess.run(  # nosec B603
        [str(Path(sys.executable).parent / "cfn-lint"), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_in_the_deployed_templates_and_every_skip_says_why(
    dev: Built, prod: Built, work: Path
) -> None:
    # Every template CloudFormation receives: AWS's and a stand-in's (moto,
    # MiniStack), whose API methods are explicit resources checkov does read.
    files = [work / f"{stage}-{kind}.json" for stage in ("dev", "prod")
             for kind in ("expanded", "stand-in")]
    result = checkov(files)
    assert result.failed == [], result.failed
    assert result.passed > 0 and result.skipped == len(result.skips) > 0
    for check, resource, reason in result.skips:
        assert len(reason) > 20, (check, resource)
    # Each method the stand-in gets is open on purpose, and says why.
    public = {resource for check, resource, _ in result.skips if check == "CKV_AWS_59"}
    methods = {f"AWS::ApiGateway::Method.{name}" for name in _resources(
        json.loads((work / "dev-stand-in.json").read_text()), "AWS::ApiGateway::Method")}
    assert methods and methods <= public


def test_every_packaged_function_runs_python313_on_arm64_traced_and_far_from_deprecation(
    dev: Built, prod: Built
) -> None:
    """What fails the build: a runtime Lambda deprecates within a year of today."""
    for built in (dev, prod):
        functions = _resources(built.expanded, "AWS::Lambda::Function")
        assert set(functions) == FOLLOWUPS | {"APIHandler"}
        for name, function in functions.items():
            properties = function["Properties"]
            assert properties["Runtime"] == "python3.13", name
            assert properties["Architectures"] == ["arm64"], name
            assert properties["TracingConfig"] == {"Mode": "Active"}, name
            assert properties["LoggingConfig"] == {
                "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}, name
            assert runtime_problem(properties["Runtime"], date.today()) is None, name
        assert tpl.check_template(built.template, built.build.stream_handlers) == []


def test_the_package_carries_only_wheels_built_for_arm64(dev: Built) -> None:
    with zipfile.ZipFile(dev.build.zip_path) as archive:
        names = set(archive.namelist())
        wheels = {n: archive.read(n).decode() for n in names if n.endswith(".dist-info/WHEEL")}
    compiled = [n for n in names if n.endswith(".so")]
    # markupsafe's speedups name their machine; an abi3 library (cryptography) does not,
    # and its wheel's tags tell.
    assert compiled and all("aarch64" in n or n.endswith(".abi3.so") for n in compiled)
    for text in wheels.values():
        tags = [line for line in text.splitlines() if line.startswith("Tag:")]
        platforms = {tag.rsplit("-", 1)[-1] for tag in tags}
        assert platforms == {"any"} or all("aarch64" in p for p in platforms), platforms
    assert foreign_binaries(names, wheels) == []


def test_the_api_stage_is_traced_throttled_per_stage_and_writes_access_logs(
    dev: Built, prod: Built
) -> None:
    # dev's front door is Chalice's REST API, prod's an HTTP API (deploy/httpapi.py).
    assert (dev.stage.api, prod.stage.api) == ("rest", "http")
    [stage] = _resources(dev.expanded, "AWS::ApiGateway::Stage").values()
    properties = stage["Properties"]
    assert properties["TracingEnabled"] is True
    [throttle] = properties["MethodSettings"]
    assert (throttle["ThrottlingRateLimit"], throttle["ThrottlingBurstLimit"]) == (50, 100)
    setting = properties["AccessLogSetting"]
    [http_stage] = _resources(prod.expanded, "AWS::ApiGatewayV2::Stage").values()
    http = http_stage["Properties"]
    assert http["DefaultRouteSettings"]["ThrottlingRateLimit"] == 1000
    assert http["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 2000
    assert not _resources(prod.expanded, "AWS::ApiGateway::Stage")
    for built, log in ((dev, setting), (prod, http["AccessLogSettings"])):
        assert log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
        assert json.loads(log["Format"])["requestId"] == "$context.requestId"
        group = built.expanded["Resources"]["ApiAccessLogGroup"]["Properties"]
        assert group["RetentionInDays"] == built.stage.log_retention_days
    prod_functions = _resources(prod.expanded, "AWS::Lambda::Function")
    assert prod_functions["APIHandler"]["Properties"]["ReservedConcurrentExecutions"] == 200
    assert "ReservedConcurrentExecutions" not in json.dumps(dev.expanded)


def test_the_stream_mapping_carries_the_follow_ups_filters_and_parallelization(
    dev: Built,
) -> None:
    [mapping] = _resources(dev.expanded, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    patterns = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    assert patterns == list(followups.STREAM_FILTER_PATTERNS)
    assert properties["ParallelizationFactor"] == tpl.PARALLELIZATION_FACTOR


def test_alarms_topic_and_dashboard_go_out_in_the_expanded_template(dev: Built) -> None:
    kinds = [r["Type"] for r in dev.expanded["Resources"].values()]
    assert kinds.count("AWS::CloudWatch::Alarm") == 10
    assert kinds.count("AWS::CloudWatch::Dashboard") == 1
    assert kinds.count("AWS::SNS::Topic") == 1
    assert dev.expanded["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


def test_deploy_sends_plain_cloudformation_with_the_api_as_its_openapi_body(dev: Built) -> None:
    assert "Transform" not in dev.expanded
    kinds = {r["Type"] for r in dev.expanded["Resources"].values()}
    assert not any(kind.startswith("AWS::Serverless::") for kind in kinds)
    api = dev.expanded["Resources"]["RestAPI"]
    assert api["Type"] == "AWS::ApiGateway::RestApi"
    assert api["Properties"]["Name"] == "chalice-cart-dev"
    assert "/api/cart/items" in api["Properties"]["Body"]["paths"]
    [stage] = _resources(dev.expanded, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "api"


def test_api_gateway_own_errors_go_out_in_chalice_error_shape_inside_the_openapi_body(
    dev: Built, prod: Built
) -> None:
    error = '{"Code":"$context.error.responseType","Message":$context.error.messageString}'
    # prod's HTTP API has no gateway responses: its catch-alls bring every
    # unknown route to the app (tests/functional/test_http_api.py).
    assert "RestAPI" not in prod.expanded["Resources"]
    for built in (dev,):
        body = built.expanded["Resources"]["RestAPI"]["Properties"]["Body"]
        responses = dict(body["x-amazon-apigateway-gateway-responses"])
        assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED",
                                  "MISSING_AUTHENTICATION_TOKEN"}
        not_found = responses.pop("MISSING_AUTHENTICATION_TOKEN")
        assert not_found["statusCode"] == "404"
        assert not_found["responseTemplates"] == {"application/json": tpl.NOT_FOUND_TEMPLATE}
        # The unknown paths themselves go to the app's greedy route.
        assert set(body["paths"]["/{proxy+}"]) >= {"get", "post", "put", "delete"}
        for response in responses.values():
            assert response["responseTemplates"] == {"application/json": error}
            assert "statusCode" not in response
        assert responses["DEFAULT_4XX"]["responseParameters"] == {}
        assert responses["THROTTLED"]["responseParameters"] == {
            "gatewayresponse.header.Retry-After": "'1'"
        }
    # In the Body, not as resources, which a Body update would silently drop.
    assert not _resources(dev.expanded, "AWS::ApiGateway::GatewayResponse")


def test_the_http_api_has_a_route_for_every_route_chalice_made_and_one_integration(
    dev: Built, prod: Built
) -> None:
    chalice_made = {
        (verb.upper(), path)
        for path, item in dev.expanded["Resources"]["RestAPI"]["Properties"]["Body"][
            "paths"].items()
        for verb in item
    }
    keys = {r["Properties"]["RouteKey"] for r in _resources(
        prod.expanded, "AWS::ApiGatewayV2::Route").values()}
    greedy = {(m, p) for m, p in chalice_made if p.endswith("+}")}
    assert {f"{m} {p}" for m, p in chalice_made - greedy} | {"ANY /{proxy+}", "ANY /"} == keys
    [integration] = _resources(prod.expanded, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "1.0"
    [permission] = _resources(prod.expanded, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["SourceArn"]["Fn::Sub"].endswith(":${HttpApi}/*")
    assert prod.expanded["Outputs"]["EndpointURL"]["Value"]["Fn::Sub"].endswith("/api/")


def test_a_change_to_the_gateway_responses_deploys_the_api_again(dev: Built) -> None:
    """SAM names the Deployment after the Body: a new name is a new deployment."""
    changed = copy.deepcopy(dev.template)
    throttled = changed["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]["THROTTLED"]
    throttled["ResponseParameters"]["Headers"]["Retry-After"] = "'2'"
    parameters = {tpl.SECRET_PARAMETER: dev.stage.secret_parameter}
    expanded = tpl.expand(changed, parameters, REGION)
    before = set(_resources(dev.expanded, "AWS::ApiGateway::Deployment"))
    after = set(_resources(expanded, "AWS::ApiGateway::Deployment"))
    assert len(before) == len(after) == 1 and before != after


def test_every_follow_up_mapping_reports_item_failures_bisects_and_dead_letters(dev: Built) -> None:
    mappings = _resources(dev.expanded, "AWS::Lambda::EventSourceMapping")
    assert {m["Properties"]["FunctionName"]["Ref"] for m in mappings.values()} == FOLLOWUPS
    for mapping in mappings.values():
        properties = mapping["Properties"]
        assert properties["EventSourceArn"] == {"Fn::GetAtt": ["CartTable", "StreamArn"]}
        assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert properties["BisectBatchOnFunctionError"] is True
        assert 0 <= properties["MaximumRetryAttempts"] <= 5
        assert 60 <= properties["MaximumRecordAgeInSeconds"] <= 3600
        assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["FollowupDeadLetterQueue", "Arn"]
        }


def test_dead_letter_queue_is_in_the_stack_encrypted_and_keeps_messages_14_days(dev: Built) -> None:
    queue = dev.expanded["Resources"]["FollowupDeadLetterQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_table_has_its_stream_ttl_on_demand_billing_and_point_in_time_recovery(dev: Built) -> None:
    properties = dev.expanded["Resources"]["CartTable"]["Properties"]
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["TimeToLiveSpecification"] == {
        "Enabled": True,
        "AttributeName": table.TTL_ATTRIBUTE,
    }
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["KeySchema"] == table.TABLE_SPEC["KeySchema"]


def test_production_table_is_kept_on_stack_deletion_and_dev_table_is_not(
    dev: Built, prod: Built
) -> None:
    assert prod.stage.production and not dev.stage.production
    kept = prod.expanded["Resources"]["CartTable"]
    assert (kept["DeletionPolicy"], kept["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate", "Retain")
    dropped = dev.expanded["Resources"]["CartTable"]
    assert (dropped["DeletionPolicy"], dropped["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_functions_read_table_and_stream_from_the_table_in_the_same_stack(dev: Built) -> None:
    functions = _resources(dev.expanded, "AWS::Lambda::Function")
    assert set(functions) == FOLLOWUPS | {"APIHandler"}
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == {"Ref": "CartTable"}
        assert variables["TABLE_STREAM_ARN"] == {"Fn::GetAtt": ["CartTable", "StreamArn"]}
        assert function["Properties"]["Runtime"] == "python3.13"
        assert function["Properties"]["Code"] == {"S3Bucket": CODE_BUCKET, "S3Key": "dev/code.zip"}
    assert "placeholder" not in json.dumps(dev.expanded)


# -- IAM -------------------------------------------------------------------------


def test_each_function_may_use_only_the_table_actions_its_code_calls(dev: Built) -> None:
    table_arn = {"Fn::GetAtt": ["CartTable", "Arn"]}
    stream_arn = {"Fn::GetAtt": ["CartTable", "StreamArn"]}
    for function, expected in EXPECTED_TABLE_ACTIONS.items():
        allowed = _allowed(dev.expanded, function, "dynamodb")
        table_actions = {a for a, r in allowed.items() if r == table_arn}
        stream_actions = {a for a, r in allowed.items() if r == stream_arn}
        assert table_actions == expected, function
        if function == "APIHandler":
            assert stream_actions == set()
        else:
            assert stream_actions == STREAM_ACTIONS, function
        assert set(allowed) == table_actions | stream_actions, function


def test_no_policy_grants_anything_on_star_or_any_wildcard_action(dev: Built) -> None:
    for role in _resources(dev.expanded, "AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Resource"] == "*":
                    # X-Ray has no resource-level permissions: its two write calls only.
                    assert statement["Action"] == sorted(XRAY_ACTIONS)
                    continue
                assert all("*" not in action for action in statement["Action"])
                if "kms:Decrypt" in statement["Action"]:
                    # Any key, but only through SSM and only for this parameter.
                    condition = statement["Condition"]["StringEquals"]
                    assert set(condition) == {
                        "kms:ViaService",
                        "kms:EncryptionContext:PARAMETER_ARN",
                    }


def test_only_the_api_reads_the_cookie_secret_and_only_that_parameter(dev: Built) -> None:
    for function in FOLLOWUPS | {"APIHandler"}:
        ssm = _allowed(dev.expanded, function, "ssm")
        if function == "APIHandler":
            assert ssm == {
                "GetParameter": {
                    "Fn::Sub": (
                        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                        ":parameter${CookieSecretParameter}"
                    )
                }
            }
        else:
            assert ssm == {} and _allowed(dev.expanded, function, "kms") == {}


def test_follow_ups_may_send_only_to_the_dead_letter_queue_and_the_api_not_at_all(
    dev: Built,
) -> None:
    dlq = {"Fn::GetAtt": ["FollowupDeadLetterQueue", "Arn"]}
    for function in FOLLOWUPS:
        assert _allowed(dev.expanded, function, "sqs") == {"SendMessage": dlq}
    assert _allowed(dev.expanded, "APIHandler", "sqs") == {}


def test_each_function_writes_only_its_own_log_group(dev: Built) -> None:
    for function in FOLLOWUPS | {"APIHandler"}:
        group = {"Fn::GetAtt": [function + "LogGroup", "Arn"]}
        logs = _allowed(dev.expanded, function, "logs")
        assert logs == {"CreateLogStream": group, "PutLogEvents": group}
        name = dev.expanded["Resources"][function + "LogGroup"]["Properties"]["LogGroupName"]
        function_name = dev.expanded["Resources"][function]["Properties"]["FunctionName"]
        assert name == "/aws/lambda/" + function_name


def test_cookie_secret_reaches_the_template_only_as_a_parameter_name(dev: Built) -> None:
    api = dev.expanded["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert api["CART_COOKIE_SECRET_PARAM"] == {"Ref": "CookieSecretParameter"}
    assert dev.template["Parameters"]["CookieSecretParameter"]["Default"] == (
        "/chalice-cart/dev/cookie-secret"
    )
    text = json.dumps(dev.template)
    assert 'CART_COOKIE_SECRET"' not in text
    assert "local-stage-only" not in text


def test_every_dynamodb_call_the_code_makes_is_allowed_by_its_function_policy(
    dev: Built, client: Any, stream: Stream, user_pool: tuple[str, str]
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, params))

    runtime.dynamodb_client().meta.events.register("provide-client-params.dynamodb.*", record)

    def actions() -> set[str]:
        seen: set[str] = set()
        for operation, params in calls:
            if operation == "TransactWriteItems":
                seen |= {TRANSACT_PARTS[k] for part in params["TransactItems"] for k in part}
            else:
                seen.add(operation)
        calls.clear()
        return seen

    first = request(client, "POST", "/api/cart/items", body=add_body("kettle", 2))
    cookie = cookie_from(first)
    once = {"Idempotency-Key": "policy-test-add"}
    request(client, "POST", "/api/cart/items", cookie, add_body("espresso-cup", 1), once)
    request(client, "POST", "/api/cart/items", cookie, add_body("espresso-cup", 1), once)
    request(client, "PUT", "/api/cart/items/kettle", cookie, {"quantity": 3})
    request(client, "DELETE", "/api/cart/items/espresso-cup", cookie)
    request(client, "GET", "/api/cart", cookie)
    request(client, "GET", "/api/cart/status", cookie)
    request(client, "GET", "/api/products", cookie)
    order = request(
        client,
        "POST",
        "/api/cart/checkout",
        cookie,
        headers={"Idempotency-Key": "policy-test-checkout"},
    ).json_body
    request(client, "GET", f"/api/orders/{order['orderId']}", cookie)
    # Sign-in moves a line and adopts the order; the history reads it back.
    request(client, "POST", "/api/cart/items", cookie, add_body("tote", 1))
    account = {"email": "policy@example.com", "password": "Policy-test-1"}
    request(client, "POST", "/api/account/signup", body=account)
    request(client, "POST", "/api/account/confirm", body={"email": account["email"], "code": "1"})
    signed_in = request(client, "POST", "/api/account/signin", cookie, account)
    session = "; ".join(v.split(";", 1)[0] for v in signed_in.headers["Set-Cookie"])
    assert request(client, "GET", "/api/orders", session).json_body["orders"]
    assert request(client, "GET", f"/api/orders/{order['orderId']}", session).status_code == 200
    used = {"APIHandler": actions()}
    records = stream.read()
    stream.deliver(records, functions=("process_stream",))
    used["ProcessStream"] = actions()
    for function, made in used.items():
        assert made, f"{function} made no call: the scenario does not reach it"
        allowed = set(_allowed(dev.expanded, function, "dynamodb"))
        assert made <= allowed, (function, made - allowed)


# -- the package -------------------------------------------------------------------


def test_package_has_the_jwt_library_with_cryptography_built_for_lambda_arm64(
    dev: Built,
) -> None:
    """Token verification needs cryptography's Rust extension, as an aarch64 ELF."""
    aarch64 = 183  # ELF e_machine of EM_AARCH64
    with zipfile.ZipFile(dev.build.zip_path) as archive:
        names = set(archive.namelist())
        assert "jwt/__init__.py" in names
        extensions = [n for n in names if n.endswith(".so")]
        assert "cryptography/hazmat/bindings/_rust.abi3.so" in extensions
        for name in extensions:
            header = archive.read(name)[:20]
            assert header[:4] == b"\x7fELF", name
            assert int.from_bytes(header[18:20], "little") == aarch64, name


def test_package_holds_app_templates_and_static_without_dev_or_lambda_packages(dev: Built) -> None:
    zip_path = dev.build.zip_path
    assert zip_path.stat().st_size <= MAX_ZIP_BYTES
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert {
        "app.py",
        "chalicelib/__init__.py",
        "chalicelib/table.py",
        "templates/base.html",
        "static/app.css",
    } <= names
    assert set(asset_files()) <= names
    assert "jinja2/__init__.py" in names
    top_level = {name.split("/", 1)[0] for name in names}
    assert not top_level & {*EXCLUDED_PACKAGES, "devstack", "deploy", "tests", "bench"}
    assert not any(name.endswith(".pyc") for name in names)


LAMBDA_LIKE = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the unzipped package, as /var/task is on Lambda
import app
def event(path, resource, params=None):
    return {"resource": resource, "path": path, "httpMethod": "GET", "headers": {},
            "multiValueQueryStringParameters": None, "pathParameters": params,
            "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"httpMethod": "GET", "resourcePath": resource,
                               "path": "/api" + path, "stage": "api", "requestId": "r",
                               "identity": {"sourceIp": "127.0.0.1"}}}
css = app.app(event("/static/app.css", "/static/{name}", {"name": "app.css"}), None)
page = app.app(event("/orders/nope", "/orders/{order_id}", {"order_id": "nope"}), None)
print(json.dumps({"app": app.__file__, "jinja2": sys.modules["jinja2"].__file__,
                  "css": css["statusCode"], "page": page["statusCode"],
                  "html": "<html" in page["body"]}))
"""


def test_unzipped_package_serves_pages_and_static_files_on_its_own(
    dev: Built, tmp_path: Path
) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(dev.build.zip_path) as archive:
        archive.extractall(task)  # nosec B202: our own build
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_DEFAULT_REGION": REGION,
        "TABLE_NAME": "unused",
        "CART_COOKIE_SECRET": "only-for-this-test-0123456789",
    }
    result = subprocess.run(  # nosec B603
        [sys.executable, "-I", "-c", LAMBDA_LIKE, str(task)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["app"].startswith(str(task)) and seen["jinja2"].startswith(str(task))
    assert (seen["css"], seen["page"], seen["html"]) == (200, 404, True)


def test_build_leaves_the_source_tree_alone(dev: Built) -> None:
    assert not (ROOT / "vendor").exists()
    assert dev.build.zip_path.is_relative_to(ROOT / "build")


# -- the whole deploy against a moto stand-in --------------------------------------

STACK = "chalice-cart-dev"
TEST_BUILD = ROOT / "build" / "test"
SHOP_URL = re.compile(
    r"^Shop: +(https://(\w+)\.execute-api\.us-east-1\.amazonaws\.com/api/)$", re.M
)
# What moto (5.2) does not emulate; asserted below as moto's behaviour where it shows.
MOTO_GAPS = {
    "ttl": "its CloudFormation Table drops TimeToLiveSpecification: TTL reads DISABLED",
    "pitr": "its CloudFormation Table drops PointInTimeRecoverySpecification",
    "stage": "no AWS::ApiGateway::Stage in its CloudFormation: no `api` stage, no throttling",
    "body": "a RestApi's OpenAPI Body is ignored: the deploy sends explicit routes instead",
    "outputs": "change sets never compute stack outputs: the deploy reads the resources",
    "events": "stack events only for the stack itself, none per resource",
    "rest_api_delete": "DeleteStack leaves the RestApi behind",
    "gateway_responses": "no AWS::ApiGateway::GatewayResponse in its CloudFormation, and the "
    "Body that carries them is ignored: API Gateway's own errors keep its default shape",
    "runtime": "Lambda code runs only in Docker (moto tries on each stream write and logs "
    "the failure): the URL serves nothing",
    "iam": "IAM is not enforced: a role missing a permission fails only on AWS",
    "alarms": "no AWS::CloudWatch::Alarm in its CloudFormation: the stack has no alarms",
    "subscription": "no AWS::SNS::Subscription in its CloudFormation: no e-mail subscribed",
    "tracing": "its Lambda drops TracingConfig: every function reads PassThrough",
    "logging_config": "its Lambda drops LoggingConfig (JSON, SystemLogLevel): a function "
    "reads back none, and moto writes no logs for it to filter anyway",
    "http_api": "no AWS::ApiGatewayV2 resource in its CloudFormation: an HTTP API stage's "
    "stack goes up without its API (MiniStack builds it: make emulate API=http)",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _moto_server() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _stand_in_env(moto_url: str, home: Path) -> dict[str, str]:
    """A shell with dummy credentials whose every AWS endpoint is the moto server."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }


def _run(command: str, env: dict[str, str], stage: str = "dev",
         *extra: str) -> subprocess.CompletedProcess[str]:
    """`make deploy|destroy STAGE=dev` without make's install check."""
    return subprocess.run(  # nosec B603
        [sys.executable, "-m", "deploy", command, "--stage", stage, "--build-dir",
         str(TEST_BUILD), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@dataclass(frozen=True)
class Observed:
    """What the stand-in account holds after one step, read through its own APIs."""

    stack: dict[str, Any] | None
    template: dict[str, Any]
    resources: dict[str, str]  # logical id -> type
    table: dict[str, Any] | None
    ttl: str | None
    pitr: str | None
    catalog: list[str]
    functions: dict[str, dict[str, Any]]
    mappings: list[dict[str, Any]]
    queues: dict[str, dict[str, str]]
    statements: dict[str, list[dict[str, Any]]]  # role name -> its inline statements
    apis: dict[str, dict[str, Any]]  # name -> api with "routes" and "stages"
    log_groups: dict[str, int | None]
    secret: dict[str, Any] | None
    buckets: list[str]
    products: dict[str, int]  # id -> priceCents
    alarms: dict[str, dict[str, Any]]  # name -> alarm
    topics: dict[str, list[dict[str, Any]]]  # topic arn -> its subscriptions
    dashboards: list[str]
    api_logging_role: str | None  # the account's API Gateway CloudWatch role


def _document(policy: Any) -> Any:
    """moto keeps a policy from CloudFormation as the repr of a dict, not as JSON."""
    return ast.literal_eval(policy) if isinstance(policy, str) else policy


def _observe(moto_url: str) -> Observed:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )

    def aws(service: str) -> Any:
        return session.client(service, endpoint_url=moto_url)

    cfn = aws("cloudformation")
    stacks = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == STACK]
    stack = stacks[0] if stacks else None
    template: dict[str, Any] = {}
    resources: dict[str, str] = {}
    if stack:
        template = dict(cfn.get_template(StackName=STACK)["TemplateBody"])
        summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        resources = {r["LogicalResourceId"]: r["ResourceType"] for r in summaries}
    dynamodb = aws("dynamodb")
    names = [n for n in dynamodb.list_tables()["TableNames"] if n.startswith(f"{STACK}-CartTable")]
    cart_table = ttl = pitr = None
    catalog: list[str] = []
    products: dict[str, int] = {}
    if names:
        cart_table = dynamodb.describe_table(TableName=names[0])["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=names[0])["TimeToLiveDescription"][
            "TimeToLiveStatus"
        ]
        pitr = dynamodb.describe_continuous_backups(TableName=names[0])[
            "ContinuousBackupsDescription"
        ]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"]
        items = dynamodb.query(
            TableName=names[0],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": table.CATALOG_PK}},
        )["Items"]
        catalog = sorted(i["productId"]["S"] for i in items)
        products = {i["productId"]["S"]: int(i["priceCents"]["N"]) for i in items}
    lam = aws("lambda")
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    sqs = aws("sqs")
    queues = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for url in sqs.list_queues().get("QueueUrls", [])
    }
    iam = aws("iam")
    statements = {
        role["RoleName"]: [
            statement
            for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
            for statement in _document(
                iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
            )["Statement"]
        ]
        for role in iam.list_roles()["Roles"]
    }
    apigateway = aws("apigateway")
    apis: dict[str, dict[str, Any]] = {}
    for api in apigateway.get_rest_apis()["items"]:
        routes = {
            (resource["path"], verb): method.get("methodIntegration", {})
            for resource in apigateway.get_resources(restApiId=api["id"], limit=500)["items"]
            for verb, method in resource.get("resourceMethods", {}).items()
        }
        stages = [s["stageName"] for s in apigateway.get_stages(restApiId=api["id"])["item"]]
        responses = [
            r["responseType"]
            for r in apigateway.get_gateway_responses(restApiId=api["id"])["items"]
        ]
        apis[api["name"]] = {
            **api,
            "routes": routes,
            "stages": stages,
            "gateway_responses": responses,
        }
    log_groups = {
        g["logGroupName"]: g.get("retentionInDays")
        for g in aws("logs").describe_log_groups()["logGroups"]
    }
    ssm = aws("ssm")
    try:
        secret = ssm.get_parameter(Name="/chalice-cart/dev/cookie-secret", WithDecryption=True)[
            "Parameter"
        ]
    except ssm.exceptions.ParameterNotFound:
        secret = None
    buckets = [b["Name"] for b in aws("s3").list_buckets()["Buckets"]]
    cloudwatch = aws("cloudwatch")
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    dashboards = [d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]]
    sns = aws("sns")
    topics = {
        t["TopicArn"]: sns.list_subscriptions_by_topic(TopicArn=t["TopicArn"])["Subscriptions"]
        for t in sns.list_topics()["Topics"]
    }
    api_logging_role = apigateway.get_account().get("cloudwatchRoleArn")
    return Observed(
        stack,
        template,
        resources,
        cart_table,
        ttl,
        pitr,
        catalog,
        functions,
        mappings,
        queues,
        statements,
        apis,
        log_groups,
        secret,
        buckets,
        products,
        alarms,
        topics,
        dashboards,
        api_logging_role,
    )


@dataclass(frozen=True)
class Lifecycle:
    first: subprocess.CompletedProcess[str]
    after_first: Observed
    again: subprocess.CompletedProcess[str]
    after_again: Observed
    update: list[str]
    new_code_sha: str
    after_update: Observed
    destroyed: subprocess.CompletedProcess[str]
    after_destroy: Observed
    catalog: subprocess.CompletedProcess[str]  # make catalog FILE=... STAGE=dev


# An operator's change to a live product's price.
LIVE_PRODUCT = SEED[0]
LIVE_PRICE = LIVE_PRODUCT.price_cents + 101
ALARM_EMAIL = "ops@example.com"


def _change_live_product(moto_url: str, seen: Observed, price: int) -> None:
    assert seen.table is not None
    dynamodb = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    dynamodb.update_item(
        TableName=seen.table["TableName"],
        Key={"pk": {"S": table.CATALOG_PK}, "sk": {"S": table.product_sk(LIVE_PRODUCT.id)}},
        UpdateExpression="SET priceCents = :p",
        ExpressionAttributeValues={":p": {"N": str(price)}},
    )


@pytest.fixture(scope="module")
def lifecycle(dev: Built, tmp_path_factory: pytest.TempPathFactory) -> Lifecycle:
    """deploy, deploy again, deploy new code, destroy: one stand-in account, start to end."""
    home = tmp_path_factory.mktemp("home")
    with _moto_server() as moto_url:
        env = _stand_in_env(moto_url, home)
        first = _run("deploy", env)
        assert first.returncode == 0, first.stdout + first.stderr
        after_first = _observe(moto_url)
        _change_live_product(moto_url, after_first, LIVE_PRICE)
        again = _run("deploy", env, "dev", "--no-checkov")  # the first deploy's scan is enough
        after_again = _observe(moto_url)
        mugs = home / "mugs.csv"
        mugs.write_text("id,name,description,priceCents,stock,active\n"
                        "stage-test-mug,Stage mug,Blue.,900,3,true\n")
        catalog = subprocess.run(  # nosec B603: `make catalog FILE=mugs.csv STAGE=dev`
            [sys.executable, "-m", "deploy.catalog", str(mugs), "--stage", "dev"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
        # New code, as after an edit: the same build with one more file in the zip.
        changed = home / "changed.zip"
        changed.write_bytes(dev.build.zip_path.read_bytes())
        with zipfile.ZipFile(changed, "a") as archive:
            archive.writestr("chalicelib/changed.txt", "a new build")
        new_build = dataclasses.replace(dev.build, zip_path=changed)
        update: list[str] = []
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                if key.startswith("AWS_"):
                    patch.setenv(key, value)
            cli.deploy(
                dev.stage,
                acct.connect(),
                out=update.append,
                sleep=lambda _: None,
                builder=lambda stage, region: new_build,
                alarm_email=ALARM_EMAIL,
                reseed=True,
                scan=False,
            )
        after_update = _observe(moto_url)
        destroyed = _run("destroy", env)
        after_destroy = _observe(moto_url)
    sha = base64.b64encode(hashlib.sha256(changed.read_bytes()).digest()).decode()
    return Lifecycle(
        first,
        after_first,
        again,
        after_again,
        update,
        sha,
        after_update,
        destroyed,
        after_destroy,
        catalog,
    )


def test_deploy_to_a_moto_stand_in_completes_and_prints_the_shop_url(lifecycle: Lifecycle) -> None:
    first, seen = lifecycle.first, lifecycle.after_first
    assert first.returncode == 0 and first.stderr == ""
    assert seen.stack and seen.stack["StackStatus"] == "CREATE_COMPLETE"
    url = SHOP_URL.search(first.stdout)
    assert url, first.stdout
    assert url[2] == seen.apis[STACK]["id"]
    assert "nothing serves it" in first.stdout  # MOTO_GAPS["runtime"]
    assert "is a stand-in, not AWS" in first.stdout  # MOTO_GAPS["body"]
    # checkov read the very file CloudFormation was sent, before it was sent.
    assert re.search(r"checkov: \d+ passed, 0 failed.*\(deploy-template\.json\)",
                     first.stdout), first.stdout
    assert first.stdout.index("checkov:") < first.stdout.index("creating change set")
    assert "worked out from its resources" in first.stdout  # MOTO_GAPS["outputs"]
    # MOTO_GAPS["events"]: the only events shown are the stack's own.
    shown = {line.split()[2] for line in first.stdout.splitlines() if re.match(r"  \d\d:", line)}
    assert shown == {"AWS::CloudFormation::Stack"}
    kinds = set(seen.resources.values())
    assert {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Deployment",
    } <= kinds
    assert not any(kind.startswith("AWS::Serverless::") for kind in kinds)


def test_stand_in_table_has_its_stream_on_demand_billing_and_the_catalog(
    lifecycle: Lifecycle,
) -> None:
    seen = lifecycle.after_first
    assert seen.table is not None
    assert seen.table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert seen.table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert seen.table["KeySchema"] == table.TABLE_SPEC["KeySchema"]
    assert seen.catalog == sorted(p.id for p in SEED) and len(seen.catalog) >= 8
    # TTL and point-in-time recovery are in what the stack got; moto drops both.
    sent = seen.template["Resources"]["CartTable"]["Properties"]
    assert sent["TimeToLiveSpecification"] == {
        "Enabled": True,
        "AttributeName": table.TTL_ATTRIBUTE,
    }
    assert sent["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert seen.ttl == "DISABLED", MOTO_GAPS["ttl"]
    assert seen.pitr == "DISABLED", MOTO_GAPS["pitr"]


def test_stand_in_functions_run_the_package_on_the_stack_table_and_stream(
    lifecycle: Lifecycle, dev: Built
) -> None:
    seen = lifecycle.after_first
    assert seen.table is not None
    package_sha = base64.b64encode(hashlib.sha256(dev.build.zip_path.read_bytes()).digest())
    assert set(seen.functions) == {
        f"{STACK}-{handler}"
        for handler in ("api_handler", "process_stream")
    }
    for function in seen.functions.values():
        variables = function["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == seen.table["TableName"]
        assert variables["TABLE_STREAM_ARN"] == seen.table["LatestStreamArn"]
        assert function["Runtime"] == "python3.13"
        assert function["CodeSha256"] == package_sha.decode()
    api = seen.functions[f"{STACK}-api_handler"]["Environment"]["Variables"]
    assert api["CART_COOKIE_SECRET_PARAM"] == "/chalice-cart/dev/cookie-secret"
    assert seen.secret and seen.secret["Value"] not in json.dumps(seen.functions, default=str)


def test_stand_in_follow_up_mappings_report_item_failures_bisect_and_dead_letter(
    lifecycle: Lifecycle,
) -> None:
    seen = lifecycle.after_first
    assert seen.table is not None
    [dlq] = seen.queues.values()
    assert {m["FunctionArn"].rsplit(":", 1)[1] for m in seen.mappings} == {
        f"{STACK}-process_stream",
    }
    for mapping in seen.mappings:
        assert mapping["EventSourceArn"] == seen.table["LatestStreamArn"]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BisectBatchOnFunctionError"] is True
        assert mapping["MaximumRetryAttempts"] == 5
        assert mapping["MaximumRecordAgeInSeconds"] == 3600
        assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == dlq["QueueArn"]
        assert mapping["State"] == "Enabled"
        patterns = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
        assert patterns == list(followups.STREAM_FILTER_PATTERNS)
        assert mapping["ParallelizationFactor"] == tpl.PARALLELIZATION_FACTOR
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert dlq["SqsManagedSseEnabled"] == "true"


def test_stand_in_roles_name_only_the_table_stream_queue_key_and_own_logs(
    lifecycle: Lifecycle,
) -> None:
    seen = lifecycle.after_first
    assert seen.table is not None
    table_arn, stream_arn = seen.table["TableArn"], seen.table["LatestStreamArn"]
    # The API, the one stream function, and API Gateway's logging role (outside the
    # stack): that one may write this account's log groups, nothing else.
    assert len(seen.statements) == 3
    [logging] = seen.statements[acct.API_LOGS_ROLE]
    assert logging["Action"] == list(acct.API_LOGS_ACTIONS)
    assert logging["Resource"] == f"arn:aws:logs:*:{ACCOUNT}:log-group:*"
    assert seen.api_logging_role == f"arn:aws:iam::{ACCOUNT}:role/{acct.API_LOGS_ROLE}"
    functions = {r: st for r, st in seen.statements.items() if r != acct.API_LOGS_ROLE}
    for role, statements in functions.items():
        for statement in statements:
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            if "*" in resources:
                assert set(statement["Action"]) == XRAY_ACTIONS, role
            if any(action.startswith("dynamodb:") for action in statement["Action"]):
                assert resources in ([table_arn], [stream_arn]), role
    assert seen.log_groups == {
        **{f"/aws/lambda/{name}": 14 for name in seen.functions},
        f"/aws/apigateway/{STACK}-access": 14,
    }


def test_stand_in_api_has_every_route_as_a_lambda_proxy_method(
    lifecycle: Lifecycle, dev: Built
) -> None:
    api = lifecycle.after_first.apis[STACK]
    body = dev.expanded["Resources"]["RestAPI"]["Properties"]["Body"]
    expected = {(path, verb.upper()) for path, item in body["paths"].items() for verb in item}
    assert set(api["routes"]) == expected
    handler = lifecycle.after_first.functions[f"{STACK}-api_handler"]["FunctionArn"]
    for integration in api["routes"].values():
        assert integration["type"] == "AWS_PROXY"
        assert integration["uri"].endswith(f"/functions/{handler}/invocations")
    assert "api" not in api["stages"], MOTO_GAPS["stage"]
    sent = lifecycle.after_first.template
    assert "Body" not in sent["Resources"]["RestAPI"]["Properties"]
    assert "GatewayResponse" not in json.dumps(sent)
    assert api["gateway_responses"] == [], MOTO_GAPS["gateway_responses"]


def test_stand_in_holds_the_alarm_topic_the_dashboard_and_the_traced_functions(
    lifecycle: Lifecycle, dev: Built
) -> None:
    seen, updated = lifecycle.after_first, lifecycle.after_update
    [(topic, subscriptions)] = seen.topics.items()
    assert seen.resources["AlarmTopic"] == "AWS::SNS::Topic"
    assert seen.dashboards == [STACK]
    assert seen.resources["OperationsDashboard"] == "AWS::CloudWatch::Dashboard"
    # What moto leaves out, though the stack got it (the template tests check it).
    sent = [r["Type"] for r in seen.template["Resources"].values()]
    assert sent.count("AWS::CloudWatch::Alarm") == 10
    assert seen.alarms == {}, MOTO_GAPS["alarms"]
    assert "AlarmEmailSubscription" not in seen.resources  # no e-mail given yet
    # A later deploy given an e-mail passes it on; moto then subscribes nothing.
    assert updated.stack and {
        p["ParameterKey"]: p["ParameterValue"] for p in updated.stack["Parameters"]
    }["AlarmEmail"] == ALARM_EMAIL
    assert updated.topics == {topic: []}, MOTO_GAPS["subscription"]
    assert f"(e-mail to {ALARM_EMAIL}: confirm the subscription)" in "\n".join(lifecycle.update)
    for function in seen.functions.values():
        assert function["TracingConfig"] == {"Mode": "PassThrough"}, MOTO_GAPS["tracing"]
        assert "LoggingConfig" not in function, MOTO_GAPS["logging_config"]
    sent_functions = _resources(seen.template, "AWS::Lambda::Function").values()
    assert all(f["Properties"]["LoggingConfig"]["SystemLogLevel"] == "WARN"
               for f in sent_functions)
    expanded = _resources(dev.expanded, "AWS::Lambda::Function").values()
    assert all(f["Properties"]["TracingConfig"] == {"Mode": "Active"} for f in expanded)


def test_cookie_secret_is_a_random_securestring_that_never_enters_the_stack(
    lifecycle: Lifecycle,
) -> None:
    seen = lifecycle.after_first
    assert seen.secret and seen.secret["Type"] == "SecureString"
    assert len(seen.secret["Value"]) >= 64
    assert seen.secret["Value"] not in json.dumps(seen.template)
    assert seen.stack and sorted(
        seen.stack["Parameters"], key=lambda p: p["ParameterKey"]
    ) == [
        {"ParameterKey": "AlarmEmail", "ParameterValue": ""},
        {
            "ParameterKey": "CookieSecretParameter",
            "ParameterValue": "/chalice-cart/dev/cookie-secret",
        },
    ]


def test_deploying_the_same_build_again_changes_nothing_and_keeps_the_secret(
    lifecycle: Lifecycle,
) -> None:
    again, before, after = lifecycle.again, lifecycle.after_first, lifecycle.after_again
    assert again.returncode == 0, again.stderr
    assert "==> no changes: the stack already matches this build" in again.stdout
    assert "==> cookie-signing key: kept SSM SecureString" in again.stdout
    assert before.secret and after.secret and after.secret["Value"] == before.secret["Value"]
    assert after.table and before.table and after.table["TableArn"] == before.table["TableArn"]
    assert after.catalog == before.catalog
    assert SHOP_URL.search(again.stdout)


def test_a_redeploy_keeps_a_live_catalog_and_reseed_rewrites_its_products(
    lifecycle: Lifecycle,
) -> None:
    assert lifecycle.after_first.products[LIVE_PRODUCT.id] == LIVE_PRODUCT.price_cents
    # The operator's price survives a plain redeploy...
    assert lifecycle.after_again.products[LIVE_PRODUCT.id] == LIVE_PRICE
    assert f"==> seeded 0 missing products into {STACK}-CartTable" in lifecycle.again.stdout
    assert f"kept {len(SEED)} already there" in lifecycle.again.stdout
    # ...and --reseed puts the catalog's price back.
    assert lifecycle.after_update.products[LIVE_PRODUCT.id] == LIVE_PRODUCT.price_cents
    assert any(line.startswith("==> re-seeding") for line in lifecycle.update)
    assert any(line.strip().startswith(f"changed    {LIVE_PRODUCT.id}: price") for line in (
        lifecycle.update
    ))
    # make catalog STAGE=dev: the stage's table, found through its stack.
    assert lifecycle.catalog.returncode == 0, lifecycle.catalog.stderr
    assert f"into {STACK}-CartTable" in lifecycle.catalog.stdout
    assert "added      stage-test-mug: Stage mug, $9.00, stock 3" in lifecycle.catalog.stdout
    assert lifecycle.after_update.products["stage-test-mug"] == 900


def test_deploying_new_code_updates_the_functions_in_place_and_keeps_the_table(
    lifecycle: Lifecycle,
) -> None:
    changes = [line.split() for line in lifecycle.update if line.startswith("  Modify")]
    assert sorted(change[2] for change in changes) == sorted(
        ["APIHandler", "ProcessStream"]
    )
    # On AWS the e-mail given to this deploy adds its subscription (MOTO_GAPS["subscription"]).
    assert not any(line.startswith(("  Add", "  Remove")) for line in lifecycle.update)
    before, after = lifecycle.after_first, lifecycle.after_update
    assert after.stack and after.stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {f["CodeSha256"] for f in after.functions.values()} == {lifecycle.new_code_sha}
    assert after.table and before.table and after.table["TableArn"] == before.table["TableArn"]
    assert any(line.startswith("Shop:") for line in lifecycle.update)


def test_destroy_removes_the_stack_and_all_the_deploy_made(lifecycle: Lifecycle) -> None:
    destroyed, gone = lifecycle.destroyed, lifecycle.after_destroy
    assert destroyed.returncode == 0, destroyed.stderr
    assert destroyed.stdout.splitlines()[-1] == "==> chalice-cart-dev is gone"
    assert gone.stack is None
    assert gone.table is None and gone.functions == {} and gone.mappings == []
    assert gone.queues == {} and gone.log_groups == {}
    assert gone.alarms == {} and gone.topics == {} and gone.dashboards == []
    # API Gateway's logging role serves every API of the account: it stays.
    assert list(gone.statements) == [acct.API_LOGS_ROLE]
    assert gone.api_logging_role and gone.api_logging_role.endswith(acct.API_LOGS_ROLE)
    assert gone.secret is None and CODE_BUCKET not in gone.buckets
    assert list(gone.apis) == [STACK], MOTO_GAPS["rest_api_delete"]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with _moto_server() as url:
        yield url


@pytest.fixture
def stand_in(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> acct.Account:
    """An empty account whose every endpoint is the moto server, as `make deploy` sees it."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return acct.connect()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"AWS_DEFAULT_REGION": REGION}, acct.NO_CREDENTIALS),
        ({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, acct.NO_REGION),
    ],
)
def test_deploy_without_credentials_or_region_says_what_is_missing_in_one_line(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        **extra,
    }
    result = subprocess.run(  # nosec B603
        [sys.executable, "-m", "deploy", "deploy", "--stage", "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["deploy dev: error: " + message]


def test_deploy_whose_stack_completes_seeds_the_catalog_and_prints_the_shop_url(
    dev: Built, stand_in: acct.Account
) -> None:
    """Stack events as AWS reports them (moto does not), with CloudFormation stubbed.

    CloudFormation's endpoint is AWS's here, so the deploy takes the AWS path:
    the expanded template as it is, the API as its OpenAPI Body.
    """
    dynamodb = stand_in.client("dynamodb")
    table.create_table(dynamodb, "chalice-cart-dev-CartTable-ABC")
    cfn = boto3.client(
        "cloudformation",
        region_name=REGION,
        endpoint_url=f"https://cloudformation.{REGION}.amazonaws.com",
    )
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/chalice-cart-dev/1"
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/api/"
    outputs = [
        {"OutputKey": "EndpointURL", "OutputValue": url},
        {"OutputKey": "TableName", "OutputValue": "chalice-cart-dev-CartTable-ABC"},
        {"OutputKey": "DeadLetterQueueUrl", "OutputValue": "https://sqs/dlq"},
    ]
    now = datetime.now(UTC)

    def event(n: int, logical: str, kind: str, status: str) -> dict[str, Any]:
        return {
            "EventId": f"e{n}",
            "StackId": stack_id,
            "StackName": "chalice-cart-dev",
            "LogicalResourceId": logical,
            "ResourceType": kind,
            "ResourceStatus": status,
            "Timestamp": now,
        }

    def stack(status: str, with_outputs: bool = False) -> dict[str, Any]:
        found = {
            "StackName": "chalice-cart-dev",
            "StackId": stack_id,
            "StackStatus": status,
            "CreationTime": now,
        }
        if with_outputs:
            found["Outputs"] = outputs
        return {"Stacks": [found]}

    with Stubber(cfn) as stub:
        # Once for the alarm e-mail a stack may have, once to create or update.
        for _ in range(2):
            stub.add_client_error(
                "describe_stacks",
                "ValidationError",
                "Stack with id chalice-cart-dev does not exist",
            )
        stub.add_response(
            "create_change_set",
            {"Id": "cs-1", "StackId": stack_id},
            {
                "StackName": "chalice-cart-dev",
                "ChangeSetName": ANY,
                "ChangeSetType": "CREATE",
                "Capabilities": ["CAPABILITY_IAM"],
                "Parameters": [
                    {
                        "ParameterKey": "CookieSecretParameter",
                        "ParameterValue": "/chalice-cart/dev/cookie-secret",
                    },
                    {"ParameterKey": "AlarmEmail", "ParameterValue": ""},
                ],
                "Tags": ANY,
                # Over CloudFormation's 51,200-byte body limit (every GET route
                # answers HEAD too): uploaded beside the package, passed by URL.
                "TemplateURL": ANY,
            },
        )
        stub.add_response(
            "describe_change_set",
            {
                "Status": "CREATE_COMPLETE",
                "Changes": [
                    {
                        "Type": "Resource",
                        "ResourceChange": {
                            "Action": "Add",
                            "LogicalResourceId": "CartTable",
                            "ResourceType": "AWS::DynamoDB::Table",
                        },
                    }
                ],
            },
        )
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(0, "chalice-cart-dev", "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS")
                ]
            },
        )
        stub.add_response("execute_change_set", {}, {"ChangeSetName": "cs-1"})
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(2, "CartTable", "AWS::DynamoDB::Table", "CREATE_COMPLETE"),
                    event(1, "CartTable", "AWS::DynamoDB::Table", "CREATE_IN_PROGRESS"),
                    event(
                        0, "chalice-cart-dev", "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS"
                    ),
                ]
            },
        )
        stub.add_response("describe_stacks", stack("CREATE_IN_PROGRESS"))
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(3, "chalice-cart-dev", "AWS::CloudFormation::Stack", "CREATE_COMPLETE"),
                    event(2, "CartTable", "AWS::DynamoDB::Table", "CREATE_COMPLETE"),
                ]
            },
        )
        stub.add_response("describe_stacks", stack("CREATE_COMPLETE"))
        stub.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(3, "chalice-cart-dev", "AWS::CloudFormation::Stack", "CREATE_COMPLETE")
                ]
            },
        )
        stub.add_response("describe_stacks", stack("CREATE_COMPLETE", with_outputs=True))
        stand_in.clients["cloudformation"] = cfn
        lines: list[str] = []
        result = cli.deploy(
            dev.stage,
            stand_in,
            out=lines.append,
            sleep=lambda _: None,
            builder=lambda stage, region: dev.build,
            scan=False,  # test_checkov_finds_nothing_... reads this same template
        )
        stub.assert_no_pending_responses()
    assert result["EndpointURL"] == url
    assert f"Shop:              {url}" in lines
    assert not any("stand-in" in line for line in lines)
    sent = json.loads(dev.build.template_path.with_name("deploy-template.json").read_text())
    assert "Transform" not in sent
    body = sent["Resources"]["RestAPI"]["Properties"]["Body"]
    assert body["paths"] and "THROTTLED" in body["x-amazon-apigateway-gateway-responses"]
    assert not any(r["Type"] == "AWS::ApiGateway::Method" for r in sent["Resources"].values())
    progress = [line.split()[1:] for line in lines if re.match(r"  \d\d:\d\d:\d\d  ", line)]
    assert progress == [
        ["CREATE_IN_PROGRESS", "AWS::DynamoDB::Table", "CartTable"],
        ["CREATE_COMPLETE", "AWS::DynamoDB::Table", "CartTable"],
        ["CREATE_COMPLETE", "AWS::CloudFormation::Stack", "chalice-cart-dev"],
    ]
    items = dynamodb.query(
        TableName="chalice-cart-dev-CartTable-ABC",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": table.CATALOG_PK}},
    )["Items"]
    assert sorted(i["productId"]["S"] for i in items) == sorted(p.id for p in SEED)


# -- an HTTP API stage against the moto stand-in -----------------------------------

PROD_STACK = "chalice-cart-prod"


@dataclass(frozen=True)
class HttpLifecycle:
    deployed: subprocess.CompletedProcess[str]
    sent: dict[str, Any]  # the template the stand-in's stack holds
    resources: dict[str, str]
    functions: list[str]
    http_apis: list[dict[str, Any]]
    destroyed: subprocess.CompletedProcess[str]
    left: list[str]  # stacks after the destroy


@pytest.fixture(scope="module")
def http_lifecycle(prod: Built, tmp_path_factory: pytest.TempPathFactory) -> HttpLifecycle:
    """`make deploy STAGE=prod` (its front door an HTTP API), then destroy, on moto."""
    home = tmp_path_factory.mktemp("home-http")
    with _moto_server() as moto_url:
        env = _stand_in_env(moto_url, home)
        deployed = _run("deploy", env, "prod")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        cfn = session.client("cloudformation", endpoint_url=moto_url)
        sent = dict(cfn.get_template(StackName=PROD_STACK)["TemplateBody"])
        resources = {r["LogicalResourceId"]: r["ResourceType"] for r in cfn.list_stack_resources(
            StackName=PROD_STACK)["StackResourceSummaries"]}
        functions = [f["FunctionName"] for f in session.client(
            "lambda", endpoint_url=moto_url).list_functions()["Functions"]]
        apis = session.client("apigatewayv2", endpoint_url=moto_url).get_apis()["Items"]
        destroyed = _run("destroy", env, "prod")
        left = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]
                if s["StackStatus"] != "DELETE_COMPLETE"]
    return HttpLifecycle(deployed, sent, resources, functions, apis, destroyed, left)


def test_an_http_api_stage_deploys_to_the_moto_stand_in_and_is_destroyed(
    http_lifecycle: HttpLifecycle, prod: Built
) -> None:
    deployed = http_lifecycle.deployed
    assert "==> front door: an HTTP API" in deployed.stdout
    assert "explicit API Gateway resources" not in deployed.stdout  # routes are resources
    # The stack got the HTTP API as the template tests see it ...
    sent = http_lifecycle.sent["Resources"]
    routes = [r for r in sent.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert len(routes) == len(_resources(prod.expanded, "AWS::ApiGatewayV2::Route")) > 20
    assert "RestAPI" not in sent
    # ... and moto built everything but the API.
    assert http_lifecycle.resources["CartTable"] == "AWS::DynamoDB::Table"
    assert set(http_lifecycle.functions) == {f"{PROD_STACK}-api_handler",
                                             f"{PROD_STACK}-process_stream"}
    assert "HttpApi" not in http_lifecycle.resources, MOTO_GAPS["http_api"]
    assert http_lifecycle.http_apis == [], MOTO_GAPS["http_api"]
    assert re.search(r"^Shop: +none: .*AWS::ApiGatewayV2", deployed.stdout, re.M), deployed.stdout
    assert http_lifecycle.destroyed.returncode == 0, http_lifecycle.destroyed.stderr
    assert http_lifecycle.left == []
