"""The local stack started in the background: for tests, benchmarks and scripts.

`start_stack()` runs `python -m devstack run` on free ports as a subprocess
and returns once it says it is ready; `stop()` sends SIGTERM, as Ctrl-C would.
"""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404: starts this project's own stack
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.environment import PROJECT_DIR
from devstack.environment import table_name as stage_table
from devstack.ports import free_port, local_url

LOCAL_STAGE = "local"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class LiveStack:
    """A running `python -m devstack run`, started in the background."""

    port: int
    moto_port: int
    state_dir: Path
    process: subprocess.Popen[bytes]
    table_name: str = field(default_factory=lambda: stage_table(LOCAL_STAGE))
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return local_url(self.port)

    @property
    def moto_url(self) -> str:
        return local_url(self.moto_port)

    @property
    def park_file(self) -> Path:
        return self.state_dir / "parked.jsonl"

    @property
    def stdout_path(self) -> Path:
        return self.state_dir / "stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.state_dir / "stderr.log"

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def errors(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def dynamodb(self) -> Any:
        """A DynamoDB client on the stack's moto server (dummy keys, no profile)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local",  # nosec B106
            region_name="us-east-1",
        ).client("dynamodb", endpoint_url=self.moto_url)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM the supervisor; kill what is left if it does not finish in time."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for pid in [self.process.pid, *self.pids]:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.process.wait(timeout=5)
            raise


def start_stack(state_dir: Path, timeout: float = 60.0,
                extra: tuple[str, ...] = ()) -> LiveStack:
    """Start a whole stack on free ports and wait until it says it is ready."""
    for _ in range(2):
        try:
            return _start_stack(state_dir, timeout, extra)
        except PortTaken:
            continue  # another process took a free port before the stack bound it
    return _start_stack(state_dir, timeout, extra)


class PortTaken(RuntimeError):
    pass


def _start_stack(state_dir: Path, timeout: float, extra: tuple[str, ...]) -> LiveStack:
    state_dir.mkdir(parents=True, exist_ok=True)
    port, moto_port = free_port(), free_port()
    while moto_port == port:
        moto_port = free_port()
    argv = [sys.executable, "-m", "devstack", "run", "--port", str(port),
            "--moto-port", str(moto_port), "--state-dir", str(state_dir), "--no-reload",
            *extra]
    stdout = (state_dir / "stdout.log").open("wb")
    stderr = (state_dir / "stderr.log").open("wb")
    process = subprocess.Popen(  # nosec B603: fixed argv
        argv, cwd=PROJECT_DIR, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
        start_new_session=True,
    )
    stdout.close()
    stderr.close()
    stack = LiveStack(port, moto_port, state_dir, process)
    deadline = time.monotonic() + timeout
    while process.poll() is None and "devstack: ready at" not in stack.output():
        if time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"the stack was not ready within {timeout} s:\n{stack.output()}")
        time.sleep(0.1)
    if process.poll() is not None:
        error = PortTaken if "is already in use" in stack.errors() else RuntimeError
        raise error(f"the stack exited with code {process.returncode}:\n"
                    f"{stack.output()}\n{stack.errors()}")
    stack.pids = descendants(process.pid)
    return stack
