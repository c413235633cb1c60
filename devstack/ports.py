"""The local stack's one host, and the questions asked about its ports."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def local_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def bind_error(port: int) -> OSError | None:
    """Why a server could not bind the port now; None when it could.

    As the servers do, a closed connection in TIME_WAIT does not hold the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            return exc
        return None


def port_is_free(port: int) -> bool:
    return bind_error(port) is None
