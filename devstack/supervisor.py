"""`python -m devstack run`: the whole local stack, each part its own process.

moto server → table bootstrap → stream runner → `chalice local`. Every child
runs in its own process group, so stopping one stops everything it forked
(chalice local's reloader forks a worker). Ctrl-C or SIGTERM stops them all;
a child that dies takes the stack down with a one-line cause.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import select
import signal
import socket
import subprocess  # nosec B404: the supervisor's job is to start the stack's processes
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from devstack.environment import PROJECT_DIR, StageError, moto_environment, stage_variables
from devstack.ports import HOST, bind_error, local_url

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
REQUIRED = ("moto", "flask", "werkzeug", "chalice", "boto3")


class StackError(RuntimeError):
    """Why the stack cannot start or had to stop: printed as one line."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session: the child leads its own group

    def group_alive(self) -> bool:
        """Any process of the group still running (a zombie waiting for init is not)."""
        proc = Path("/proc")
        if not proc.is_dir():
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return False
            return True
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == self.pgid and fields[0] not in ("Z", "X"):
                return True
        return False

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def gone(self) -> bool:
        return self.process.poll() is not None and not self.group_alive()


def stop_all(children: list[Child], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every group, then SIGKILL whatever is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for child in children:
            child.signal(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(child.gone() for child in children):
                return
            time.sleep(0.02)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=1)


@dataclass
class Stack:
    port: int
    moto_port: int
    stage: str
    state_dir: Path
    use_moto: bool = True
    reload: bool = True
    streams: bool = True
    table: str | None = None
    say: Callable[[str], None] = lambda line: print(line, flush=True)
    children: list[Child] = field(default_factory=list)

    @property
    def url(self) -> str:
        return local_url(self.port)

    @property
    def moto_url(self) -> str:
        return local_url(self.moto_port)

    def start(self) -> None:
        check_dependencies()
        variables = stage_variables(self.stage)
        pinned = variables.get("TABLE_NAME")
        if self.table and pinned and self.table != pinned:
            raise StackError(f"stage {self.stage!r} pins TABLE_NAME={pinned} (chalice local "
                             "would use it): --table is for stages that set none")
        # Against AWS the table comes from the environment (`python -m deploy env`).
        table_name = self.table or variables.get("TABLE_NAME") or (
            None if self.use_moto else os.environ.get("TABLE_NAME"))
        if not table_name:
            raise StackError(f"no table: stage {self.stage!r} sets no TABLE_NAME in "
                             ".chalice/config.json (use --table or set TABLE_NAME)")
        ports = [self.port] + ([self.moto_port] if self.use_moto else [])
        if len(set(ports)) != len(ports):
            raise StackError("--port and --moto-port must differ")
        for port in ports:
            ensure_free(port)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # No .pyc writes: chalice local's reloader restarts on any new file.
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TABLE_NAME=table_name)
        if self.use_moto:
            env = moto_environment(env, self.moto_url)
            self._spawn("moto server", [sys.executable, "-m", "devstack", "moto",
                                        "--port", str(self.moto_port)], env)
            wait_for_port(self.moto_port, self.children[-1])
            self.say(f"devstack: moto server   {self.moto_url} "
                     "(DynamoDB + Streams, in memory, one request at a time)")
            self._bootstrap(env, table_name)
            env.update(self._bootstrap_accounts(table_name))
        else:
            self.say(f"devstack: no moto: stage {self.stage!r}, table {table_name} "
                     "in your AWS account (nothing is created)")
        if self.streams:
            self._start_streams(env, table_name)
        else:
            self.say("devstack: no stream runner (--no-streams)")
        if importlib.util.find_spec("chalice") is None:
            raise StackError("missing dependency: chalice (run `make install`)")
        argv = [sys.executable, str(Path(__file__).with_name("chalice_local.py")),
                "local", "--stage", self.stage, "--host", HOST, "--port", str(self.port)]
        self._spawn("chalice local", argv + ([] if self.reload else ["--no-autoreload"]), env)
        wait_for_http(f"{self.url}/api/products", self.children[-1])
        reloading = "reloads on file changes" if self.reload else "no reload"
        self.say(f"devstack: chalice local stage {self.stage}, table {table_name} ({reloading})")
        self.say(f"devstack: ready at {self.url}  (Ctrl-C stops everything)")

    def _bootstrap(self, env: Mapping[str, str], table_name: str) -> None:
        import boto3

        from devstack.bootstrap import bootstrap as seed
        from devstack.bootstrap import ensure_table

        # The same settings the children get: moto, dummy keys, no profile.
        os.environ.clear()
        os.environ.update(env)
        client = boto3.client("dynamodb")
        _, created = ensure_table(client, table_name)
        seed(client, table_name)
        self.say(f"devstack: table         {table_name} "
                 f"({'created' if created else 'kept'}, stream + TTL, catalog seeded)")

    def _bootstrap_accounts(self, table_name: str) -> dict[str, str]:
        import boto3

        from devstack.accounts import user_pool_environment

        # os.environ is the moto environment _bootstrap set.
        variables, created = user_pool_environment(boto3.client("cognito-idp"), table_name,
                                                   self.moto_url)
        self.say(f"devstack: user pool     {variables['COGNITO_USER_POOL_ID']} "
                 f"({'created' if created else 'kept'}; moto accepts ANY confirmation code)")
        return variables

    def _start_streams(self, env: Mapping[str, str], table_name: str) -> None:
        read_end, write_end = os.pipe()
        try:
            self._spawn("stream runner", [
                sys.executable, "-m", "devstack", "streams", "--stage", self.stage,
                "--table", table_name, "--park-file", str(self.state_dir / "parked.jsonl"),
                "--ready-fd", str(write_end),
            ], env, pass_fds=(write_end,))
        finally:
            os.close(write_end)
        with os.fdopen(read_end, "rb") as ready:
            readable, _, _ = select.select([ready], [], [], START_TIMEOUT)
            line = ready.readline() if readable else b""
        if line.strip() != b"ready":
            child = self.children[-1]
            if child.process.poll() is not None:
                raise StackError(f"the stream runner exited with code "
                                 f"{child.process.returncode} (see its message above)")
            raise StackError("the stream runner did not get ready in time")
        self.say(f"devstack: stream runner parks failing records in "
                 f"{self.state_dir / 'parked.jsonl'}")

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str],
               pass_fds: tuple[int, ...] = ()) -> None:
        process = subprocess.Popen(  # nosec B603: fixed argv, no shell
            argv, cwd=PROJECT_DIR, env=dict(env), stdin=subprocess.DEVNULL,
            start_new_session=True, pass_fds=pass_fds, preexec_fn=_die_with_parent,
        )
        self.children.append(Child(name, process))

    def crashed(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def stop(self) -> None:
        # All at once: moto holds nothing worth saving, and waiting for each
        # in turn only makes Ctrl-C slower. The app is signalled first.
        stop_all(list(reversed(self.children)))
        self.children.clear()


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the supervisor is killed outright (SIGKILL)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def check_dependencies(modules: tuple[str, ...] = REQUIRED) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise StackError(f"missing dependency: {module} (run `make install`)")


def ensure_free(port: int) -> None:
    error = bind_error(port)
    if error is not None:
        raise StackError(f"port {port} on {HOST} is already in use ({error.strerror}); "
                         "stop what holds it or pick another port") from error


def wait_for_port(port: int, child: Child, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(child)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise StackError(f"the {child.name} did not open port {port} within {timeout:.0f} s")


def wait_for_http(url: str, child: Child, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        _check_alive(child)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # nosec B310: loopback
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise StackError(f"the {child.name} did not answer {url} within {timeout:.0f} s ({last})")


def _check_alive(child: Child) -> None:
    code = child.process.poll()
    if code is not None:
        raise StackError(f"the {child.name} exited with code {code} while starting "
                         "(see its message above)")


def run(stack: Stack) -> int:
    """Start the stack, wait for Ctrl-C / SIGTERM or a crash, stop everything."""
    stopping: list[int] = []
    started = False
    code = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if not started:
            raise Interrupted(signum)  # leave whatever wait start() is in

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        stack.start()
        started = True
        while not stopping:
            child = stack.crashed()
            if child is not None:
                raise StackError(f"the {child.name} exited with code "
                                 f"{child.process.returncode}; stopping the stack")
            time.sleep(0.1)
        print("devstack: stopping", flush=True)
    except Interrupted:
        print("devstack: interrupted while starting; stopping", flush=True)
    except (StackError, StageError) as exc:
        print(f"devstack: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception as exc:  # still one line, and still no orphan
        print(f"devstack: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        started = True  # a second Ctrl-C must not interrupt the cleanup
        stack.stop()
    return code
