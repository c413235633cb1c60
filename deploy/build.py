"""Build the deployment package and the SAM template for one stage.

Works on a copy under build/<stage>/src so the source tree never changes:
top-level templates/ and static/ go into the copy's vendor/, which Chalice
puts at the zip root next to app.py (Chalice alone would leave them out).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess  # nosec B404: runs the venv's own chalice
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy import httpapi
from deploy import template as tpl
from deploy.settings import HTTP_API, ROOT, DeployError, Stage

BUILD_ROOT = ROOT / "build"
# cryptography (RS256 for Cognito ID tokens) is ~5 MB of aarch64 wheel; Lambda takes
# 50 MB. The bound still catches a dev package (moto, boto3) slipping in.
MAX_ZIP_BYTES = 8 * 1024 * 1024
# Lambda provides boto3/botocore; the rest is only for development.
EXCLUDED_PACKAGES = ("boto3", "botocore", "s3transfer", "moto", "pytest", "_pytest")
ASSET_DIRS = ("templates", "static")
# Chalice imports app.py to package it; the real value comes from the template.
PLACEHOLDER_ENV = ("TABLE_STREAM_ARN", "TABLE_NAME")
# Compiled code names its machine: in a file's name (PEP 3149 tags, e.g.
# .cpython-313-x86_64-linux-gnu.so) or in its wheel's tags. Lambda runs Linux on
# these two; anything else named here is foreign to both.
LINUX_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}
MACHINE_NAMES = re.compile(
    r"x86_64|amd64|aarch64|arm64|i686|win32|win_|macosx|darwin|ppc64|s390x|armv7")
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")


@dataclass(frozen=True)
class Build:
    zip_path: Path
    template_path: Path
    template: dict[str, Any]
    stream_handlers: tuple[str, ...]


def stream_handlers() -> tuple[str, ...]:
    """The app's @app.on_dynamodb_record functions, by name."""
    from chalice.app import DynamoDBEventConfig

    from app import app

    return tuple(
        source.name for source in app.event_sources if isinstance(source, DynamoDBEventConfig)
    )


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}


def _copy_sources(src: Path, stage: Stage) -> None:
    """Fresh sources in `src`, keeping Chalice's wheel cache in .chalice/deployments."""
    for stale in ("app.py", "chalicelib", "vendor", "requirements.txt"):
        path = src / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (src / ".chalice").mkdir(parents=True, exist_ok=True)
    for old in (src / ".chalice").glob("*.json"):
        old.unlink()
    shutil.copy2(ROOT / "app.py", src / "app.py")
    shutil.copy2(ROOT / "requirements.txt", src / "requirements.txt")
    shutil.copytree(ROOT / "chalicelib", src / "chalicelib", ignore=_ignore)
    for config in (ROOT / ".chalice").glob("*.json"):
        shutil.copy2(config, src / ".chalice" / config.name)
    # Chalice picks the wheels by lambda_architecture: the stage's own (an
    # emulated stage's is this machine's, see deploy.settings).
    config_path = src / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"][stage.name]["lambda_architecture"] = stage.architecture
    config_path.write_text(json.dumps(config, indent=2))
    for assets in ASSET_DIRS:
        if (ROOT / assets).is_dir():
            shutil.copytree(ROOT / assets, src / "vendor" / assets, ignore=_ignore)


def _chalice() -> Path:
    chalice = Path(sys.executable).parent / "chalice"
    if not chalice.exists():
        raise DeployError(f"{chalice} not found: run `make install` first")
    return chalice


