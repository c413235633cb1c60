"""`chalice local`, unchanged but for TCP_NODELAY on the dev server's sockets.

The dev server writes headers and body separately; with Nagle's algorithm on,
every response on a kept-alive connection waits ~40 ms for a delayed ACK.
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

local.ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(main())
