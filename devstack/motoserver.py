"""moto's server app, one request at a time.

moto keeps its state in plain Python objects without locks, so two requests
at once (chalice local and the stream runner) could corrupt it. Connections
are served by threads, so HTTP keep-alive works and no client waits for
another's idle connection, but the app itself runs under one lock: requests
are handled strictly one after another. (A non-threaded server would also
serialise them, but must close every connection: about twice as slow.)

It also keeps moto's memory and latency flat over a long session
(devstack.moto_memory: no registry of every object, transactions that undo
item by item instead of copying tables, iterators and stream records that
expire as on AWS), saves the local table to a file when it changed
and when the server stops (`Snapshotter`: moto keeps nothing on disk), and
answers a few control requests under `/_devstack/` (`CONTROLS`: the place
for test-only hooks; `POST /_devstack/snapshot` saves the table now,
`POST /_devstack/ttl-sweep` expires what is due now: devstack.ttl;
`POST /_devstack/accounts-restore` puts the saved local accounts back:
devstack.pool_snapshot).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from devstack import faults
from devstack.moto_memory import bound_memory
from devstack.pool_snapshot import FILE_NAME as ACCOUNTS_FILE
from devstack.pool_snapshot import PoolSnapshot
from devstack.table_mirror import TableMirror
from devstack.ttl import DEFAULT_INTERVAL, Sweeper

# A save that took t seconds waits SAVE_SHARE_WAIT * t before the next: at most ~5%
# of the server's time goes to saving, however big the table grows.
SAVE_SHARE_WAIT = 19.0

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class QuietRequestHandler(MotoRequestHandler):
    """No access-log line per request: the stream runner polls many times a second."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith("5"):
            super().log_request(code, size)


# A control request: the server (its lock, its snapshotter) and the WSGI
# environ in; a status code and a JSON body out. It runs outside the lock,
# so a hook may take the lock itself (to stall the store, say).
Control = Callable[["SerialApp", dict[str, Any]], tuple[int, dict[str, Any]]]
CONTROL_PREFIX = "/_devstack/"
CONTROLS: dict[str, Control] = {}


