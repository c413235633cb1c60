"""What every request passes before a view runs: the cross-origin check, HEAD, HSTS.

Cross-origin writes. SameSite=Lax keeps the cookies off a cross-*site* POST,
but not off a *same-site* one (another port of the host, a sibling subdomain
of a custom domain), and a bodyless write (checkout, remove, sign-out) needs
no Content-Type a form could not send. So every request that may change
something (any method but GET, HEAD, OPTIONS) is refused with a 403 when the
browser says it comes from elsewhere:

- `Sec-Fetch-Site: cross-site` or `same-site` (every current browser sends it,
  and a page cannot forge it), or
- an `Origin` that is not the shop's own (`null` included).

A request with neither header is not from a browser page's script or form (a
browser sends Origin on every cross-origin POST, PUT and DELETE), so plain API
clients such as curl keep working, and they carry no victim's cookies.

The shop's own origin: the stage's SHOP_ORIGINS (comma-separated, e.g.
`https://shop.example.com`) when set: behind a proxy or CDN that rewrites Host,
this is the only right answer. Without it, the origin the request was sent to:
`X-Forwarded-Proto` (API Gateway and every proxy set it; http without) and
`X-Forwarded-Host` or else `Host`. A page cannot make a victim's browser send a
Host or X-Forwarded-Host of its choosing cross-origin: Host is the target's, and
X-Forwarded-Host is not a CORS-safelisted header, so it needs a preflight this
shop never grants.

Cost: no request to anything; a few string comparisons per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from chalice.app import Request, Response, RouteEntry

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})
CROSS_ORIGIN_MESSAGE = "requests from another site's pages may not change anything here"
# Two years, the preload list's minimum; no includeSubDomains: a custom domain's
# other hosts are the operator's to decide (docs/OPERATIONS.md, "Security").
HSTS = "max-age=63072000"


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


def own_origins(headers: Mapping[str, str], configured: str | None) -> frozenset[str]:
    """The origins this request's own pages have: configured, else the request's host."""
    if configured:
        return frozenset(_origin(o) for o in configured.split(",") if o.strip())
    scheme = _origin(headers.get("x-forwarded-proto", "") or "http").split(",")[0].strip()
    hosts = [headers.get("x-forwarded-host", ""), headers.get("host", "")]
    return frozenset(f"{scheme}://{_origin(host.split(',')[0])}" for host in hosts
                     if host.strip())


def is_secure(headers: Mapping[str, str]) -> bool:
    """Behind https: what API Gateway (and any TLS-terminating proxy) says."""
    return headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"


def cross_origin_problem(method: str, headers: Mapping[str, str],
                         configured: str | None) -> str | None:
    """Why this request may not run (a write sent by another origin's page); None if it may."""
    if method.upper() in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site in FOREIGN_FETCH_SITES:
        return CROSS_ORIGIN_MESSAGE
    origin = headers.get("origin")
    if origin is None:
        return None
    if _origin(origin) not in own_origins(headers, configured):
        return CROSS_ORIGIN_MESSAGE
    return None


def forbidden(message: str) -> Response:
    """A 403 in Chalice's error shape (middleware answers with a Response, never raises)."""
    return Response(body={"Code": "ForbiddenError", "Message": message}, status_code=403)


def guard(event: Request, get_response: Callable[[Request], Response],
          configured_origins: str | None) -> Response:
    """Refuse foreign writes; answer HEAD without a body; add HSTS behind https."""
    headers = event.headers
    problem = cross_origin_problem(event.method, headers, configured_origins)
    response = forbidden(problem) if problem else get_response(event)
    if event.method == "HEAD":
        response.body = ""
    if is_secure(headers):
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def answer_head(routes: Mapping[str, Mapping[str, RouteEntry]],
                register: Callable[[str, Callable[..., object]], object]) -> None:
    """Register HEAD beside every GET route that lacks one, with the same view."""
    for path, entries in list(routes.items()):
        entry = entries.get("GET")
        if entry is not None and "HEAD" not in entries:
            register(path, entry.view_function)
