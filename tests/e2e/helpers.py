"""What the end-to-end tests share: waiting for the stream, starting and stopping a stack."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from devstack import faults
from devstack.background import LiveStack, alive, descendants, start_stack
from devstack.ports import HOST, free_port, port_is_free

__all__ = ["HOST", "LiveStack", "alive", "descendants", "free_port",
           "port_is_free", "start_stack", "store_stall", "wait_until"]



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


def set_stall(stack: LiveStack, seconds: float, only: str | None = None) -> None:
    """Make the stack's DynamoDB hang for `seconds` (0: answer again now); `only`: just
    that operation's requests (say "TransactWriteItems": the reads still answer)."""
    request = urllib.request.Request(
        stack.moto_url + faults.STALL_PATH,
        data=json.dumps({"seconds": seconds, **({"only": only} if only else {})}).encode(),
        method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:  # nosec B310: loopback
        assert response.status == 200


@contextmanager
def store_stall(stack: LiveStack, seconds: float = 60.0,
                only: str | None = None) -> Iterator[Callable[[], None]]:
    """A stalled store; call the yielded function to end the stall (it ends on exit too)."""
    set_stall(stack, seconds, only)
    try:
        yield lambda: set_stall(stack, 0)
    finally:
        set_stall(stack, 0)
