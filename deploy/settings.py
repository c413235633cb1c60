"""A deploy stage as .chalice/config.json describes it.

Besides Chalice's own keys (`xray`, `reserved_concurrency` per function, which
Chalice writes into its template itself) a deployable stage carries what
Chalice has no key for: `api_throttling` {`rate_limit`, `burst_limit`} for the
API stage, `log_retention_days` for every log group of the stack
(docs/OPERATIONS.md, "Capacity"), `api`, the front door: `rest` (Chalice's
own REST API) or `http` (the same app behind an HTTP API, deploy/httpapi.py;
docs/OPERATIONS.md, "Front door"), `system_log_level`, the least level of Lambda's own
lines the functions' log groups get (`WARN`: no START/END/REPORT lines; docs/OPERATIONS.md,
"Logs"), and `cognito_email` {`ses_identity_arn`,
`from`} to send the user pool's mail through SES (docs/OPERATIONS.md, "Security").
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"
# `chalice local` runs against the embedded moto table; never deploy it.
LOCAL_STAGES = frozenset({"local"})
# What a stage gets when its config says nothing: a small public demo.
DEFAULT_RATE_LIMIT = 50.0
DEFAULT_BURST_LIMIT = 100
DEFAULT_LOG_RETENTION_DAYS = 14
# The front doors a stage can have: Chalice's REST API, or an HTTP API in front
# of the same function (deploy/httpapi.py). A stage that names none keeps REST.
REST_API = "rest"
HTTP_API = "http"
FRONT_DOORS = (REST_API, HTTP_API)
# Lambda's SystemLogLevel values. Its START, END and REPORT lines are INFO: a stage at
# WARN pays for none of them (Lambda's own Duration, Errors and Throttles metrics, which
# the alarms and the dashboard read, do not come from them).
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_SYSTEM_LOG_LEVEL = "WARN"
# Lambda's names for the machines it runs on, by what platform.machine() says.
MACHINE_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64",
                         "arm64": "arm64"}
# The values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
     2557, 2922, 3288, 3653}
)


def say(line: str) -> None:
    """Print now: progress must show while CloudFormation works, even when piped."""
    print(line, flush=True)


class DeployError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


@dataclass(frozen=True)
class Stage:
    app_name: str
    name: str
    production: bool
    api_rate_limit: float = DEFAULT_RATE_LIMIT
    api_burst_limit: int = DEFAULT_BURST_LIMIT
    log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS
    tracing: bool = True
    api_stage: str = "api"  # Chalice's api_gateway_stage: the URL's first segment
    api: str = REST_API  # the front door: REST_API or HTTP_API
    # handler -> reserved concurrency; a handler not named here has none
    reserved_concurrency: dict[str, int] = field(default_factory=dict)
    # The user pool's mail through SES ("cognito_email": {"ses_identity_arn",
    # "from"}); without it, Cognito's own sender and its small daily quota.
    ses_identity_arn: str | None = None
    mail_from: str | None = None
    # Lambda's `Architectures`: .chalice/config.json lambda_architecture, or for an
    # emulated stage this machine's (the emulator runs the functions here).
    architecture: str = "arm64"
    # The local emulator the stage is deployed to (`make emulate`), None for AWS.
    emulator: str | None = None
    # Lambda's SystemLogLevel for every function (SYSTEM_LOG_LEVELS).
    system_log_level: str = DEFAULT_SYSTEM_LOG_LEVEL

    @property
    def service_name(self) -> str:
        """Powertools' `service`: the one dimension of the business metrics."""
        return self.stack_name

    @property
    def stack_name(self) -> str:
        return f"{self.app_name}-{self.name}"

    @property
    def secret_parameter(self) -> str:
        """The SSM parameter NAME that holds this stage's cookie-signing key."""
        return f"/{self.app_name}/{self.name}/cookie-secret"

    def function_name(self, handler: str) -> str:
        return f"{self.stack_name}-{handler}"


def kept_data_policies(stage: Stage) -> dict[str, str]:
    """Production data outlives the stack; a failed first create leaves no orphan.

    RetainExceptOnCreate keeps the resource when the stack is deleted, but
    deletes it when the stack's first create rolls back (nothing in it yet).
    UpdateReplacePolicy knows no such value: a replaced resource is kept.
    """
    if not stage.production:
        return {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}
    return {"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"}


