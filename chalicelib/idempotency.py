"""Idempotency keys: what a retried request must match to get the first answer.

Pure values, no IO. A key is scoped to one cart: the record that remembers
its response lives under the cart (CART#<id> / IDEMPOTENCY#<key>), so the
same key on another cart is another request, and a key never leads to a cart.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field

from chalicelib.domain import DomainError, InvalidInput

HEADER = "Idempotency-Key"
TTL_SECONDS = 24 * 3600
# A request's own token only has to outlive the request: botocore's re-sends
# and the retries inside it end well within the function's 15 s.
REQUEST_TTL_SECONDS = 3600
# Printable ASCII, as a header carries it; the length bounds the sort key.
_KEY = re.compile(r"[\x20-\x7e]{1,128}")


class KeyReused(DomainError):
    """The key was already used for a different request on this cart."""


@dataclass(frozen=True)
class IdempotentRequest:
    """What makes one write land at most once: a shopper's key, or a token the
    API minted for this one request (`minted`), so a re-send cannot apply twice."""

    key: str
    request_hash: str
    expires_at: int
    minted: bool = False
    # When this try started (epoch ms): a refusal's fence set later cancels it.
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def key_from_header(value: str | None) -> str | None:
    """The key in the header, None when there is none; InvalidInput if malformed."""
    if value is None:
        return None
    if not _KEY.fullmatch(value) or not value.strip():
        raise InvalidInput(f"{HEADER} must be 1 to 128 printable ASCII characters")
    return value


def request_hash(operation: str, body: object) -> str:
    """The same operation with the same JSON body hashes the same, whatever the key order."""
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_request(key: str, operation: str, body: object,
                       now_epoch: int) -> IdempotentRequest:
    return IdempotentRequest(key, request_hash(operation, body), now_epoch + TTL_SECONDS)


def minted_request(operation: str, body: object, now_epoch: int) -> IdempotentRequest:
    """A token for a request without a key: the SDK's re-sends of its write find it taken."""
    return IdempotentRequest(secrets.token_hex(16), request_hash(operation, body),
                             now_epoch + REQUEST_TTL_SECONDS, minted=True)


def request_for(key: str | None, operation: str, body: object,
                now_epoch: int) -> IdempotentRequest:
    """The shopper's key when there is one, else a token of this request's own."""
    if key is None:
        return minted_request(operation, body, now_epoch)
    return idempotent_request(key, operation, body, now_epoch)
