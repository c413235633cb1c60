"""`python -m devstack run`: the whole local stack, each part its own process.

moto server → table bootstrap (restored from the last snapshot) → stream
runner → `chalice local`. Every child runs in its own process group, so
stopping one stops everything it forked (chalice local's reloader forks a
worker). Their output goes to the terminal and to build/devstack/stack.log
(`make logs`). Ctrl-C or SIGTERM stops them in order: the app, the runner,
then moto, which saves the table as it goes. A child that dies is restarted
with a one-line message, with what depends on it (a new moto means a
restored table and a new stream for the runner); past RESTARTS in
RESTART_WINDOW the stack stops with the cause.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import select
import signal
import socket
import subprocess  # nosec B404: the supervisor's job is to start the stack's processes
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from devstack.bootstrap import SnapshotError
from devstack.environment import PROJECT_DIR, StageError, moto_environment, stage_variables
from devstack.pool_snapshot import FILE_NAME as ACCOUNTS
from devstack.ports import HOST, bind_error, local_url

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
REQUIRED = ("moto", "flask", "werkzeug", "chalice", "boto3")


class StackError(RuntimeError):
    """Why the stack cannot start or had to stop: printed as one line."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while the stack was starting."""


RESTARTS = 3  # a child restarted more often than this within RESTART_WINDOW stops the stack
RESTART_WINDOW = 60.0
SNAPSHOT = "table.json"
CHECKPOINT = "stream-position.json"
PARKED = "parked.jsonl"
LOG = "stack.log"


