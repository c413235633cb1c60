"""What the app's processes see: the stage's variables and, locally, moto.

The app finds DynamoDB through the standard AWS settings only, so the same
code talks to moto here and to real AWS when these are left unset.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCAL_REGION = "us-east-1"

# Anything that could lead a local process to a real account or profile.
_REAL_AWS = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "CART_COOKIE_SECRET_PARAM",
)


class StageError(RuntimeError):
    """The stage config cannot run the stack (one-line message)."""


def stage_variables(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """The stage's environment variables, merged the way Chalice merges them."""
    from chalice.config import Config

    path = project_dir / ".chalice" / "config.json"
    try:
        config_from_disk: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StageError(f"cannot read {path}: {exc}") from exc
    if stage not in config_from_disk.get("stages", {}):
        raise StageError(f"stage {stage!r} is not in {path}")
    config = Config(chalice_stage=stage, config_from_disk=config_from_disk)
    return {str(k): str(v) for k, v in config.environment_variables.items()}


def table_name(stage: str, project_dir: Path = PROJECT_DIR) -> str:
    name = stage_variables(stage, project_dir).get("TABLE_NAME")
    if not name:
        raise StageError(f"stage {stage!r} sets no TABLE_NAME in .chalice/config.json")
    return name


def moto_environment(base: Mapping[str, str], moto_url: str) -> dict[str, str]:
    """`base` pointed at moto with dummy credentials; no real profile is read."""
    env = {k: v for k, v in base.items() if k not in _REAL_AWS}
    env.update({
        # Every AWS service goes to moto, not only DynamoDB: nothing local can
        # reach a real account by accident.
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_url,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": moto_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",  # nosec B105: moto accepts any key
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_REGION": LOCAL_REGION,
        # botocore >= 1.44.4 would send Streams calls to an account-ID host.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env
