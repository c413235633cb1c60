"""The deploy, verified offline: the real package and template, cfn-lint, IAM, moto.

The package and both stages' templates are built once for this module.
Against moto the deploy runs its own AWS calls for real until
ExecuteChangeSet, which moto cannot run (no AWS::Serverless transform);
the test named for that says so. What happens after it (events, outputs,
seeding, the URL) runs against a Stubber-driven CloudFormation.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import subprocess  # nosec B404
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.stub import ANY, Stubber
from moto.server import ThreadedMotoServer
from samtranslator.translator.transform import transform

from chalicelib import runtime, table
from chalicelib.catalog import SEED
from deploy import account as acct
from deploy import cli
from deploy import template as tpl
from deploy.build import EXCLUDED_PACKAGES, MAX_ZIP_BYTES, Build, asset_files, build
from deploy.settings import ROOT, DeployError, Stage, load_stage
from deploy.stack import NOT_A_STACK_RESPONSE
from tests.factories import add_body, cookie_from
from tests.functional.conftest import Stream, request

# moto warns for each AWS::Serverless::* resource it skips: expected here.
# (No "::" in the filter: pytest would read it as a field separator.)
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS")

REGION = "us-east-1"
ACCOUNT = "123456789012"
CODE_BUCKET = "chalice-cart-artifacts-123456789012-us-east-1"
FOLLOWUPS = {"CartSummary", "ProductPopularity", "OrderConfirmation"}
# What each function's code calls, as IAM actions (repository.py, followups.py).
EXPECTED_TABLE_ACTIONS = {
    "APIHandler": {"GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
    "CartSummary": {"Query", "UpdateItem", "PutItem"},
    "ProductPopularity": {"UpdateItem"},
    "OrderConfirmation": {"UpdateItem"},
}
STREAM_ACTIONS = {"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"}
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


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _build(stage_name: str, work: Path) -> Built:
    stage = load_stage(stage_name)
    built = build(stage, REGION, build_root=ROOT / "build" / "test")
    template = tpl.with_code(built.template, CODE_BUCKET, f"{stage.name}/code.zip")
    path = work / f"{stage.name}.json"
    path.write_text(json.dumps(template, indent=1))
    expanded = transform(copy.deepcopy(template), {}, _NoManagedPolicies())
    (work / f"{stage.name}-expanded.json").write_text(json.dumps(expanded, indent=1))
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
    ]
    result = subprocess.run(  # nosec B603
        [str(Path(sys.executable).parent / "cfn-lint"), *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
    assert (kept["DeletionPolicy"], kept["UpdateReplacePolicy"]) == ("Retain", "Retain")
    dropped = dev.expanded["Resources"]["CartTable"]
    assert (dropped["DeletionPolicy"], dropped["UpdateReplacePolicy"]) == ("Delete", "Delete")


def test_functions_read_table_and_stream_from_the_table_in_the_same_stack(dev: Built) -> None:
    functions = _resources(dev.expanded, "AWS::Lambda::Function")
    assert set(functions) == FOLLOWUPS | {"APIHandler"}
    for function in functions.values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == {"Ref": "CartTable"}
        assert variables["TABLE_STREAM_ARN"] == {"Fn::GetAtt": ["CartTable", "StreamArn"]}
        assert function["Properties"]["Runtime"] == "python3.11"
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
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Resource"] != "*"
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
    dev: Built, client: Any, stream: Stream
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
    used = {"APIHandler": actions()}
    records = stream.read()
    for function, name in (
        ("CartSummary", "cart_summary"),
        ("ProductPopularity", "product_popularity"),
        ("OrderConfirmation", "order_confirmation"),
    ):
        stream.deliver(records, functions=(name,))
        used[function] = actions()
    for function, made in used.items():
        assert made, f"{function} made no call: the scenario does not reach it"
        allowed = set(_allowed(dev.expanded, function, "dynamodb"))
        assert made <= allowed, (function, made - allowed)


# -- the package -------------------------------------------------------------------


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


# -- the deploy's AWS calls against moto --------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def stand_in(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> acct.Account:
    """An empty account whose every endpoint is the moto server, as `make deploy` sees it."""
    requests.post(f"{moto_url}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # moto's HTML 500 is not worth a retry
    return acct.connect()


@dataclass(frozen=True)
class MotoDeploy:
    lines: list[str]
    error: DeployError


@pytest.fixture
def deployed_to_moto(dev: Built, stand_in: acct.Account) -> MotoDeploy:
    lines: list[str] = []
    with pytest.raises(DeployError) as failure:
        cli.deploy(
            dev.stage,
            stand_in,
            out=lines.append,
            sleep=lambda _: None,
            builder=lambda stage, region: dev.build,
        )
    return MotoDeploy(lines, failure.value)


def test_deploy_against_moto_sends_everything_until_moto_cannot_run_the_sam_transform(
    dev: Built, stand_in: acct.Account, deployed_to_moto: MotoDeploy
) -> None:
    # moto: CreateChangeSet and DescribeChangeSet work; ExecuteChangeSet answers
    # an HTML 500 because AWS::Serverless::* resources are not emulated.
    assert str(deployed_to_moto.error) == NOT_A_STACK_RESPONSE.format(operation="ExecuteChangeSet")
    secret = stand_in.client("ssm").get_parameter(
        Name="/chalice-cart/dev/cookie-secret", WithDecryption=True
    )["Parameter"]
    assert secret["Type"] == "SecureString" and len(secret["Value"]) >= 64
    s3 = stand_in.client("s3")
    uploads = s3.list_objects_v2(Bucket=CODE_BUCKET, Prefix="dev/")["Contents"]
    assert [o["Size"] for o in uploads] == [dev.build.zip_path.stat().st_size]
    blocked = s3.get_public_access_block(Bucket=CODE_BUCKET)["PublicAccessBlockConfiguration"]
    assert all(blocked.values())
    cfn = stand_in.client("cloudformation")
    [summary] = cfn.list_change_sets(StackName="chalice-cart-dev")["Summaries"]
    change_set = cfn.describe_change_set(ChangeSetName=summary["ChangeSetId"])
    # moto does not echo Capabilities; the stubbed deploy below checks them.
    assert change_set["Parameters"] == [
        {
            "ParameterKey": "CookieSecretParameter",
            "ParameterValue": "/chalice-cart/dev/cookie-secret",
        }
    ]
    added = {c["ResourceChange"]["LogicalResourceId"] for c in change_set["Changes"]}
    assert {"CartTable", "FollowupDeadLetterQueue", "APIHandler", *FOLLOWUPS} <= added
    body = cfn.get_template(StackName="chalice-cart-dev", ChangeSetName=summary["ChangeSetId"])
    assert secret["Value"] not in json.dumps(body["TemplateBody"])
    lines = deployed_to_moto.lines
    assert any("Add     AWS::DynamoDB::Table" in line for line in lines)
    assert lines[-1].startswith("==> executing deploy-")


def test_deploying_again_keeps_the_cookie_secret(
    dev: Built, stand_in: acct.Account, deployed_to_moto: MotoDeploy
) -> None:
    ssm = stand_in.client("ssm")
    before = ssm.get_parameter(Name=dev.stage.secret_parameter, WithDecryption=True)
    assert acct.ensure_cookie_secret(stand_in, dev.stage) is False
    after = ssm.get_parameter(Name=dev.stage.secret_parameter, WithDecryption=True)
    assert after["Parameter"]["Value"] == before["Parameter"]["Value"]


def test_destroy_against_moto_removes_the_stack_the_secret_and_the_uploads(
    dev: Built, stand_in: acct.Account, deployed_to_moto: MotoDeploy
) -> None:
    lines: list[str] = []
    cli.destroy(dev.stage, stand_in, out=lines.append, sleep=lambda _: None)
    stacks = stand_in.client("cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "chalice-cart-dev"} <= {
        "DELETE_COMPLETE"
    }
    names = [p["Name"] for p in stand_in.client("ssm").describe_parameters()["Parameters"]]
    assert dev.stage.secret_parameter not in names
    buckets = [b["Name"] for b in stand_in.client("s3").list_buckets()["Buckets"]]
    assert CODE_BUCKET not in buckets
    assert lines[-1] == "==> chalice-cart-dev is gone"


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
    """Everything moto could not do, with CloudFormation's answers stubbed."""
    dynamodb = stand_in.client("dynamodb")
    table.create_table(dynamodb, "chalice-cart-dev-CartTable-ABC")
    cfn = boto3.client("cloudformation", region_name=REGION)
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
        stub.add_client_error(
            "describe_stacks", "ValidationError", "Stack with id chalice-cart-dev does not exist"
        )
        stub.add_response(
            "create_change_set",
            {"Id": "cs-1", "StackId": stack_id},
            {
                "StackName": "chalice-cart-dev",
                "ChangeSetName": ANY,
                "ChangeSetType": "CREATE",
                "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
                "Parameters": [
                    {
                        "ParameterKey": "CookieSecretParameter",
                        "ParameterValue": "/chalice-cart/dev/cookie-secret",
                    }
                ],
                "Tags": ANY,
                "TemplateBody": ANY,
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
        )
        stub.assert_no_pending_responses()
    assert result["EndpointURL"] == url
    assert f"Shop:              {url}" in lines
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