class Output:
    """Copy the children's output to the terminal and to one log file (`make logs`)."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._log = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size:
                path.replace(path.with_name(path.name + ".1"))  # the last run's, for a crash
            self._log = path.open("ab", buffering=0)

    def write(self, line: bytes, stream: Any) -> None:
        with self._lock:
            with contextlib.suppress(OSError, ValueError):
                stream.write(line)
                stream.flush()
            if self._log is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._log.write(line)

    def pump(self, pipe: Any, stream: Any) -> None:
        threading.Thread(target=self._copy, args=(pipe, stream), daemon=True).start()

    def _copy(self, pipe: Any, stream: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in iter(pipe.readline, b""):
                self.write(line, stream)
        with contextlib.suppress(OSError):
            pipe.close()

    def say(self, line: str, error: bool = False) -> None:
        stream = sys.stderr if error else sys.stdout
        self.write((line + "\n").encode(), getattr(stream, "buffer", stream))


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)

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
            time.sleep(0.01)
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
    verbose: bool = False
    tail_remote: bool = False
    fresh: bool = False
    ttl_interval: float = 60.0
    output: Output | None = None
    children: list[Child] = field(default_factory=list)
    _env: dict[str, str] = field(default_factory=dict)
    _table_name: str = ""

    @property
    def url(self) -> str:
        return local_url(self.port)

    @property
    def moto_url(self) -> str:
        return local_url(self.moto_port)

    @property
    def snapshot(self) -> Path:
        return self.state_dir / SNAPSHOT

    @property
    def checkpoint(self) -> Path:
        return self.state_dir / CHECKPOINT

    def say(self, line: str, error: bool = False) -> None:
        if self.output is None:
            self.output = Output(None)
        self.output.say(line, error)

    def child(self, name: str) -> Child | None:
        return next((child for child in self.children if child.name == name), None)

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
        if not self.use_moto and self.streams and not self.tail_remote:
            raise StackError(f"--no-moto tails table {table_name} in your AWS account: add "
                             "--no-streams (the deployed mapping runs the follow-ups) or "
                             "--tail-remote if you mean it")
        ports = [self.port] + ([self.moto_port] if self.use_moto else [])
        if len(set(ports)) != len(ports):
            raise StackError("--port and --moto-port must differ")
        for port in ports:
            ensure_free(port)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.output is None:
            self.output = Output(self.state_dir / LOG)
        if self.fresh:
            self._forget()
        # No .pyc writes: chalice local's reloader restarts on any new file.
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TABLE_NAME=table_name)
        self._table_name = table_name
        if self.use_moto:
            env = moto_environment(env, self.moto_url)
            self._env = env
            self._start_moto()
        else:
            self._env = env
            self.say(f"devstack: no moto: stage {self.stage!r}, table {table_name} "
                     "in your AWS account (nothing is created)")
        if self.streams:
            self._start_streams()
        else:
            self.say("devstack: no stream runner (--no-streams)")
        self._start_chalice()
        reloading = "reloads on file changes" if self.reload else "no reload"
        self.say(f"devstack: chalice local stage {self.stage}, table {table_name} ({reloading})")
        self.say(f"devstack: ready at {self.url}  (Ctrl-C stops everything; "
                 f"`make logs` follows {shown(self.state_dir / LOG)})")

    def _forget(self) -> None:
        removed = []
        for path in (self.snapshot, self.checkpoint, self.state_dir / PARKED,
                     self.state_dir / ACCOUNTS):
            if path.exists():
                path.unlink()
                removed.append(path.name)
        self.say(f"devstack: starting clean (removed {', '.join(removed) or 'nothing'} "
                 f"in {shown(self.state_dir)})")

    def _start_moto(self) -> None:
        self._spawn("moto server", [sys.executable, "-m", "devstack", "moto",
                                    "--port", str(self.moto_port),
                                    "--snapshot", str(self.snapshot),
                                    "--table", self._table_name,
                                    "--ttl-interval", str(self.ttl_interval)])
        wait_for_port(self.moto_port, self.children[-1])
        expiry = (f"TTL expiry every {self.ttl_interval:g} s" if self.ttl_interval > 0
                  else "TTL expiry off")
        self.say(f"devstack: moto server   {self.moto_url} "
                 f"(DynamoDB + Streams, in memory, one request at a time; {expiry})")
        self._bootstrap()
        self._env.update(self._bootstrap_accounts())

    def _bootstrap(self) -> None:
        import boto3

        from devstack.bootstrap import bootstrap as seed
        from devstack.bootstrap import ensure_table, restore
        from devstack.runner import mark_start

        # The same settings the children get: moto, dummy keys, no profile.
        os.environ.clear()
        os.environ.update(self._env)
        client = boto3.client("dynamodb")
        arn, created = ensure_table(client, self._table_name)
        restored = restore(client, self._table_name, self.snapshot) if created else None
        seed(client, self._table_name)
        mark_start(self.checkpoint, boto3.client("dynamodbstreams"), arn)
        save_snapshot(self.moto_url)  # from now on moto saves the table as it changes
        kept = (f"{restored} items restored from {shown(self.snapshot)}"
                if restored is not None else "created" if created else "kept")
        self.say(f"devstack: table         {self._table_name} ({kept}; stream + TTL, "
                 "catalog seeded)")

    def _bootstrap_accounts(self) -> dict[str, str]:
        import boto3

        from devstack.accounts import user_pool_environment

        # os.environ is the moto environment _bootstrap set.
        variables, created = user_pool_environment(boto3.client("cognito-idp"),
                                                   self._table_name, self.moto_url)
        restored = control(self.moto_url, "accounts-restore").get("restored", 0)
        kept = f"{restored} accounts restored" if restored else (
            "created" if created else "kept")
        self.say(f"devstack: user pool     {variables['COGNITO_USER_POOL_ID']} "
                 f"({kept}; moto accepts ANY confirmation code)")
        return variables

    def _start_streams(self) -> None:
        read_end, write_end = os.pipe()
        argv = [sys.executable, "-m", "devstack", "streams", "--stage", self.stage,
                "--table", self._table_name, "--park-file", str(self.state_dir / PARKED),
                "--checkpoint", str(self.checkpoint), "--ready-fd", str(write_end)]
        argv += ["--verbose"] if self.verbose else []
        argv += ["--tail-remote"] if self.tail_remote else []
        try:
            self._spawn("stream runner", argv, pass_fds=(write_end,))
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
        verbosity = "a line per batch" if self.verbose else "VERBOSE=1 logs each batch"
        self.say(f"devstack: stream runner after the restore and seed; parks failing "
                 f"records in {shown(self.state_dir / PARKED)} ({verbosity})")

    def _start_chalice(self) -> None:
        if importlib.util.find_spec("chalice") is None:
            raise StackError("missing dependency: chalice (run `make install`)")
        argv = [sys.executable, str(Path(__file__).with_name("chalice_local.py")),
                "local", "--stage", self.stage, "--host", HOST, "--port", str(self.port)]
        self._spawn("chalice local", argv + ([] if self.reload else ["--no-autoreload"]))
        wait_for_http(f"{self.url}/api/products", self.children[-1])

    def _spawn(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        process = subprocess.Popen(  # nosec B603: fixed argv, no shell
            argv, cwd=PROJECT_DIR, env=dict(self._env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, pass_fds=pass_fds, preexec_fn=_die_with_parent,
        )
        output = self.output or Output(None)
        output.pump(process.stdout, getattr(sys.stdout, "buffer", sys.stdout))
        output.pump(process.stderr, getattr(sys.stderr, "buffer", sys.stderr))
        previous = self.child(name)
        child = Child(name, process, previous.restarts if previous else [])
        if previous is not None:
            self.children[self.children.index(previous)] = child
        else:
            self.children.append(child)

    def crashed(self) -> Child | None:
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def revive(self, child: Child, now: float | None = None) -> None:
        """Restart a child that died, and what depends on it; StackError past the bound."""
        now = time.monotonic() if now is None else now
        code = child.process.returncode
        child.restarts[:] = [t for t in child.restarts if now - t < RESTART_WINDOW] + [now]
        if len(child.restarts) > RESTARTS:
            raise StackError(f"the {child.name} exited with code {code}, "
                             f"{len(child.restarts)} times in {RESTART_WINDOW:.0f} s; "
                             "stopping the stack")
        self.say(f"devstack: the {child.name} exited with code {code}; restarting it "
                 f"({len(child.restarts)}/{RESTARTS})", error=True)
        stop_all([child], timeout=1.0)  # what it forked
        if child.name == "moto server":
            # The table and its stream died with moto: the runner's iterators
            # point at nothing. The app is paused (its requests wait in the
            # listen queue) until the table is restored from the last snapshot
            # and the runner's start is marked after the restore: a shopper's
            # write in between would otherwise be skipped as restored data,
            # or meet a table that does not exist yet.
            app = self.child("chalice local")
            runner = self.child("stream runner")
            pool = {k: v for k, v in self._env.items() if k.startswith("COGNITO_")}
            if app is not None:
                app.signal(signal.SIGSTOP)
            try:
                if runner is not None:
                    stop_all([runner], timeout=2.0)
                self._start_moto()
                if app is not None and pool != {
                        k: v for k, v in self._env.items() if k.startswith("COGNITO_")}:
                    # A new moto has a new user pool, and chalice local read the
                    # pool's id at start: a new one, before any request runs.
                    app.signal(signal.SIGKILL)
                    app.signal(signal.SIGCONT)
                    stop_all([app], timeout=2.0)
                    self._start_chalice()
                    app = None
            finally:
                if app is not None:
                    app.signal(signal.SIGCONT)
            if runner is not None:
                self._start_streams()
        elif child.name == "stream runner":
            self._start_streams()
        else:
            self._start_chalice()

    def stop(self) -> list[str]:
        """Stop every child, in order; the names stopped."""
        # The app first (no new writes), then the runner (it finishes what it
        # has read), then moto (it saves the table as it stops): nothing
        # reads moto after it is gone, so nothing logs a connection error.
        stopped = []
        for name in ("chalice local", "stream runner", "moto server"):
            child = self.child(name)
            if child is not None:
                child.signal(signal.SIGCONT)  # paused while moto restarted: let it stop
                stop_all([child])
                stopped.append(name)
        stop_all(self.children)  # anything else, normally nothing
        self.children.clear()
        return stopped


def shown(path: Path) -> str:
    """A path as a user types it: relative to the project when inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def save_snapshot(moto_url: str) -> None:
    """Ask the moto server to save the table now (and whenever it changes after)."""
    try:
        control(moto_url, "snapshot")
    except StackError as exc:
        raise StackError(f"the moto server did not save the table: {exc}") from exc


