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


class PortError(ValueError):
    """A port number the stack refuses, with the reason in one line."""


def port_number(text: str) -> int:
    """A TCP port to listen on: 1-65535. 0 is refused (the OS would pick one
    the stack cannot announce, and a client could not find it)."""
    try:
        port = int(text.strip())
    except ValueError:
        raise PortError(f"port {text!r} is not a number: use 1-65535") from None
    if port == 0:
        raise PortError("port 0 is refused: it means 'any free port', which no client "
                        "could find; use 1-65535")
    if not 1 <= port <= 65535:
        raise PortError(f"port {port} is out of range: use 1-65535")
    return port


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def flag(text: str) -> bool:
    """1/true/yes/on or 0/false/no/off (any case); anything else is an error."""
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"{text!r} is not one of 1/true/yes/on or 0/false/no/off")
