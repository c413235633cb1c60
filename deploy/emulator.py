"""The `emulated` stage: the deployed package running on MiniStack, on this machine.

`make emulate` (devstack/emulate.py) starts MiniStack, a local AWS emulator,
and runs `python -m deploy deploy --stage emulated` against it: the same
build, transform, stack and seed as `make deploy`. MiniStack runs the functions
(as subprocesses of its own Python), the REST API, the stream mapping, Cognito
and the rest. The stage is dev's, built for this machine's architecture
(deploy.settings), with the few changes below, each for a gap of the emulator
named in `EMULATOR_GAPS` and made here only: dev and prod keep everything.

What MiniStack does differently without a change here (it ignores a stream
function's partial-batch response, for one) is in `EMULATOR_GAPS` too, and
docs/OPERATIONS.md ("The emulated stage") says what each means for a user.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from deploy import template as tpl
from deploy.settings import DeployError, Stage

MINISTACK = "ministack"
MINISTACK_VERSION = "1.5.33"  # requirements-ministack.txt pins the same
# Where MiniStack serves an API's stage: by the API's host name under localhost
# (MINISTACK_HOST), as AWS does under amazonaws.com, and under a path of its own.
EXECUTE_API_HOST = "http://{api_id}.execute-api.localhost:{port}/{stage}/"
EXECUTE_API_PATH = "/_aws/execute-api/{api_id}/{stage}/"
# `make emulate`'s port unless MINISTACK_PORT says otherwise (MiniStack's own default).
DEFAULT_PORT = 4566
REGION = "us-east-1"
# MiniStack's root credentials (it checks signatures under AUTH=true); never AWS's.
ACCESS_KEY = "test"
SECRET_KEY = "test"  # nosec B105: the local emulator's own key
# The least MaximumRecordAgeInSeconds AWS accepts; see EMULATOR_GAPS["retries"].
EMULATED_RECORD_AGE_SECONDS = 60

# What MiniStack 1.5.33 cannot do as AWS does, and what the emulated stage does about it.
EMULATOR_GAPS = {
    # -- changed for the emulated stage (adapt) --
    "metric_math": "its CloudFormation refuses an alarm built from metric math "
    "('Properties.Metrics (metric math) is not supported') and rolls the stack back: the "
    "two table alarms that sum ThrottledRequests and SystemErrors over every operation are "
    "left out (its DynamoDB never throttles and never fails a request on its own, so they "
    "would watch nothing)",
    "jwks": "the API fetches the user pool's public keys with urllib from "
    "https://cognito-idp.<region>.amazonaws.com, which the AWS_ENDPOINT_URL MiniStack gives "
    "each function does not redirect (only AWS SDKs read it): the API function gets "
    "COGNITO_ENDPOINT = the emulator, as the local stack's does",
    "retries": "its stream mappings apply neither MaximumRetryAttempts nor "
    "BisectBatchOnFunctionError: a failing batch is retried about once a second until its "
    "oldest record is MaximumRecordAgeInSeconds old, holding up the stream behind it. "
    f"dev's {tpl.MAX_RECORD_AGE_SECONDS} s would hold it for an hour where AWS gives up "
    f"after {tpl.MAX_RETRY_ATTEMPTS} retries: the emulated stage gives up after "
    f"{EMULATED_RECORD_AGE_SECONDS} s (the least AWS accepts)",
    "http_payload": "its HTTP API sends every Lambda integration a payload format 2.0 "
    "event and reads the answer as 2.0, whatever PayloadFormatVersion says; Chalice's "
    "handler needs 1.0 (an HTTP API stage, `make emulate API=http`): MiniStack is started "
    "through devstack/ministack_launch.py, which gives a 1.0 integration the event and "
    "reads its answer as AWS documents them (devstack/http_api_v1.py)",
    "architecture": "the functions run as this machine's processes, not on Lambda arm64: "
    "the package is built for this machine (x86_64 here) so its compiled wheels load",
    # -- left as they are (what a test or a user sees differ) --
    "partial_batch": "its DynamoDB stream mappings ignore ReportBatchItemFailures: a "
    "batch whose function reports failed records counts as done, so a record the "
    "follow-ups could not process is not retried and never reaches the dead-letter queue "
    "(only a batch whose function fails outright does)",
    "parallelization": "ParallelizationFactor is kept but not applied: one batch at a "
    "time per mapping",
    "url": "the stage is served at http://<api id>.execute-api.localhost:<port>/<stage>/ (the "
    "shop: browsers and curl resolve any *.localhost name to this machine; Python's and "
    "Node's resolvers do not) and at <endpoint>/_aws/execute-api/<api id>/<stage>/ (the API "
    "for any client; the pages' links, /<stage>/..., lead out of that path as they would "
    "out of any path API Gateway does not tell the function about), not at "
    "https://<api id>.execute-api.<region>.amazonaws.com/<stage>/: no TLS, so the cookies "
    "are not Secure",
    "root_method": "its REST API answers a method the root lacks (POST /) 403 "
    "{\"message\": \"Missing Authentication Token\"}, without the stage's gateway response "
    "(AWS: 404 in the error shape); a method another path lacks gets the gateway response",
    "throttling": "the stage's throttling (rate and burst limits) is stored, not applied",
    "log_levels": "a function's LoggingConfig (JSON, SystemLogLevel WARN) is stored and "
    "read back, not applied: the functions run without AWS_LAMBDA_LOG_FORMAT and their log "
    "group still gets a START, END and REPORT line per invocation (the app's own lines are "
    "the same JSON either way)",
    "observability": "no X-Ray traces, no EMF metric extraction, no alarm ever changes "
    "state, and no e-mail leaves the machine",
}


def environment(endpoint: str, base: Mapping[str, str]) -> dict[str, str]:
    """`base` with every AWS setting replaced: all calls go to the emulator, never to AWS."""
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env


def point_at_emulator(env: MutableMapping[str, str]) -> str:
    """Send this process's AWS calls to the emulator; its endpoint.

    AWS_ENDPOINT_URL when set (check_endpoint refuses AWS's own), else the one
    `make emulate` runs: http://127.0.0.1:$MINISTACK_PORT (default 4566).
    """
    endpoint = env.get("AWS_ENDPOINT_URL") or (
        f"http://127.0.0.1:{env.get('MINISTACK_PORT') or DEFAULT_PORT}")
    new = environment(endpoint, env)
    env.clear()
    env.update(new)
    return endpoint


def adapt(template: dict[str, Any], endpoint: str) -> dict[str, Any]:
    """The expanded template as the emulated stage deploys it (EMULATOR_GAPS, changed)."""
    result = copy.deepcopy(template)
    resources = result["Resources"]
    for name in [n for n, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"
                 and "Metrics" in r["Properties"]]:
        del resources[name]  # EMULATOR_GAPS["metric_math"]
    variables = resources[tpl.API_LOGICAL_ID]["Properties"]["Environment"]["Variables"]
    variables["COGNITO_ENDPOINT"] = endpoint.rstrip("/")  # EMULATOR_GAPS["jwks"]
    for resource in resources.values():
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            # EMULATOR_GAPS["retries"]
            resource["Properties"]["MaximumRecordAgeInSeconds"] = EMULATED_RECORD_AGE_SECONDS
    return result


def left_out(template: dict[str, Any]) -> list[str]:
    """The logical ids `adapt` takes out of `template`."""
    return sorted(set(template["Resources"]) - set(adapt(template, "http://x")["Resources"]))


def check_endpoint(stage: Stage, stand_in: str | None) -> str:
    """The emulator's endpoint; DeployError when the stage would go to AWS itself."""
    if not stand_in:
        raise DeployError(
            f"stage {stage.name} runs on the local emulator only ({stage.emulator}): "
            "start it with `make emulate`, or set AWS_ENDPOINT_URL to a running one")
    return stand_in.rstrip("/")


def urls(endpoint: str, outputs: dict[str, str], stage: Stage) -> tuple[str, str]:
    """(shop, api): the two URLs the emulator serves the stage at (EMULATOR_GAPS["url"]).

    The shop's host is the API's own, as on AWS (<api id>.execute-api.localhost),
    so the pages' absolute links (/api/...) stay in the stage; the api URL is the
    same stage under a path, for clients that do not resolve *.localhost.
    """
    host = urlsplit(outputs["EndpointURL"]).hostname or ""
    match = re.match(r"^([a-z0-9]+)\.execute-api\.", host)
    if not match:
        raise DeployError(f"cannot read the API id from {outputs['EndpointURL']}")
    port = urlsplit(endpoint).port or 80
    shop = EXECUTE_API_HOST.format(api_id=match[1], port=port, stage=stage.api_stage)
    api = endpoint.rstrip("/") + EXECUTE_API_PATH.format(api_id=match[1],
                                                         stage=stage.api_stage)
    return shop, api
