"""Cognito ID token verification, in the app, the same locally and deployed.

RS256 only, against the user pool's JWKS, which is fetched once per process
and kept; issuer, audience (the app client id), `token_use` and expiry are all
checked. PyJWT does the cryptography. Any failure is "not signed in": the
caller never learns more than which of the two ways it failed (expired, or
not a token of this pool at all), because only an expired one is worth a refresh.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.accounts import Identity
from chalicelib.domain import StoreUnavailable

Clock = Callable[[], float]
JwksFetch = Callable[[], dict[str, Any]]
ALGORITHMS = ["RS256"]
# A token from a clock slightly ahead is still fine; an old one is not.
LEEWAY_SECONDS = 30
# A token naming a key the cached set lacks may mean Cognito rotated its keys:
# fetch again, but not more often than this, so forged key ids cost nothing.
REFETCH_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 2


class InvalidToken(Exception):
    """Not a token of this pool and client: forged, tampered, foreign or malformed."""


class ExpiredToken(InvalidToken):
    """A genuine token of this pool and client whose time is up: refresh it."""

    def __init__(self, identity: Identity) -> None:
        super().__init__("expired")
        self.identity = identity


def issuer(region: str, user_pool_id: str) -> str:
    """What Cognito (and moto) put in `iss`: the pool's URL in its region."""
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def jwks_url(region: str, user_pool_id: str, endpoint: str | None = None) -> str:
    """The pool's key set; `endpoint` is a stand-in's (moto) base URL."""
    base = endpoint.rstrip("/") if endpoint else issuer(region, user_pool_id).rsplit("/", 1)[0]
    return f"{base}/{user_pool_id}/.well-known/jwks.json"


def http_jwks(url: str, headers: Mapping[str, str] | None = None) -> JwksFetch:
    """A fetch of the key set over HTTPS (or a local stand-in's HTTP)."""
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError(f"refusing to fetch keys from {url}")

    def fetch() -> dict[str, Any]:
        import urllib.request  # lazily: only the first signed-in request pays for it

        request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310
        with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_SECONDS) as response:  # nosec B310: https or loopback, checked above
            document: dict[str, Any] = json.loads(response.read())
        return document

    return fetch


class TokenVerifier:
    """Verify a pool's ID tokens for one app client."""

    def __init__(self, issuer_url: str, client_id: str, fetch_jwks: JwksFetch,
                 clock: Clock = time.time) -> None:
        self._issuer = issuer_url
        self._client_id = client_id
        self._fetch = fetch_jwks
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys and self._clock() - self._fetched_at >= REFETCH_SECONDS:
                import jwt  # lazily: a request without a session never pays for it

                try:
                    keys = jwt.PyJWKSet.from_dict(self._fetch())
                except (OSError, ValueError, jwt.PyJWTError) as exc:
                    # No keys, no verdict: a 503, not "signed out" for everyone.
                    raise StoreUnavailable(f"the pool's keys: {type(exc).__name__}") from exc
                self._fetched_at = self._clock()
                self._keys = {key.key_id: key for key in keys if key.key_id}
            key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown key id")
        return key

    def verify(self, token: str) -> Identity:
        """The identity in a valid ID token; InvalidToken or ExpiredToken otherwise."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise InvalidToken("not RS256")
            key = self._key(str(header.get("kid", "")))
            claims = jwt.decode(
                token, key, algorithms=ALGORITHMS, audience=self._client_id,
                issuer=self._issuer,
                # Expiry is checked below against the verifier's clock.
                options={"require": ["exp", "iat", "sub", "aud", "iss", "token_use"],
                         "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidToken(type(exc).__name__) from exc
        if claims.get("token_use") != "id":
            raise InvalidToken("not an ID token")
        email = claims.get("email")
        if not isinstance(email, str) or not email or not isinstance(claims["sub"], str):
            raise InvalidToken("no e-mail or subject")
        if not isinstance(claims["exp"], int | float):
            raise InvalidToken("exp is not a number")
        # Cognito writes the claim as a JSON boolean; moto, from the attribute, as "true".
        verified = claims.get("email_verified") in (True, "true")
        session = claims.get("origin_jti") or claims.get("jti") or ""
        identity = Identity(subject=claims["sub"], email=email.lower(), email_verified=verified,
                            session_id=session if isinstance(session, str) else "")
        if claims["exp"] + LEEWAY_SECONDS <= self._clock():
            raise ExpiredToken(identity)
        return identity