def _run_chalice_package(stage: Stage, src: Path, merge: Path, out: Path, region: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in PLACEHOLDER_ENV}
    env["AWS_DEFAULT_REGION"] = region
    command = [
        str(_chalice()),
        "package",
        "--stage",
        stage.name,
        "--merge-template",
        str(merge),
        str(out),
    ]
    result = subprocess.run(  # nosec B603: fixed argv, no shell
        command, cwd=src, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DeployError("chalice package failed: " + " | ".join(tail))


def asset_files(root: Path = ROOT) -> list[str]:
    """Every file under templates/ and static/, as zip paths."""
    files: list[str] = []
    for assets in ASSET_DIRS:
        base = root / assets
        if base.is_dir():
            files.extend(
                p.relative_to(root).as_posix()
                for p in sorted(base.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts
            )
    return files


def check_zip(zip_path: Path, root: Path = ROOT,
              architecture: str = tpl.ARCHITECTURE) -> list[str]:
    """What is wrong with the deployment package; empty when it is fine."""
    problems: list[str] = []
    size = zip_path.stat().st_size
    if size > MAX_ZIP_BYTES:
        problems.append(f"{zip_path.name} is {size} bytes, over {MAX_ZIP_BYTES}")
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        wheels = {
            name: archive.read(name).decode("utf-8", "replace")
            for name in names
            if name.endswith(".dist-info/WHEEL")
        }
    problems += foreign_binaries(names, wheels, architecture)
    required = ["app.py", "chalicelib/__init__.py", *asset_files(root)]
    problems += [f"{name} is missing from the package" for name in required if name not in names]
    top_level = {name.split("/", 1)[0] for name in names}
    problems += [
        f"{package} must not be in the package"
        for package in EXCLUDED_PACKAGES
        if package in top_level
    ]
    return problems


def _foreign(file_name: str, machine: str) -> bool:
    found = MACHINE_NAMES.findall(file_name)
    return bool(found) and machine not in found


def foreign_binaries(names: set[str], wheels: dict[str, str],
                     architecture: str = tpl.ARCHITECTURE) -> list[str]:
    """Compiled files or wheels in the package built for another machine than Lambda's."""
    machine = LINUX_MACHINE[architecture]
    problems = [
        f"{name} is compiled for another machine than Lambda {architecture}"
        for name in sorted(names)
        if name.endswith(NATIVE_SUFFIXES) and _foreign(name.rsplit("/", 1)[-1], machine)
    ]
    for name, text in sorted(wheels.items()):
        tags = [line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("Tag:")]
        platforms = {tag.rsplit("-", 1)[-1] for tag in tags}
        if platforms and not any(p == "any" or machine in p for p in platforms):
            problems.append(
                f"{name.split('/', 1)[0]} is a wheel for {', '.join(sorted(platforms))}, "
                f"not Lambda {architecture} (linux {machine})"
            )
    return problems


@dataclass(frozen=True)
class CheckovResult:
    passed: int
    skipped: int
    failed: list[str]  # "CHECK resource: name" per failure
    skips: list[tuple[str, str, str]]  # (check, resource, the template's reason)

    def summary(self) -> str:
        return f"{self.passed} passed, {len(self.failed)} failed, {self.skipped} skipped"


def checkov_command() -> Path:
    """checkov lives in a venv of its own (.venv/checkov): its pins clash with boto3's."""
    path = Path(sys.prefix) / "checkov" / "bin" / "checkov"
    if not path.exists():
        raise DeployError(
            f"{path} not found: run `make install` (it adds checkov's own venv, "
            "requirements-checkov.txt)"
        )
    return path


def checkov(templates: list[Path]) -> CheckovResult:
    """checkov's CloudFormation checks over `templates`, offline."""
    command = [str(checkov_command())]
    for path in templates:
        command += ["-f", str(path)]
    # --skip-download: no request to Prisma Cloud for guidelines or policies.
    command += ["--framework", "cloudformation", "--skip-download", "-o", "json"]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    result = subprocess.run(  # nosec B603: fixed argv, no shell
        command, env=env, capture_output=True, text=True, check=False
    )
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DeployError("checkov did not run: " + " | ".join(tail)) from exc
    reports = reports if isinstance(reports, list) else [reports]
    passed = skipped = 0
    failed: list[str] = []
    skips: list[tuple[str, str, str]] = []
    for report in reports:
        passed += report["summary"]["passed"]
        skipped += report["summary"]["skipped"]
        for check in report["results"].get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['resource']}: {check['check_name']}")
        failed += [f"checkov could not read {path}" for path in report["results"].get(
            "parsing_errors", []
        )]
        for check in report["results"].get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            skips.append((check["check_id"], check["resource"], reason))
    return CheckovResult(passed, skipped, failed, skips)


def build(stage: Stage, region: str, build_root: Path = BUILD_ROOT) -> Build:
    """Package `stage`: build/<stage>/out/{deployment.zip,sam.json}."""
    work = build_root / stage.name
    src, out = work / "src", work / "out"
    _copy_sources(src, stage)
    handlers = stream_handlers()
    merge = work / "merge.json"
    merge.write_text(json.dumps(tpl.merge_template(stage, handlers), indent=2))
    if out.exists():
        shutil.rmtree(out)
    _run_chalice_package(stage, src, merge, out, region)
    template_path = out / "sam.json"
    template: dict[str, Any] = json.loads(template_path.read_text())
    if stage.api == HTTP_API:
        # Chalice writes a REST API; this stage's front door is an HTTP API.
        template = httpapi.transform(template, stage)
        template_path.write_text(json.dumps(template, indent=2))
    problems = tpl.check_template(template, handlers, tracing=stage.tracing,
                                  architecture=stage.architecture,
                                  system_log_level=stage.system_log_level)
    problems += check_zip(out / "deployment.zip", architecture=stage.architecture)
    if problems:
        raise DeployError("the package is not deployable: " + "; ".join(problems))
    return Build(out / "deployment.zip", template_path, template, handlers)