def host_architecture(machine: str | None = None) -> str:
    """Lambda's name for this machine's architecture; DeployError for another."""
    name = (machine or platform.machine()).lower()
    if name not in MACHINE_ARCHITECTURES:
        raise DeployError(f"Lambda runs on x86_64 or arm64 only, not on this {name}")
    return MACHINE_ARCHITECTURES[name]


def load_stage(name: str, config_path: Path = CONFIG) -> Stage:
    """The stage called `name`; DeployError for `local` or an unknown stage."""
    if name in LOCAL_STAGES:
        raise DeployError(
            f"stage {name!r} is the local stack (make run); deploy a real stage, e.g. STAGE=dev"
        )
    config = json.loads(config_path.read_text())
    stages = config.get("stages", {})
    deployable = sorted(s for s in stages if s not in LOCAL_STAGES)
    if name not in stages:
        raise DeployError(
            f"no stage {name!r} in {config_path.name}; deployable stages: {', '.join(deployable)}"
        )
    return _stage(config, name, stages[name], config_path.name)


def _number(value: Any, where: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise DeployError(f"{where} must be a number >= {minimum:g}, not {value!r}")
    return float(value)


def _stage(config: dict[str, Any], name: str, stage: dict[str, Any], file: str) -> Stage:
    where = f"{file} stages.{name}"
    throttling = stage.get("api_throttling", {})
    rate = _number(throttling.get("rate_limit", DEFAULT_RATE_LIMIT), f"{where}.api_throttling"
                   ".rate_limit", 1)
    burst = _number(throttling.get("burst_limit", DEFAULT_BURST_LIMIT), f"{where}.api_throttling"
                    ".burst_limit", 1)
    if burst != int(burst):
        raise DeployError(f"{where}.api_throttling.burst_limit must be a whole number")
    retention = stage.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS)
    if retention not in LOG_RETENTION_DAYS or isinstance(retention, bool):
        raise DeployError(
            f"{where}.log_retention_days must be one of CloudWatch Logs' values "
            f"({', '.join(map(str, sorted(LOG_RETENTION_DAYS)))}), not {retention!r}"
        )
    reserved: dict[str, int] = {}
    for handler, settings in stage.get("lambda_functions", {}).items():
        value = settings.get("reserved_concurrency", stage.get("reserved_concurrency"))
        if value is not None:
            number = _number(value, f"{where}.lambda_functions.{handler}.reserved_concurrency", 0)
            reserved[handler] = int(number)
    api = stage.get("api", config.get("api", REST_API))
    if api not in FRONT_DOORS:
        raise DeployError(f"{where}.api must be one of {', '.join(FRONT_DOORS)}, not {api!r}")
    mail = stage.get("cognito_email", {})
    arn = mail.get("ses_identity_arn")
    if arn is not None and not (isinstance(arn, str) and arn.startswith("arn:") and ":ses:" in arn
                                and ":identity/" in arn):
        raise DeployError(f"{where}.cognito_email.ses_identity_arn must be an SES identity's "
                          f"ARN (arn:aws:ses:<region>:<account>:identity/<address or domain>), "
                          f"not {arn!r}")
    sender = mail.get("from")
    if sender is not None and (not isinstance(sender, str) or "@" not in sender):
        raise DeployError(f"{where}.cognito_email.from must be an e-mail address "
                          f"(\"Shop <no-reply@example.com>\"), not {sender!r}")
    system_log_level = stage.get("system_log_level", DEFAULT_SYSTEM_LOG_LEVEL)
    if system_log_level not in SYSTEM_LOG_LEVELS:
        raise DeployError(f"{where}.system_log_level must be one of "
                          f"{', '.join(SYSTEM_LOG_LEVELS)}, not {system_log_level!r}")
    # Chalice's own lookup order for `xray`: the stage, else the top level.
    tracing = stage.get("xray", config.get("xray", False))
    emulator = stage.get("emulator")
    architecture = (host_architecture() if emulator else
                    str(stage.get("lambda_architecture", config.get("lambda_architecture",
                                                                     "arm64"))))
    return Stage(
        app_name=str(config["app_name"]),
        name=name,
        production=bool(stage.get("production", False)),
        api_rate_limit=rate,
        api_burst_limit=int(burst),
        log_retention_days=int(retention),
        tracing=bool(tracing),
        api_stage=str(config.get("api_gateway_stage", "api")),
        api=str(api),
        reserved_concurrency=reserved,
        architecture=architecture,
        emulator=str(emulator) if emulator else None,
        ses_identity_arn=arn,
        mail_from=sender,
        system_log_level=str(system_log_level),
    )
