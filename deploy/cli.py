"""`python -m deploy {package,deploy,destroy,env} --stage NAME` (what `make` runs).

package  build build/<stage>/out/{deployment.zip,sam.json,expanded.json}; no AWS
         calls (expanded.json: the SAM transform run here, what checkov reads)
deploy   build, upload, expand the SAM transform, create or update the stack,
         seed the products the catalog lacks (--reseed: load catalog/products.csv
         as `make catalog` does),
         print the URL (build/<stage>/out/deploy-template.json is what
         CloudFormation got), then run the smoke suite against that URL
         (--no-smoke skips it; exit 1 when it fails); --alarm-email subscribes
         an address to the alarm topic
destroy  delete the stack and what the deploy keeps beside it
env      print exports that point `chalice local` at the deployed table
redrive  run the dead-letter queue's failed stream batches through the follow-ups
         again; delete what succeeds, report the rest (exit 1 if any is left)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.parsers import ResponseParserError

from chalicelib.repository import DynamoCartRepository
from deploy import account as acct
from deploy import catalog as catalog_file
from deploy import emulator
from deploy import operations as ops
from deploy import redrive as rd
from deploy import template as tpl
from deploy.build import BUILD_ROOT, Build, build, checkov
from deploy.settings import FRONT_DOORS, HTTP_API, ROOT, DeployError, Stage, load_stage, say
from deploy.stack import CloudFormationStack

Out = Callable[[str], None]
PACKAGE_REGION = "us-east-1"  # `package` alone needs a region only to satisfy Chalice
# moto's CloudFormation skips every AWS::ApiGatewayV2 resource (MiniStack's builds them).
NO_HTTP_API = "its CloudFormation skips AWS::ApiGatewayV2 resources"


def _relative(build_result: Build) -> str:
    try:
        return str(build_result.zip_path.relative_to(ROOT))
    except ValueError:
        return str(build_result.zip_path)


def _template_argument(
    account: acct.Account, bucket: str, stage: Stage, built: Build, template: dict[str, Any]
) -> tuple[dict[str, str], str | None]:
    body = json.dumps(template, separators=(",", ":"))
    # What CloudFormation receives, kept beside the package for a look after the fact.
    path = built.template_path.with_name("deploy-template.json")
    path.write_text(json.dumps(template, indent=1))
    if len(body.encode()) <= acct.MAX_TEMPLATE_BODY:
        return {"TemplateBody": body}, None
    key = acct.upload(account, bucket, stage.name, path, ".json")
    return {"TemplateURL": acct.template_url(account, bucket, key)}, key


def _stack_parameters(
    stage: Stage, stack: CloudFormationStack, alarm_email: str | None
) -> dict[str, str]:
    """The stack's parameters; with no e-mail given, the one the stack has keeps."""
    if alarm_email is None:
        current = stack.describe() or {}
        previous = {p["ParameterKey"]: p["ParameterValue"] for p in current.get("Parameters", [])}
        alarm_email = previous.get(ops.ALARM_EMAIL_PARAMETER, "")
    return {tpl.SECRET_PARAMETER: stage.secret_parameter, ops.ALARM_EMAIL_PARAMETER: alarm_email}


def seed(account: acct.Account, table_name: str, reseed: bool, out: Out = say) -> list[str]:
    """The seed catalog's missing products, or with `reseed` the whole file, written.

    The seed is catalog/products.csv; `--reseed` loads it as `make catalog`
    does (every product in the file as it says, stock included).
    """
    repository = DynamoCartRepository(account.client("dynamodb"), table_name)
    products = catalog_file.seed()
    if reseed:
        out(f"==> re-seeding {table_name} from {catalog_file.SEED_FILE.name} (--reseed)")
        done = catalog_file.apply(repository.catalog, products, lambda line: out(f"    {line}"))
        return [p.id for p in done.added] + [new.id for _, new in done.changed + done.withdrew]
    written = repository.seed_products(products)
    kept = len(products) - len(written)
    out(
        f"==> seeded {len(written)} missing products into {table_name}; "
        f"kept {kept} already there (--reseed rewrites them)"
    )
    return written