class SerialApp:
    """Run the wrapped WSGI app, response body included, under one lock."""

    def __init__(self, app: WSGIApp, snapshotter: Snapshotter | None = None) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.snapshotter = snapshotter
        self.sweeper: Sweeper | None = None
        self.accounts: PoolSnapshot | None = None

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> list[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self._control(path[len(CONTROL_PREFIX):], environ, start_response)
        with self._lock:
            response = self._app(environ, start_response)
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()

    def _control(self, name: str, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> list[bytes]:
        control = CONTROLS.get(name)
        if control is None or environ.get("REQUEST_METHOD") != "POST":
            status, body = 404, {"Code": "NotFound", "Message": f"no control {name!r}"}
        else:
            status, body = control(self, environ)
        payload = json.dumps(body).encode()
        start_response(f"{status} {'OK' if status < 400 else 'Error'}",
                       [("Content-Type", "application/json"),
                        ("Content-Length", str(len(payload)))])
        return [payload]


class Snapshotter:
    """Save one table's items to a JSON file: when it changed, and at stop.

    Runs inside the moto server, under the server's lock, so a snapshot is
    one consistent moment between two requests. "Changed" is read off the
    table's stream (every write adds a record), so an idle check costs no
    request and no copy, and so are the items (devstack.table_mirror: each save
    applies the records since the last one, not the whole table). A save that
    took t seconds waits 19 t before the next, so a big table is saved less
    often (a crash loses at most that much more), never the store's time.
    The file is replaced atomically: a crash mid-write leaves the previous
    snapshot. It saves nothing until armed (the first
    `POST /_devstack/snapshot`, sent once the table is restored): a new,
    still empty table must not overwrite the snapshot it is restored from.
    """

    def __init__(self, path: Path, table_name: str, lock: threading.Lock | None = None,
                 interval: float = 1.0) -> None:
        self.path = path
        self.table_name = table_name
        self.lock = lock or threading.Lock()
        self.interval = interval
        self._saved_marker: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self.armed = False
        self.sequence_floor = 0
        self._mirror = TableMirror()
        self._not_before = 0.0
        # Saved on the same beat, with the same lock (the local pool's users).
        self.companions: list[PoolSnapshot] = []

    def continue_sequence_numbers(self) -> int:
        """Number this server's stream records after the saved table's last one.

        In DynamoDB a stream's sequence numbers only grow. moto starts each
        stream at the same number, so after a restart every new record would
        look older than what the restored items remember (the popularity
        holder marks keep the last sequence applied, and refuse older ones):
        the new stream starts past the saved last sequence instead. Returns
        the floor (0: nothing saved).
        """
        from moto.dynamodb.models.table import StreamShard

        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            floor = int(saved.get("lastSequenceNumber", 0)) + 1
        except (OSError, ValueError):
            return 0
        original = StreamShard.__init__

        def starting_after(shard: Any, *args: Any, **kwargs: Any) -> None:
            original(shard, *args, **kwargs)
            shard.starting_sequence_number = max(shard.starting_sequence_number, floor)

        StreamShard.__init__ = starting_after  # type: ignore[method-assign,assignment]
        self.sequence_floor = floor
        return floor

    def _table(self) -> Any:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        for region, backend in dynamodb_backends[DEFAULT_ACCOUNT_ID].items():
            table = backend.tables.get(self.table_name)
            if table is not None:
                return region, table
        return None, None

    def _marker(self, table: Any) -> tuple[int, int, int]:
        shard = getattr(table, "stream_shard", None)
        # The next sequence number: it moves on every write, even once old records are trimmed.
        records = shard.starting_sequence_number + len(shard.items) if shard is not None else 0
        return id(table), records, len(table)

    def save(self, force: bool = False) -> int | None:
        """Write the snapshot if the table changed (or `force`); the items written."""
        if force:
            self.armed = True
        if not self.armed:
            return None
        with self.lock:
            region, table = self._table()
            if table is None:
                return None  # not created yet, or being re-created: keep the last file
            marker = self._marker(table)
            if not force and marker == self._saved_marker:
                return None
            if not force and time.monotonic() < self._not_before:
                return None  # the last save was long: wait, so saving stays a small share
            began = time.monotonic()
            items = self._mirror.items(table)
            shard = getattr(table, "stream_shard", None)
            last = shard.starting_sequence_number + len(shard.items) if shard else 0
        self._write({"table": self.table_name, "region": region, "items": items,
                     "lastSequenceNumber": str(max(last, self.sequence_floor))})
        self._saved_marker = marker
        # Writing the file holds Python's GIL, so it delays requests too: a save
        # that took t seconds is followed by at least SAVE_SHARE_WAIT * t without one
        # (the loop waits `interval` anyway: only a save over ~50 ms waits longer).
        took = time.monotonic() - began
        self._not_before = time.monotonic() + took * SAVE_SHARE_WAIT - self.interval
        return len(items)

    def _write(self, snapshot: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".snapshot-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(snapshot, out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            savers: list[Snapshotter | PoolSnapshot] = [self, *self.companions]
            for saver in savers:
                try:
                    saver.save()
                except Exception as exc:  # keep serving; say why nothing is saved
                    print(f"devstack moto: cannot save {saver.path}: {exc}", file=sys.stderr,
                          flush=True)

    def start(self) -> None:
        threading.Thread(target=self.run, name="snapshot", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.save()
        for companion in self.companions:
            companion.save()


def _save_now(server: SerialApp, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if server.snapshotter is None:
        return 409, {"Code": "NoSnapshot", "Message": "started without --snapshot"}
    items = server.snapshotter.save(force=True)
    return 200, {"items": items, "path": str(server.snapshotter.path)}


CONTROLS["snapshot"] = _save_now


def _sweep_now(server: SerialApp, environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if server.sweeper is None:
        return 409, {"Code": "NoSweeper", "Message": "started with the TTL sweep off"}
    deleted, trimmed = server.sweeper.sweep_now()
    return 200, {"expired": deleted, "streamRecordsTrimmed": trimmed}


CONTROLS["ttl-sweep"] = _sweep_now


def _restore_accounts(server: SerialApp,
                      environ: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if server.accounts is None:
        return 409, {"Code": "NoSnapshot", "Message": "started without --snapshot"}
    try:
        restored = server.accounts.restore()
    except LookupError as exc:
        return 409, {"Code": "NoUserPool", "Message": str(exc)}
    return 200, {"restored": restored, "path": str(server.accounts.path)}


CONTROLS["accounts-restore"] = _restore_accounts


def serve(host: str, port: int, snapshot: Path | None = None, table_name: str | None = None,
          snapshot_interval: float = 1.0, ttl_interval: float = DEFAULT_INTERVAL) -> None:
    refused = bound_memory()
    if refused:
        print(f"devstack moto: moto's internals changed (a new moto?): not applied: "
              f"{', '.join(refused)}; memory and latency grow over a session",
              file=sys.stderr, flush=True)
    serial = SerialApp(DomainDispatcherApplication(create_backend_app))
    if snapshot is not None and table_name:
        serial.snapshotter = Snapshotter(snapshot, table_name, serial.lock, snapshot_interval)
        serial.snapshotter.continue_sequence_numbers()
        # The local pool is named after the table (devstack.accounts).
        serial.accounts = PoolSnapshot(snapshot.with_name(ACCOUNTS_FILE), table_name,
                                       serial.lock)
        serial.snapshotter.companions.append(serial.accounts)
        serial.snapshotter.start()
    if ttl_interval > 0:  # 0: items never expire, as on plain moto
        serial.sweeper = Sweeper(serial.lock, ttl_interval)
        serial.sweeper.start()
    app: WSGIApp = serial
    if faults.enabled(os.environ):
        # Outside the lock: a stalled request must not hold up the control path.
        app = faults.FaultApp(app)
        print(f"devstack moto: test faults on ({faults.ENV_FLAG}=1): "
              f"POST {faults.STALL_PATH}", file=sys.stderr, flush=True)
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass  # return, so that __main__ exits without tearing down moto's modules
    finally:
        server.server_close()
        if serial.sweeper is not None:
            serial.sweeper.stop()
        if serial.snapshotter is not None:
            serial.snapshotter.stop()
