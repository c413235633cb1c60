"""`chalice local`, unchanged but for two socket settings of its dev server.

- TCP_NODELAY: the server writes headers and body separately; with Nagle's
  algorithm on, every response on a kept-alive connection waits ~40 ms for
  a delayed ACK.
- A listen backlog of 128 instead of socketserver's 5, so a burst of new
  connections (16 shoppers at once) is queued, not refused or reset.

And one routing fix: greedy routes (`/{proxy+}`, the app's 404) match
as they do on API Gateway (devstack/greedy_routes.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from chalice import local
from chalice.cli import cli

# Run as a script (chalice's reloader re-runs this file), so sys.path starts
# at devstack/, not at the project root where the devstack package lives.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devstack import greedy_routes  # noqa: E402

local.ChaliceRequestHandler.disable_nagle_algorithm = True
local.ThreadedHTTPServer.request_queue_size = 128
greedy_routes.install()

if __name__ == "__main__":
    args = sys.argv[1:]
    # chalice's reloader starts its worker by running sys.argv as a command:
    # make that command this interpreter on this file.
    sys.argv = [sys.executable, __file__, *args]
    sys.exit(cli(args=args, obj={}, prog_name="chalice"))