def deploy(
    stage: Stage,
    account: acct.Account,
    out: Out = say,
    sleep: Callable[[float], None] = time.sleep,
    builder: Callable[[Stage, str], Build] = build,
    alarm_email: str | None = None,
    reseed: bool = False,
) -> dict[str, str]:
    """Build, upload, create or update the stack, seed the catalog; the stack outputs."""
    endpoint = emulator.check_endpoint(stage, account.stand_in) if stage.emulator else None
    out(
        f"==> stage {stage.name}: stack {stage.stack_name} in account "
        f"{account.account_id}, {account.region}"
        + (f" on the {stage.emulator} emulator at {endpoint}" if endpoint else "")
    )
    built = builder(stage, account.region)
    out(f"==> built {_relative(built)} ({built.zip_path.stat().st_size:,} bytes) and its template")
    created = acct.ensure_cookie_secret(account, stage)
    out(
        f"==> cookie-signing key: {'created' if created else 'kept'} "
        f"SSM SecureString {stage.secret_parameter}"
    )
    if stage.api == HTTP_API:
        out("==> front door: an HTTP API (its access logs need no account logging role)")
    else:
        logging_role = acct.ensure_api_logging_role(account, sleep)
        out(
            f"==> API Gateway logs through {logging_role} (set now: the account had no role)"
            if logging_role
            else "==> API Gateway logs through the role the account already has (kept)"
        )
    bucket = acct.ensure_bucket(account, stage)
    code_key = acct.upload(account, bucket, stage.name, built.zip_path, ".zip")
    out(f"==> uploaded the package to s3://{bucket}/{code_key}")
    stack = CloudFormationStack(account.client("cloudformation"), stage.stack_name, out, sleep)
    parameters = _stack_parameters(stage, stack, alarm_email)
    with_code = tpl.with_code(built.template, bucket, code_key)
    expanded = tpl.expand(with_code, parameters, account.region)
    out(
        f"==> expanded the AWS::Serverless transform here (aws-sam-translator "
        f"{tpl.sam_translator_version()}): {len(expanded['Resources'])} resources"
    )
    if endpoint:
        left_out = emulator.left_out(expanded)
        expanded = emulator.adapt(expanded, endpoint)
        out(
            f"==> emulated stage: left out {', '.join(left_out)}; the API fetches the "
            f"pool's keys from {endpoint}; a failing stream batch is given up after "
            f"{emulator.EMULATED_RECORD_AGE_SECONDS} s (deploy/emulator.py EMULATOR_GAPS)"
        )
    # An HTTP API's routes are resources of their own already (deploy/httpapi.py).
    elif account.stand_in and stage.api != HTTP_API:
        expanded = tpl.explicit_routes(expanded)
        out(
            f"==> {account.stand_in} is a stand-in, not AWS: the API's routes go in as "
            "explicit API Gateway resources (moto ignores a RestApi's OpenAPI Body)"
        )
    template, template_key = _template_argument(account, bucket, stage, built, expanded)
    stack.deploy(
        template,
        parameters=parameters,
        tags={"app": stage.app_name, "stage": stage.name},
        protected=frozenset({tpl.TABLE}) if stage.production else frozenset(),
    )
    outputs = stack.outputs()
    seed(account, outputs["TableName"], reseed, out)
    # Keep only what the stack now points at (a rollback needs nothing older).
    acct.delete_objects(account, bucket, stage.name, keep={code_key, template_key or code_key})
    if endpoint:
        # The smoke suite (Python) reaches the path form; a browser the shop's host.
        outputs["ShopURL"], outputs["EndpointURL"] = emulator.urls(endpoint, outputs, stage)
    out("")
    if "EndpointURL" not in outputs:  # a stand-in that cannot build the API
        out(f"Shop:              none: {account.stand_in} made no API ({NO_HTTP_API})")
    else:
        out(f"Shop:              {outputs.get('ShopURL', outputs['EndpointURL'])}")
    if endpoint:
        out(f"API:               {outputs['EndpointURL']}")
        out("                   (the same stage for clients that do not resolve *.localhost: "
            "make smoke, Python)")
    if account.stand_in and not endpoint:
        out("                   (what the stand-in's stack reports: nothing serves it)")
    out(f"Table:             {outputs['TableName']}")
    out(f"Dead-letter queue: {outputs['DeadLetterQueueUrl']}")
    if "DashboardURL" in outputs:
        out(f"Dashboard:         {outputs['DashboardURL']}")
    if "AlarmTopicArn" in outputs:
        email = parameters[ops.ALARM_EMAIL_PARAMETER]
        out(
            f"Alarms:            {outputs['AlarmTopicArn']}"
            + (f" (e-mail to {email}: confirm the subscription)" if email else "")
        )
    return outputs


