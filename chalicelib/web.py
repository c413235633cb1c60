"""HTML pages and static files: one jinja2 environment, one render(), one file server.

templates/ and static/ sit next to chalicelib/ both in a checkout and at the root
of the deployed zip (the deploy build copies them through vendor/).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice.app import Response

if TYPE_CHECKING:
    import jinja2

from chalicelib.catalog import availability

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"

# No 'unsafe-inline' anywhere: every script, style and handler is in static/.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Text goes out as a str. SVG is text too, so it never meets Chalice's rule that a
# binary response needs a matching Accept header; raster images would be bytes.
TEXT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
BINARY_TYPES = {
    ".png": "image/png",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
}
# A URL that carries the file's version never changes meaning; one without it may.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, max-age=300"

_cache: dict[str, Any] = {}


@dataclass(frozen=True)
class Asset:
    body: str | bytes
    content_type: str
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def load_assets(directory: Path) -> dict[str, Asset]:
    """Every servable file under directory, keyed by its relative posix path.

    Requests are looked up in this table and never joined onto a filesystem
    path, so no request can name a file outside it.
    """
    assets: dict[str, Asset] = {}
    for path in sorted(directory.rglob("*")):
        suffix = path.suffix.lower()
        if path.is_symlink() or not path.is_file():
            continue
        if suffix not in TEXT_TYPES and suffix not in BINARY_TYPES:
            continue
        data = path.read_bytes()
        version = hashlib.sha256(data).hexdigest()[:16]
        if suffix in TEXT_TYPES:
            asset = Asset(data.decode("utf-8"), TEXT_TYPES[suffix], version)
        else:
            asset = Asset(data, BINARY_TYPES[suffix], version)
        assets[path.relative_to(directory).as_posix()] = asset
    return assets


def assets() -> dict[str, Asset]:
    """The static/ table, read once per process."""
    if "assets" not in _cache:
        _cache["assets"] = load_assets(STATIC)
    return _cache["assets"]  # type: ignore[no-any-return]


def reset() -> None:
    """Forget the environment and the file table (tests)."""
    _cache.clear()


def asset_url(base: str, name: str) -> str:
    """The URL of static/name under base, versioned so it may be cached for good."""
    asset = assets().get(name)
    suffix = f"?v={asset.version}" if asset else ""
    return f"{base}/static/{name}{suffix}"


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def static_response(asset: Asset, if_none_match: str | None,
                    query_params: Mapping[str, str] | None) -> Response:
    """The file, or 304 when the client already holds this version."""
    version = (query_params or {}).get("v")
    headers: dict[str, str | list[str]] = {
        "Content-Type": asset.content_type,
        "ETag": asset.etag,
        "Cache-Control": IMMUTABLE if version == asset.version else REVALIDATE,
        "X-Content-Type-Options": "nosniff",
        # An SVG opened on its own is a document: it may run nothing.
        "Content-Security-Policy": "default-src 'none'",
    }
    if _matches(if_none_match, asset.etag):
        return Response(body="", status_code=304, headers=headers)
    return Response(body=asset.body, status_code=200, headers=headers)


def money(cents: int) -> str:
    """Cents as the page shows them: $1,234.50 (the script formats the same way)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def environment() -> jinja2.Environment:
    """The one jinja2 environment, built on first use; autoescape is always on."""
    if "env" not in _cache:
        import jinja2  # lazily: the JSON API never pays for it

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["money"] = money
        env.filters["availability"] = availability
        _cache["env"] = env
    return _cache["env"]  # type: ignore[no-any-return]


def render(template: str, base: str, status_code: int = 200,
           **context: Any) -> Response:
    """An HTML page; `base` prefixes every link and asset URL in it."""
    def asset(name: str) -> str:
        return asset_url(base, name)

    html = environment().get_template(template).render(base=base, asset=asset, **context)
    headers: dict[str, str | list[str]] = {
        **SECURITY_HEADERS,
        "Content-Type": "text/html; charset=utf-8",
        # The badge and the cart are per visitor: no shared cache may keep them.
        "Cache-Control": "private, no-cache",
    }
    return Response(body=html, status_code=status_code, headers=headers)
