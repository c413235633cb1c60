"""Cognito user pool adapter: sign-up, confirmation, sign-in and refresh.

It takes a low-level botocore `cognito-idp` client and the app client id,
never reads the environment, and returns domain values. Only Cognito's
unauthenticated APIs are called (no IAM needed; USER_PASSWORD_AUTH, no
client secret). Each call site names the error codes it expects; throttling,
5xx and network errors go through the one classifier like every AWS error.

Passwords, codes and tokens are arguments and results only: nothing here
logs them, and the domain errors raised carry none of them.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.accounts import (
    BadCredentials,
    EmailTaken,
    MailUnavailable,
    NotConfirmed,
    Tokens,
    TooManyAttempts,
    WeakPassword,
    WrongCode,
)
from chalicelib.repository import store_errors

# Cognito's quota and brute-force answers: the shopper should wait, not retry now.
_THROTTLED = frozenset({"TooManyRequestsException", "LimitExceededException",
                        "TooManyFailedAttemptsException"})
_WRONG_CODE = frozenset({"CodeMismatchException", "ExpiredCodeException"})
_BAD_CREDENTIALS = frozenset({"NotAuthorizedException", "UserNotFoundException"})
# On a call that sends mail (sign-up sends the code), LimitExceededException is
# the pool's e-mail quota, not the shopper's attempts: waiting a minute will not
# help, so it is a 503 that says so (docs/OPERATIONS.md: send through SES).
_MAIL_FAILED = frozenset({"LimitExceededException", "CodeDeliveryFailureException"})


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


class CognitoAccounts:
    """One user pool app client: e-mail user names, Cognito's password policy."""

    def __init__(self, client: Any, client_id: str) -> None:
        self._client = client
        self._client_id = client_id

    def _call(self, operation: str, sends_mail: bool = False, **kwargs: Any) -> dict[str, Any]:
        # Cognito's own quota codes are named here, before the one classifier
        # (which reads LimitExceededException as a busy store) sees the rest.
        with store_errors():
            try:
                response: dict[str, Any] = getattr(self._client, operation)(
                    ClientId=self._client_id, **kwargs)
                return response
            except ClientError as exc:
                if sends_mail and _code(exc) in _MAIL_FAILED:
                    raise MailUnavailable(_code(exc)) from exc
                if _code(exc) in _THROTTLED:
                    raise TooManyAttempts(_code(exc)) from exc
                raise

    def sign_up(self, email: str, password: str) -> None:
        try:
            self._call("sign_up", sends_mail=True, Username=email, Password=password,
                       UserAttributes=[{"Name": "email", "Value": email}])
        except ClientError as exc:
            if _code(exc) == "UsernameExistsException":
                raise EmailTaken(email) from exc
            if _code(exc) == "InvalidPasswordException":
                # Cognito's message names the rule, e.g. "Password did not
                # conform with policy: Password must have uppercase characters".
                reason = _message(exc).split(":", 1)[-1].strip()
                raise WeakPassword(reason or "the password does not meet the policy") from exc
            if _code(exc) == "InvalidParameterException":
                raise WeakPassword(_message(exc) or "Cognito refused the sign-up") from exc
            raise

    def confirm(self, email: str, code: str) -> None:
        try:
            self._call("confirm_sign_up", Username=email, ConfirmationCode=code)
        except ClientError as exc:
            if _code(exc) in _WRONG_CODE | {"UserNotFoundException"}:
                # An unknown e-mail reads as a wrong code: nothing tells which
                # e-mail addresses have accounts.
                raise WrongCode(email) from exc
            if _code(exc) == "NotAuthorizedException":  # already confirmed
                return
            raise

    def sign_in(self, email: str, password: str) -> Tokens:
        try:
            response = self._call("initiate_auth", AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": email, "PASSWORD": password})
        except ClientError as exc:
            if _code(exc) in _BAD_CREDENTIALS:
                if "attempts exceeded" in _message(exc).lower():
                    raise TooManyAttempts(_code(exc)) from exc
                raise BadCredentials(email) from exc
            if _code(exc) == "UserNotConfirmedException":
                raise NotConfirmed(email) from exc
            raise
        result = response.get("AuthenticationResult")
        if not result:  # a challenge (MFA, new password): not offered by this pool
            raise BadCredentials(email)
        return Tokens(str(result["IdToken"]), str(result.get("RefreshToken") or "") or None)

    def refresh(self, refresh_token: str) -> str | None:
        """A new ID token, or None when Cognito no longer honours the refresh token."""
        try:
            response = self._call("initiate_auth", AuthFlow="REFRESH_TOKEN_AUTH",
                                  AuthParameters={"REFRESH_TOKEN": refresh_token})
        except ClientError as exc:
            if _code(exc) in _BAD_CREDENTIALS | {"InvalidParameterException"}:
                return None
            raise
        result = response.get("AuthenticationResult") or {}
        token = result.get("IdToken")
        return str(token) if token else None

    def revoke(self, refresh_token: str) -> None:
        """Revoke the refresh token (and the access tokens it bought) for good.

        A token Cognito does not know, or already revoked, is fine: the goal is
        that it buys nothing more, and it does not.
        """
        try:
            self._call("revoke_token", Token=refresh_token)
        except ClientError as exc:
            if _code(exc) in {"NotAuthorizedException", "UnsupportedTokenTypeException",
                              "InvalidParameterException"}:
                return
            raise
