"""The cart cookie: an HMAC-signed cart id, nothing else about the visitor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from chalicelib.domain import CART_TTL_SECONDS

COOKIE_NAME = "cart"
_CART_ID = re.compile(r"[0-9a-f]{32}")
# ASCII digits only: str.isdigit() is true for '²' (which int() refuses) and for
# Arabic-Indic digits (which int() reads); neither belongs in a cookie of ours.
_ISSUED = re.compile(r"[0-9]{1,12}")
# An HMAC-SHA256 in unpadded URL-safe base64; hmac.compare_digest raises on non-ASCII.
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")
_CLOCK_SKEW = 300


def new_cart_id() -> str:
    return secrets.token_hex(16)


def _signature(secret: bytes, cart_id: str, issued: int) -> str:
    mac = hmac.new(secret, f"v1|{cart_id}|{issued}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def sign(secret: bytes, cart_id: str, issued: int) -> str:
    """The cookie value: `<cartId>.<issued epoch>.<signature>`."""
    return f"{cart_id}.{issued}.{_signature(secret, cart_id, issued)}"


def verify(secret: bytes, value: str, now: int) -> str | None:
    """The cart id in a valid, unexpired value; None for anything else."""
    parts = value.split(".")
    if len(parts) != 3:
        return None
    cart_id, issued_text, signature = parts
    if not (_CART_ID.fullmatch(cart_id) and _ISSUED.fullmatch(issued_text)
            and _SIGNATURE.fullmatch(signature)):
        return None
    issued = int(issued_text)
    if not hmac.compare_digest(signature, _signature(secret, cart_id, issued)):
        return None
    if issued > now + _CLOCK_SKEW or now - issued >= CART_TTL_SECONDS:
        return None
    return cart_id


def cart_id_from_header(secret: bytes, header: str | None, now: int) -> str | None:
    """Read the cart id from a Cookie header; garbage reads as no cart.

    Parsed by hand, not with SimpleCookie, which drops every cookie once any
    other cookie on the host is malformed. The first `cart` value that
    verifies wins, so a second, stale `cart` cookie cannot hide the cart.
    """
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            cart_id = verify(secret, value.strip().strip('"'), now)
            if cart_id is not None:
                return cart_id
    return None


def set_cookie_header(secret: bytes, cart_id: str, now: int, secure: bool) -> str:
    """A Set-Cookie value that keeps the cart for 30 days from now."""
    parts = [
        f"{COOKIE_NAME}={sign(secret, cart_id, now)}",
        "Path=/",
        f"Max-Age={CART_TTL_SECONDS}",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
