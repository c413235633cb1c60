"""`chalice local`, unchanged but for a few settings of its dev server.

- TCP_NODELAY: the server writes headers and body separately; with Nagle's
  algorithm on, every response on a kept-alive connection waits ~40 ms for
  a delayed ACK.
- A listen backlog of 128 instead of socketserver's 5, so a burst of new
  connections (16 shoppers at once) is queued, not refused or reset.
- One access line per request: the app's middleware already writes one (JSON,
  with the request id), so the server's own Apache-style line is written
  only for what never reaches the app (an error of chalice local's own
  gateway).
- At most `runtime.MAX_POOL_CONNECTIONS` requests run the app at once:
  the server starts a thread per connection with no bound, and every thread
  past botocore's pool size made urllib3 warn "Connection pool is full,
  discarding connection" and open a new connection to moto.
- A client that goes away (a cancelled fetch, a closed tab) is not an error:
  no BrokenPipe / ConnectionReset traceback.

And one routing fix: greedy routes (`/{proxy+}`, the app's 404) match
as they do on API Gateway (devstack/greedy_routes.py).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from chalice import local  # noqa: E402
from chalice.cli import cli  # noqa: E402

from chalicelib.logging_setup import ACCESS_LOGGER  # noqa: E402
from chalicelib.runtime import MAX_POOL_CONNECTIONS  # noqa: E402
from devstack import greedy_routes  # noqa: E402

GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
_this_request = threading.local()
_app_slots = threading.BoundedSemaphore(MAX_POOL_CONNECTIONS)


class _NoteAppAccessLine:
    """A logging filter on the app's access logger: this thread's request is logged."""

    def filter(self, record: Any) -> bool:
        _this_request.logged = True
        return True


class QuietChaliceRequestHandler(local.ChaliceRequestHandler):
    disable_nagle_algorithm = True

    def _generic_handle(self) -> None:
        _this_request.logged = False
        with _app_slots:
            super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not getattr(_this_request, "logged", False):
            super().log_request(code, size)


class QuietThreadedHTTPServer(local.ThreadedHTTPServer):
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], GONE):
            return  # the client left; there is nobody to answer
        super().handle_error(request, client_address)


class QuietLocalDevServer(local.LocalDevServer):
    def __init__(self, app_object: Any, config: Any, host: str, port: int,
                 handler_cls: Any = QuietChaliceRequestHandler,
                 server_cls: Any = QuietThreadedHTTPServer) -> None:
        super().__init__(app_object, config, host, port, handler_cls, server_cls)


def install() -> None:
    """Make `chalice local` build its server from the classes above."""
    import logging

    logging.getLogger(ACCESS_LOGGER).addFilter(_NoteAppAccessLine())
    # "Found credentials in environment variables." on every start: noise here.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # local.create_local_server looks LocalDevServer up in its module.
    local.LocalDevServer = QuietLocalDevServer  # type: ignore[misc]
    greedy_routes.install()


if __name__ == "__main__":
    install()
    args = sys.argv[1:]
    # chalice's reloader starts its worker by running sys.argv as a command:
    # make that command this interpreter on this file.
    sys.argv = [sys.executable, __file__, *args]
    sys.exit(cli(args=args, obj={}, prog_name="chalice"))
