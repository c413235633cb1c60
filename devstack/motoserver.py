"""moto's server app, one request at a time.

moto keeps its state in plain Python objects without locks, so two requests
at once (chalice local and the stream runner) could corrupt it. Connections
are served by threads, so HTTP keep-alive works and no client waits for
another's idle connection, but the app itself runs under one lock: requests
are handled strictly one after another. (A non-threaded server would also
serialise them, but must close every connection: about twice as slow.)

It also keeps moto's transactions from copying the stream's whole history
(see `share_stream_shards`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from devstack import faults

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class QuietRequestHandler(MotoRequestHandler):
    """No access-log line per request: the stream runner polls many times a second."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).startswith("5"):
            super().log_request(code, size)


class SerialApp:
    """Run the wrapped WSGI app, response body included, under one lock."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            response = self._app(environ, start_response)
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


def share_stream_shards() -> bool:
    """Make moto's TransactWriteItems keep, not copy, each table's stream shard.

    moto deep-copies every table before a transaction, to put the copy back
    if the transaction fails. The copy includes every stream record so far:
    it took ~100 ms per 1000 records, under moto's one lock, on every
    add-to-cart (popularity) and checkout, so the whole stack slowed as the
    session went on. And a put-back copy carries a new shard object, so
    every shard iterator handed out before reads the old one and never sees
    another record. Here the copy shares the shard, and when a transaction
    fails the records its undone writes emitted are taken back out.
    Returns False, changing nothing, if moto's internals are not as expected.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    original = getattr(DynamoDBBackend, "transact_write_items", None)
    if original is None or getattr(original, "shares_stream_shards", False) \
            or not callable(getattr(StreamShard, "add", None)):
        return False

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        marks = [(name, table.stream_shard, len(table.stream_shard.items))
                 for name, table in self.tables.items()
                 if getattr(table, "stream_shard", None) is not None]
        try:
            original(self, transact_items)
        except Exception:
            for name, shard, length in marks:
                del shard.items[length:]  # emitted by writes moto has undone
                if name in self.tables:
                    self.tables[name].stream_shard = shard
            raise

    transact_write_items.shares_stream_shards = True  # type: ignore[attr-defined]
    StreamShard.__deepcopy__ = lambda shard, memo: shard  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    return True


def serve(host: str, port: int) -> None:
    if not share_stream_shards():
        print("devstack moto: could not patch moto's transactions (a new moto?); "
              "stream reads still work, transactions slow down as the stream grows",
              file=sys.stderr, flush=True)
    app: WSGIApp = SerialApp(DomainDispatcherApplication(create_backend_app))
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
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
