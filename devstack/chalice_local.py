"""`chalice local`, unchanged but for TCP_NODELAY on the dev server's sockets.

The dev server writes headers and body separately; with Nagle's algorithm on,
every response on a kept-alive connection waits ~40 ms for a delayed ACK.
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import cli

local.ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    args = sys.argv[1:]
    # chalice's reloader starts its worker by running sys.argv as a command:
    # make that command this interpreter on this file.
    sys.argv = [sys.executable, __file__, *args]
    sys.exit(cli(args=args, obj={}, prog_name="chalice"))
