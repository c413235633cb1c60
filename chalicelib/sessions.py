"""The signed-in browser's cookies: Cognito's own tokens, nothing of ours to sign.

`session` holds the ID token (RS256-signed by the pool, verified on every
request that reads it, valid an hour); `refresh` holds the refresh token, which
only Cognito can check and which buys a new ID token when that hour is up.
Both are HttpOnly, SameSite=Lax, Secure behind https, and live as long as the
pool's refresh tokens do: after that the shopper signs in again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from chalicelib import cookies
from chalicelib.accounts import REFRESH_TOKEN_DAYS

SESSION_COOKIE = "session"
REFRESH_COOKIE = "refresh"
SESSION_MAX_AGE = REFRESH_TOKEN_DAYS * 24 * 3600
# A JWT and Cognito's refresh token are URL-safe base64 and dots; anything else is junk.
_TOKEN = re.compile(r"[A-Za-z0-9_\-.=+/]{16,4096}")


def _values(header: str | None, name: str) -> Iterator[str]:
    """Every value of cookie `name` in a Cookie header, parsed as cookies.py does."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            value = value.strip().strip('"')
            if _TOKEN.fullmatch(value):
                yield value


def tokens_from_header(header: str | None) -> tuple[list[str], str | None]:
    """The ID tokens (a stale duplicate may sit beside the current one) and the refresh token."""
    return list(_values(header, SESSION_COOKIE)), next(_values(header, REFRESH_COOKIE), None)


def _cookie(name: str, value: str, max_age: int, secure: bool) -> str:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def session_cookie(id_token: str, secure: bool) -> str:
    return _cookie(SESSION_COOKIE, id_token, SESSION_MAX_AGE, secure)


def refresh_cookie(refresh_token: str, secure: bool) -> str:
    return _cookie(REFRESH_COOKIE, refresh_token, SESSION_MAX_AGE, secure)


def cleared_cart_cookie(secure: bool) -> str:
    """Forget the anonymous cart once it is merged: its lines and orders are the account's
    now, and a later sign-in to another account from this browser must not adopt them."""
    return _cookie(cookies.COOKIE_NAME, "", 0, secure)


def signed_out_cookies(secure: bool) -> list[str]:
    """Set-Cookie values that end the session and the anonymous cart behind it."""
    return [_cookie(name, "", 0, secure) for name in (SESSION_COOKIE, REFRESH_COOKIE)] + [
        cleared_cart_cookie(secure)]
