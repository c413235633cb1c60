"""`make emulate`: the deployed stack on MiniStack, a local AWS emulator.

MiniStack (PyPI `ministack`, pinned in requirements-ministack.txt) runs in a
venv of its own (.venv/ministack: its botocore pin clashes with moto's); it
runs the functions as subprocesses of its own interpreter, which therefore
has boto3 like Lambda's runtime. `start_ministack` starts it on 127.0.0.1 in a
process group of its own, with IAM evaluation on (AUTH=true: each function
calls AWS as its execution role, so a policy that lacks an action fails);
`deploy` runs `python -m deploy deploy --stage emulated` against it, the code
path of `make deploy`; `run` is `make emulate`: both, then the shop's URL,
until Ctrl-C stops every process it started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess  # nosec B404: starts MiniStack and this project's own deploy
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from deploy import emulator
from devstack.environment import PROJECT_DIR
from devstack.ports import HOST, bind_error, local_url

STAGE = "emulated"
READY_TIMEOUT = 60.0
DEPLOY_TIMEOUT = 600.0
# Off: listeners this stack does not use, which would bind ports of their own on
# every interface (IoT's MQTT on 8883), and MiniStack's Docker-based services.
MINISTACK_SETTINGS = {
    "BIND_HOST": HOST,
    "AUTH": "true",
    "IOT_MTLS_ENABLED": "0",
    "SFTP_ENABLED": "0",
    "MINISTACK_REGION": emulator.REGION,
    "LOG_LEVEL": "WARNING",
}
# `python -m ministack` with its HTTP API honouring payload format 1.0 (the HTTP API
# front door needs it; EMULATOR_GAPS["http_payload"]).
LAUNCHER = Path(__file__).resolve().parent / "ministack_launch.py"
OUTPUT_LINE = re.compile(r"^(Shop|API|Table|Dead-letter queue): +(\S+)$", re.M)
Out = Callable[[str], None]


def ministack_python() -> Path:
    """The interpreter MiniStack runs on: MINISTACK_PYTHON, else .venv/ministack's."""
    configured = os.environ.get("MINISTACK_PYTHON")
    return Path(configured) if configured else Path(sys.prefix) / "ministack" / "bin" / "python"


def aws_environment(endpoint: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose every AWS call goes to the emulator, never to an account."""
    return emulator.environment(endpoint, os.environ if base is None else base)


@dataclass
class Emulator:
    """A running MiniStack: its own process group, stopped by `stop()`."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def endpoint(self) -> str:
        return local_url(self.port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the group (MiniStack and the functions it runs), then SIGKILL."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.process.pid, signal.SIGKILL)  # its workers, if any are left
        self.process.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _ready(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/_ministack/health", timeout=2) as response:  # nosec B310: loopback
            return bool(json.loads(response.read()).get("services"))
    except (OSError, ValueError):
        return False


def start_ministack(port: int, log_path: Path, python: Path | None = None,
                    auth: bool = True) -> Emulator:
    """MiniStack on 127.0.0.1:`port`, ready for requests; RuntimeError if it is not."""
    python = python or ministack_python()
    if not python.exists():
        raise RuntimeError(f"{python} not found: `make install` builds MiniStack's venv "
                           "(requirements-ministack.txt), or set MINISTACK_PYTHON")
    if (error := bind_error(port)) is not None:
        raise RuntimeError(f"port {port} is not free for MiniStack: {error.strerror}")
    env = aws_environment(local_url(port))
    env.pop("AWS_ENDPOINT_URL")  # its functions get MiniStack's own (GATEWAY_PORT)
    env.update(MINISTACK_SETTINGS, GATEWAY_PORT=str(port), AUTH="true" if auth else "false",
               TMPDIR=str(log_path.parent))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # nosec B603: fixed argv, no shell
            [str(python), str(LAUNCHER)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, cwd=log_path.parent, start_new_session=True)
    started = Emulator(port, process, log_path)
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(started.endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            started.stop()
            tail = "\n".join(started.log().splitlines()[-5:])
            raise RuntimeError(f"MiniStack did not start on port {port}:\n{tail}")
        time.sleep(0.1)
    return started


@dataclass
class Deployed:
    """What `python -m deploy deploy --stage emulated` printed, and its output."""

    shop: str  # for a browser: the API's own host name, under localhost
    api: str  # the same stage under a path, for any HTTP client
    table: str
    queue: str
    output: str = field(repr=False, default="")


def deploy(endpoint: str, build_dir: Path | None = None, api: str = "rest",
           smoke: bool = False, out: Out | None = None) -> Deployed:
    """Deploy the emulated stage to the emulator at `endpoint`, as `make deploy` does."""
    command = [sys.executable, "-m", "deploy", "deploy", "--stage", STAGE, "--api", api]
    if build_dir is not None:
        command += ["--build-dir", str(build_dir)]
    if not smoke:
        command.append("--no-smoke")
    lines: list[str] = []
    process = subprocess.Popen(  # nosec B603: fixed argv, no shell
        command, cwd=PROJECT_DIR, env=aws_environment(endpoint), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    stream: IO[str] = process.stdout  # type: ignore[assignment]
    for line in stream:
        lines.append(line)
        if out is not None:
            out(line.rstrip("\n"))
    code = process.wait(DEPLOY_TIMEOUT)
    output = "".join(lines)
    deployed = parse_deployed(output)
    if code != 0 or deployed is None:
        raise RuntimeError(f"the emulated deploy failed (exit {code}):\n"
                           + "".join(lines[-15:]))
    return deployed


def parse_deployed(output: str) -> Deployed | None:
    """What the deploy printed (URLs, table, queue); None until it printed them all."""
    found = dict(OUTPUT_LINE.findall(output))
    if not {"Shop", "API", "Table", "Dead-letter queue"} <= set(found):
        return None
    return Deployed(found["Shop"], found["API"], found["Table"], found["Dead-letter queue"],
                    output)


def _say(line: str) -> None:
    print(line, flush=True)


def run(port: int, api: str = "rest", state_dir: Path | None = None,
        out: Out = _say) -> int:
    """`make emulate`: MiniStack, the deploy (smoke suite included), then serve until Ctrl-C."""
    state_dir = state_dir or PROJECT_DIR / "build" / "emulate"
    try:
        ministack = start_ministack(port, state_dir / "ministack.log")
    except RuntimeError as exc:
        print(f"emulate: {exc}", file=sys.stderr)
        return 1
    try:
        out(f"==> MiniStack at {ministack.endpoint} (AUTH=true; log {ministack.log_path})")
        try:
            deployed = deploy(ministack.endpoint, api=api, smoke=True, out=out)
        except RuntimeError as exc:
            print(f"emulate: {exc}", file=sys.stderr)
            return 1
        out("")
        out(f"Shop: {deployed.shop}")
        out(f"      make smoke BASE_URL={deployed.api}")
        out(f"      make redrive STAGE=emulated MINISTACK_PORT={port} replays its dead-letter "
            "queue; Ctrl-C stops MiniStack and the functions it runs")
        while ministack.process.poll() is None:
            time.sleep(0.5)
        print(f"emulate: MiniStack stopped (exit {ministack.process.returncode}); see "
              f"{ministack.log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        out("")
        out("==> stopping MiniStack and the functions it runs")
        return 0
    finally:
        ministack.stop()
