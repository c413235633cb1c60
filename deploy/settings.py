"""A deploy stage as .chalice/config.json describes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"
# `chalice local` runs against the embedded moto table; never deploy it.
LOCAL_STAGES = frozenset({"local"})


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

    @property
    def stack_name(self) -> str:
        return f"{self.app_name}-{self.name}"

    @property
    def secret_parameter(self) -> str:
        """The SSM parameter NAME that holds this stage's cookie-signing key."""
        return f"/{self.app_name}/{self.name}/cookie-secret"

    @property
    def log_retention_days(self) -> int:
        return 90 if self.production else 14

    def function_name(self, handler: str) -> str:
        return f"{self.stack_name}-{handler}"


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
    return Stage(
        app_name=str(config["app_name"]),
        name=name,
        production=bool(stages[name].get("production", False)),
    )
