"""What moto's Cognito lacks and the app relies on: RevokeToken, and email_verified.

RevokeToken (moto has GlobalSignOut but no RevokeToken). The app's sign-out
revokes the browser's refresh token (chalicelib/cognito.py); locally it must
work the way Cognito does, or sign-out would only "work" on AWS:

- the refresh token no longer buys ID tokens (REFRESH_TOKEN_AUTH answers
  NotAuthorizedException, as moto already does for a signed-out user);
- revoking an unknown or already revoked token succeeds (Cognito answers 200);
- a token of another app client is NotAuthorizedException;
- an app client without EnableTokenRevocation is UnsupportedOperationException.

email_verified. Cognito marks the e-mail verified when a pool that
auto-verifies e-mail (AutoVerifiedAttributes) confirms the sign-up with the code
sent to it; moto confirms but sets no attribute, so the ID token would carry no
`email_verified` and the app (which shows only a verified e-mail) would show none.

`install()` patches moto's classes in this process: the local stack's moto
server calls it (devstack/motoserver.py), and so do the functional tests,
whose moto runs in-process. Not deployed: AWS has the real thing.
"""

from __future__ import annotations

from typing import Any


def _revoke(account_id: str, token: str, client_id: str) -> None:
    from moto.cognitoidp.exceptions import NotAuthorizedError
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.core.exceptions import JsonRESTError

    for regions in ([cognitoidp_backends[account_id]] if account_id in cognitoidp_backends
                    else cognitoidp_backends.values()):
        for backend in regions.values():
            for pool in backend.user_pools.values():
                if token not in pool.refresh_tokens:
                    continue
                held = pool.refresh_tokens[token]
                if held is None:  # revoked already, or its user signed out everywhere
                    return
                if held[0] != client_id:
                    raise NotAuthorizedError("the token was not issued to this client")
                client = pool.clients.get(client_id)
                settings = getattr(client, "extended_config", {}) or {}
                if not settings.get("EnableTokenRevocation", True):
                    raise JsonRESTError("UnsupportedOperationException",
                                        "token revocation is not enabled for this client")
                pool.refresh_tokens[token] = None
                return


def revoke_token(self: Any) -> Any:
    """CognitoIdpResponse.revoke_token: the handler moto's dispatcher looks up."""
    from moto.core.responses import EmptyResult

    _revoke(self.current_account, str(self._get_param("Token") or ""),
            str(self._get_param("ClientId") or ""))
    return EmptyResult()


def _verifying_confirm(original: Any) -> Any:
    def confirm_sign_up(self: Any, client_id: str, username: str) -> str:
        result: str = original(self, client_id, username)
        pool = next(p for p in self.user_pools.values() if client_id in p.clients)
        if "email" in pool.extended_config.get("AutoVerifiedAttributes", []):
            user = self.admin_get_user(pool.id, username)
            user.update_attributes([{"Name": "email_verified", "Value": "true"}])
        return result

    confirm_sign_up.verifies_email = True  # type: ignore[attr-defined]
    return confirm_sign_up


def install() -> None:
    """Patch moto's Cognito in this process (again: a no-op)."""
    from moto.cognitoidp.models import CognitoIdpBackend
    from moto.cognitoidp.responses import CognitoIdpResponse

    if not hasattr(CognitoIdpResponse, "revoke_token"):
        CognitoIdpResponse.revoke_token = revoke_token  # type: ignore[attr-defined]
    original = CognitoIdpBackend.confirm_sign_up
    if not getattr(original, "verifies_email", False):
        CognitoIdpBackend.confirm_sign_up = _verifying_confirm(original)  # type: ignore[method-assign]