def control(moto_url: str, name: str) -> dict[str, Any]:
    """POST one of the moto server's /_devstack/ controls; its JSON answer."""
    request = urllib.request.Request(f"{moto_url}/_devstack/{name}", data=b"",
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310: loopback
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except (OSError, ValueError) as exc:
        raise StackError(f"the moto server's {name} control failed: {exc}") from exc


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
    """Start the stack, restart a child that dies, stop everything on Ctrl-C / SIGTERM."""
    stopping: list[int] = []
    started = False
    code = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if not started:
            raise Interrupted(signum)  # leave whatever wait start() is in

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    # A signal (Ctrl-C, a child's exit) wakes the wait below at once; idle, it
    # wakes once a second, so the supervisor costs next to nothing.
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        stack.start()
        started = True
        while not stopping:
            child = stack.crashed()
            if child is not None:
                started = False  # a signal during the restart interrupts it
                stack.revive(child)
                started = True
                continue
            select.select([wake_read], [], [], 1.0)
            with contextlib.suppress(OSError):
                os.read(wake_read, 512)
        stack.say("devstack: stopping")
    except Interrupted:
        stack.say("devstack: interrupted; stopping" if started or stack.children
                  else "devstack: interrupted while starting; stopping")
    except (StackError, StageError, SnapshotError) as exc:
        stack.say(f"devstack: {exc}", error=True)
        code = 1
    except Exception as exc:  # still one line, and still no orphan
        stack.say(f"devstack: {type(exc).__name__}: {exc}", error=True)
        code = 1
    finally:
        started = True  # a second Ctrl-C must not interrupt the cleanup
        began = time.monotonic()
        stopped = stack.stop()
    if stopped:
        stack.say(f"devstack: stopped {', '.join(stopped)} in "
                  f"{time.monotonic() - began:.2f} s")
    return code
