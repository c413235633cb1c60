"""The local stack's Cognito: a user pool and app client in moto, made idempotently.

chalice local gets their ids and moto's URL through the environment, the
same variables the deployed API function gets from the stack (plus the
endpoint), so sign-up, sign-in and token verification run the same code.
moto accepts any confirmation code; the stack says so when it starts.
"""

from __future__ import annotations

from typing import Any

from chalicelib.user_pool import ensure_user_pool


def user_pool_environment(client: Any, name: str, moto_url: str) -> tuple[dict[str, str], bool]:
    """The variables that point the app at the local pool; True if it was made now."""
    pool_id, client_id, created = ensure_user_pool(client, name, f"{name}-web")
    return {
        "COGNITO_USER_POOL_ID": pool_id,
        "COGNITO_CLIENT_ID": client_id,
        "COGNITO_ENDPOINT": moto_url,
    }, created
