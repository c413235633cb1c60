"""Greedy path variables (`/{proxy+}`) in chalice local's router, as API Gateway has them.

Chalice's local router matches a route segment by segment, so `/{proxy+}`
matches one-segment paths only and names the parameter "proxy+"; every
longer unknown path gets a 403 "Missing Authentication Token" that API
Gateway, with the same route, would send to the function. Here a path that no
other route matches goes to the longest greedy route whose prefix it has,
with the parameter named as API Gateway names it ("proxy", the rest of the
path). Used by devstack's `chalice local` and by the functional tests' client.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice import local

_GREEDY = re.compile(r"^(?P<prefix>.*)/\{(?P<name>\w+)\+\}$")


def _greedy_match(route_urls: list[str], url: str) -> Any:
    parsed = urlparse(url)
    path = parsed.path
    if path != "/" and path.endswith("/"):
        path = path[:-1]
    candidates = []
    for route in route_urls:
        greedy = _GREEDY.match(route)
        if greedy is None:
            continue
        prefix = greedy["prefix"]
        if path.startswith(prefix + "/") and len(path) > len(prefix) + 1:
            candidates.append((len(prefix), route, greedy["name"], path[len(prefix) + 1:]))
    if not candidates:
        return None
    _, route, name, rest = max(candidates)
    return local.MatchResult(route, {name: rest},
                             parse_qs(parsed.query, keep_blank_values=True))


def install() -> bool:
    """Patch chalice.local's router; False if it was already patched."""
    original = local.RouteMatcher.match_route
    if getattr(original, "greedy", False):
        return False

    def match_route(self: local.RouteMatcher, url: str) -> local.MatchResult:
        try:
            result = original(self, url)
        except ValueError:
            result = None
        # The segment-by-segment match of a greedy route names its parameter
        # "proxy+"; redo it the way API Gateway does.
        if result is not None and _GREEDY.match(result.route) is None:
            return result
        greedy = _greedy_match(self.route_urls, url)
        if greedy is None:
            raise ValueError(f"No matching route found for: {url}")
        return greedy  # type: ignore[no-any-return]

    match_route.greedy = True  # type: ignore[attr-defined]
    local.RouteMatcher.match_route = match_route  # type: ignore[method-assign]
    return True
