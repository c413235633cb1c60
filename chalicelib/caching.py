"""Every cached read the deployed code makes, in one place.

A cache is a promise about load: a container that serves many requests reads
the table once per lifetime instead of once per request. The scale model
(bench/) prices each cache from this registry, and a test drives every route
under a controlled clock to check that nothing is cached that is not
registered here, and that each registered cache expires when it says it does.

    per process  every warm container refills it once per lifetime
    per table    one container refills it for all (the others read what it wrote)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["process", "table"]


@dataclass(frozen=True)
class CachedRead:
    name: str
    seconds: float
    scope: Scope
    reads: str  # what a refill reads, for people; the model measures it

    def stale(self, loaded_at: float, now: float) -> bool:
        return now - loaded_at > self.seconds


REGISTRY: dict[str, CachedRead] = {}


def cached_read(name: str, seconds: float, reads: str, scope: Scope = "process") -> CachedRead:
    """Declare a cached read; the one way a module gets a cache lifetime."""
    if name in REGISTRY and REGISTRY[name] != CachedRead(name, seconds, scope, reads):
        raise ValueError(f"cache {name!r} declared twice, differently")
    entry = REGISTRY[name] = CachedRead(name, seconds, scope, reads)
    return entry


def registered() -> tuple[CachedRead, ...]:
    """Every cache, shortest lifetime first."""
    return tuple(sorted(REGISTRY.values(), key=lambda c: (c.seconds, c.name)))
