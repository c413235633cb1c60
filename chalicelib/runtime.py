"""Where the deployed code meets its environment.

AWS clients, the repository and the cookie secret are built on first use,
cached for the life of the process, and replaceable in tests with `reset()`.
Nothing here talks to AWS at import time.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from chalicelib import metrics, tokens
from chalicelib.account_services import AccountService, CartMerger, OrderHistory
from chalicelib.accounts import AccountsUnavailable
from chalicelib.cognito import CognitoAccounts
from chalicelib.domain import MAX_LINES, StoreUnavailable
from chalicelib.repository import DynamoCartRepository, store_errors
from chalicelib.services import CartService, CatalogCache
from chalicelib.store.history import DynamoOrderHistory
from chalicelib.store.merges import DynamoCartMerges
from chalicelib.tokens import TokenVerifier

# Bounded retries and timeouts that fit inside the API function's 15 s Lambda
# timeout: per call at worst 3 attempts x (1 s connect + 2 s read) plus the
# standard mode's backoff between them (< 1 s, then < 2 s), so under 12 s.
# botocore's `max_attempts` counts retries only; `total_max_attempts` counts
# the first try too.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT = 1
READ_TIMEOUT = 2
# A Lambda sandbox runs one request at a time; `chalice local` runs a thread
# per request, and devstack lets at most this many use the client at once
# (devstack/chalice_local.py), so the pool never overflows there either.
MAX_POOL_CONNECTIONS = 32

# The cookie key from SSM: a traffic ramp starts many containers at once and
# each asks SSM once, against GetParameter's 40 requests/s per account and
# region. A throttled container retries with full jitter (spreading the burst
# over the next seconds) until this budget is spent, then answers 503 with
# Retry-After. The budget leaves the request most of the API function's 15 s.
SSM_BUDGET_SECONDS = 5.0
SSM_FIRST_DELAY = 0.05
SSM_MAX_DELAY = 1.0

_cache: dict[str, Any] = {}


def reset() -> None:
    """Forget every cached client (tests, or a changed environment)."""
    _cache.clear()


def _client(service: str, attempts: int = MAX_ATTEMPTS) -> Any:
    if service not in _cache:
        import boto3  # lazily: routes that never reach AWS do not pay for it
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        session = boto3.session.Session()
        _cache[service] = session.client(service, config=config)  # type: ignore[call-overload]
    return _cache[service]


def dynamodb_client() -> Any:
    return _client("dynamodb")


def table_name() -> str:
    name = os.environ.get("TABLE_NAME")
    if not name:
        raise RuntimeError("TABLE_NAME is not set: see .chalice/config.json")
    return name


def repository() -> DynamoCartRepository:
    if "repository" not in _cache:
        _cache["repository"] = DynamoCartRepository(dynamodb_client(), table_name())
    return _cache["repository"]  # type: ignore[no-any-return]


def catalog_cache() -> CatalogCache:
    if "catalog" not in _cache:
        # A stage may shorten the window (the e2e stack does; docs/OPERATIONS.md).
        seconds = os.environ.get("CATALOG_CACHE_SECONDS")
        _cache["catalog"] = CatalogCache(seconds=float(seconds)) if seconds else CatalogCache()
    return _cache["catalog"]  # type: ignore[no-any-return]


def cart_service() -> CartService:
    if "service" not in _cache:
        _cache["service"] = CartService(repository(), catalog_cache())
    return _cache["service"]  # type: ignore[no-any-return]


def metrics_settings() -> metrics.Settings:
    if "metrics" not in _cache:
        _cache["metrics"] = metrics.Settings.from_environment(os.environ)
    return _cache["metrics"]  # type: ignore[no-any-return]


def read_secret_parameter(
    ssm: Any,
    name: str,
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> str:
    """The parameter's decrypted value; throttling and outages are retried within the budget.

    StoreUnavailable (a 503) only once the next wait would end past the budget.
    Full jitter: each wait is random in [0, cap), the cap doubling per attempt.
    """
    deadline = clock() + (SSM_BUDGET_SECONDS if budget_seconds is None else budget_seconds)
    cap = SSM_FIRST_DELAY
    while True:
        try:
            with store_errors():  # the one classifier: what is worth a retry
                response = ssm.get_parameter(Name=name, WithDecryption=True)
            return str(response["Parameter"]["Value"])
        except StoreUnavailable:
            delay = jitter() * cap
            if clock() + delay >= deadline:
                raise
            sleep(delay)
            cap = min(cap * 2, SSM_MAX_DELAY)


def _cognito_setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise AccountsUnavailable(f"{name} is not set: accounts need the stack's user pool")
    return value


def token_verifier() -> TokenVerifier:
    """The pool's ID-token verifier; its JWKS is fetched on first use, then kept."""
    if "verifier" not in _cache:
        pool = _cognito_setting("COGNITO_USER_POOL_ID")
        region = pool.split("_", 1)[0]  # a pool id is <region>_<id>
        endpoint = os.environ.get("COGNITO_ENDPOINT")
        headers = {}
        if endpoint:
            # moto's server routes a request by the service named in its
            # signature; the key set is public, so any credential will do.
            headers["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential=local/20260101/{region}/cognito-idp/aws4_request")
        fetch = _cache.get("jwks_fetch") or tokens.http_jwks(
            tokens.jwks_url(region, pool, endpoint), headers)
        _cache["verifier"] = TokenVerifier(tokens.issuer(region, pool),
                                           _cognito_setting("COGNITO_CLIENT_ID"), fetch)
    return _cache["verifier"]  # type: ignore[no-any-return]


def use_jwks(fetch: tokens.JwksFetch) -> None:
    """Fetch the pool's keys with `fetch` (tests: moto answers only its own HTTP mock)."""
    _cache.pop("verifier", None)
    _cache["jwks_fetch"] = fetch


def _history_store() -> DynamoOrderHistory:
    if "history" not in _cache:
        _cache["history"] = DynamoOrderHistory(dynamodb_client(), table_name(),
                                               repository().orders)
    return _cache["history"]  # type: ignore[no-any-return]


def order_history() -> OrderHistory:
    """Needs no user pool: a signed-out browser has its cart's history too."""
    return OrderHistory(_history_store())


def account_service() -> AccountService:
    """AccountsUnavailable when the stage has no user pool configured."""
    if "accounts" not in _cache:
        client = _client("cognito-idp")
        repo = repository()
        catalog = catalog_cache()
        merger = CartMerger(repo.carts, DynamoCartMerges(dynamodb_client(), table_name()),
                            _history_store(), lambda product_id: catalog.get(repo, product_id),
                            max_lines=MAX_LINES)
        _cache["accounts"] = AccountService(
            CognitoAccounts(client, _cognito_setting("COGNITO_CLIENT_ID")),
            token_verifier(), merger)
    return _cache["accounts"]  # type: ignore[no-any-return]


def cookie_secret() -> bytes:
    """The cart-cookie key: from SSM when deployed, from the environment locally."""
    if "secret" not in _cache:
        parameter = os.environ.get("CART_COOKIE_SECRET_PARAM")
        if parameter:
            # One attempt per call: read_secret_parameter paces the retries.
            value = read_secret_parameter(_client("ssm", attempts=1), parameter)
        else:
            value = os.environ.get("CART_COOKIE_SECRET", "")
        if len(value) < 16:
            raise RuntimeError(
                "set CART_COOKIE_SECRET (16+ characters) or CART_COOKIE_SECRET_PARAM"
            )
        _cache["secret"] = value.encode()
    return _cache["secret"]  # type: ignore[no-any-return]