def destroy(
    stage: Stage, account: acct.Account, out: Out = say, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Delete the stack and what the deploy keeps outside it (not a production table)."""
    stack = CloudFormationStack(account.client("cloudformation"), stage.stack_name, out, sleep)
    table = stack.outputs().get("TableName")
    if not stack.destroy():
        out(f"==> no stack {stage.stack_name} in {account.region}; cleaning up around it")
    if stage.production:
        out(
            f"==> kept (production stage): table {table or '(none)'} and "
            f"SSM parameter {stage.secret_parameter}; delete them by hand if you mean it"
        )
    elif acct.delete_cookie_secret(account, stage):
        out(f"==> deleted SSM parameter {stage.secret_parameter}")
    bucket = acct.bucket_name(account, stage)
    removed = acct.delete_objects(account, bucket, stage.name)
    if removed:
        out(f"==> deleted {removed} uploaded package(s) from s3://{bucket}/{stage.name}/")
    if acct.delete_bucket_if_empty(account, bucket):
        out(f"==> deleted the empty code bucket {bucket}")
    out(f"==> {stage.stack_name} is gone")


def local_env(stage: Stage, account: acct.Account, out: Out = say) -> None:
    """Shell exports that point `chalice local --stage STAGE` at the deployed table."""
    stack = CloudFormationStack(account.client("cloudformation"), stage.stack_name, out)
    outputs = stack.outputs()
    if "TableName" not in outputs:
        raise DeployError(f"no deployed stack {stage.stack_name} in {account.region}")
    out(f"export AWS_DEFAULT_REGION={shlex.quote(account.region)}")
    out(f"export TABLE_NAME={shlex.quote(outputs['TableName'])}")
    out(f"export CART_COOKIE_SECRET_PARAM={shlex.quote(outputs['CookieSecretParameter'])}")


def smoke_deployed(outputs: dict[str, str], account: acct.Account, out: Out = say,
                   run: Callable[..., int] | None = None, served: bool = False) -> bool:
    """The smoke suite against the URL the deploy printed; True when it passed.

    `served`: the stand-in serves the stack (the emulated stage), so the suite runs.
    """
    url = outputs.get("EndpointURL", "")
    if account.stand_in and not served:
        out("==> smoke suite skipped: the stand-in's stack serves no HTTP")
        return True
    if run is None:
        from smoke import journey

        run = journey.run
    out(f"==> smoke suite against {url} (SMOKE=0 skips it)")
    if run(url, out=out) == 0:
        return True
    out(f"==> deployed, but the smoke suite failed: rerun it with make smoke BASE_URL={url}")
    return False


def redrive(stage: Stage, account: acct.Account, out: Out = say) -> bool:
    """The stage's dead-letter queue run again; True when nothing is left in it."""
    stack = CloudFormationStack(account.client("cloudformation"), stage.stack_name, out)
    outputs = stack.outputs()
    if "DeadLetterQueueUrl" not in outputs or "TableName" not in outputs:
        raise DeployError(f"no deployed stack {stage.stack_name} in {account.region}")
    queue, table_name = outputs["DeadLetterQueueUrl"], outputs["TableName"]
    out(f"==> redriving {queue} into {table_name}")
    repo = DynamoCartRepository(account.client("dynamodb"), table_name)
    outcomes = rd.redrive(account.client("sqs"), account.client("dynamodbstreams"), repo,
                          queue, out)
    out(f"==> {rd.summary(outcomes)}")
    return all(o.status == rd.RECOVERED for o in outcomes)


def package(
    stage: Stage,
    out: Out = say,
    builder: Callable[[Stage, str], Build] = build,
    scan: bool = True,
) -> Build:
    """Build only: no AWS calls, no credentials needed. `scan`: checkov the result."""
    import boto3

    region = boto3.session.Session(region_name=os.environ.get("AWS_REGION")).region_name
    region = region or PACKAGE_REGION
    built = builder(stage, region)
    out(f"{_relative(built)}  ({built.zip_path.stat().st_size:,} bytes)")
    out(f"{built.template_path}")
    # The transform as the deploy runs it; the code's place is the deploy's to say.
    placeholder = tpl.with_code(built.template, "code-bucket-of-the-deploy", "package.zip")
    parameters = {tpl.SECRET_PARAMETER: stage.secret_parameter}
    expanded_path = built.template_path.with_name("expanded.json")
    expanded_path.write_text(json.dumps(tpl.expand(placeholder, parameters, region), indent=1))
    out(f"{expanded_path}")
    if scan:
        result = checkov([expanded_path])
        out(f"checkov: {result.summary()}")
        if result.failed:
            raise DeployError("checkov failed: " + "; ".join(result.failed))
    return built


def _explain(exc: BaseException) -> str:
    """One line for the user instead of a traceback."""
    if isinstance(exc, DeployError):
        return str(exc)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return acct.NO_CREDENTIALS
    if isinstance(exc, NoRegionError):
        return acct.NO_REGION
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return (
            f"AWS refused {exc.operation_name}: {error.get('Code', '?')}: "
            f"{error.get('Message', '')}"
        )
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach {exc.kwargs.get('endpoint_url')}: check the network, "
            "AWS_REGION and AWS_ENDPOINT_URL"
        )
    if isinstance(exc, ResponseParserError):
        return "an AWS endpoint answered with something that is not an AWS response"
    return f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("package", "deploy", "destroy", "env", "redrive"))
    parser.add_argument("--stage", default="dev", help="a stage in .chalice/config.json")
    parser.add_argument(
        "--alarm-email",
        default=None,
        help="deploy: subscribe this address to the alarm topic (default: keep the "
        "stack's; an empty string removes it)",
    )
    parser.add_argument(
        "--reseed",
        action="store_true",
        help="deploy: load catalog/products.csv as `make catalog` does (default: "
        "only add the products the catalog lacks)",
    )
    parser.add_argument(
        "--no-checkov", action="store_true", help="package: skip the checkov scan"
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD_ROOT,
        help="where the package is built, under <dir>/<stage>/ (default: build/)",
    )
    parser.add_argument("--api", choices=FRONT_DOORS, default=None,
                        help="the API's front door: API Gateway REST or HTTP API "
                        "(default: the stage's `api`; docs/OPERATIONS.md, Front door)")
    parser.add_argument("--no-smoke", dest="smoke", action="store_false",
                        help="deploy: do not run the smoke suite afterwards")
    args = parser.parse_args(argv)
    builder = functools.partial(build, build_root=args.build_dir.resolve())
    try:
        stage = load_stage(args.stage)
        if args.api and args.api != stage.api:
            stage = dataclasses.replace(stage, api=args.api)
        if stage.emulator:
            emulator.point_at_emulator(os.environ)
        if args.command == "package":
            package(stage, builder=builder, scan=not args.no_checkov)
        elif args.command == "deploy":
            account = acct.connect()
            outputs = deploy(
                stage,
                account,
                builder=builder,
                alarm_email=args.alarm_email,
                reseed=args.reseed,
            )
            if args.smoke and not smoke_deployed(outputs, account,
                                                 served=stage.emulator is not None):
                return 1
        elif args.command == "env":
            local_env(stage, acct.connect())
        elif args.command == "redrive":
            if not redrive(stage, acct.connect()):
                return 1
        else:
            destroy(stage, acct.connect())
    except KeyboardInterrupt:
        print(
            "\ninterrupted: CloudFormation carries on with what it started; "
            "run the command again to see where it stands",
            file=sys.stderr,
        )
        return 130
    except (DeployError, BotoCoreError, ClientError, ResponseParserError) as exc:
        print(f"{args.command} {args.stage}: error: {_explain(exc)}", file=sys.stderr)
        return 1
    return 0
