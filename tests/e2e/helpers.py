"""What the end-to-end tests share: waiting for the stream, starting and stopping a stack."""

from __future__ import annotations

import time
from collections.abc import Callable

from devstack.background import LiveStack, alive, descendants, start_stack
from devstack.ports import HOST, free_port, port_is_free

__all__ = ["HOST", "LiveStack", "alive", "descendants", "free_port",
           "port_is_free", "start_stack", "wait_until"]



def wait_until[T](predicate: Callable[[], T], timeout: float = 5.0,
               interval: float = 0.05) -> T:
    """The predicate's first truthy value; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate!r} -> {value!r}")
        time.sleep(interval)
