"""Account use cases: sign-up, confirmation, sign-in with the cart merge, sessions.

Each takes plain values (request bodies, cookie values) and returns domain
values; Cognito, the token verifier and the stores are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib import accounts, validation
from chalicelib.accounts import (
    Identity,
    MergeResult,
    Tokens,
    WeakPassword,
    account_cart_id,
)
from chalicelib.cognito import CognitoAccounts
from chalicelib.tokens import ExpiredToken, InvalidToken, TokenVerifier


class CartMerger(Protocol):
    def merge(self, anonymous_cart: str, account_cart: str) -> MergeResult: ...


@dataclass(frozen=True)
class SignedIn:
    identity: Identity
    tokens: Tokens
    merge: MergeResult


@dataclass(frozen=True)
class Session:
    """Who a request's cookies say is signed in; a new ID token if one was refreshed."""

    identity: Identity | None
    refreshed_id_token: str | None = None

    @property
    def cart_id(self) -> str | None:
        return account_cart_id(self.identity.subject) if self.identity else None


SIGNED_OUT = Session(None)


class AccountService:
    def __init__(self, cognito: CognitoAccounts, verifier: TokenVerifier,
                 merger: CartMerger) -> None:
        self._cognito = cognito
        self._verifier = verifier
        self._merger = merger

    def sign_up(self, body: object) -> str:
        fields = validation.fields(body, ("email", "password"))
        email = accounts.email(fields["email"])
        password = accounts.password(fields["password"])
        problem = accounts.password_problem(password)
        if problem:
            raise WeakPassword(problem)
        self._cognito.sign_up(email, password)
        return email

    def confirm(self, body: object) -> None:
        fields = validation.fields(body, ("email", "code"))
        self._cognito.confirm(accounts.email(fields["email"]), accounts.code(fields["code"]))

    def sign_in(self, body: object, anonymous_cart: str | None) -> SignedIn:
        """Check the password with Cognito, then move the browser's cart into the account's.

        The merge is safe to repeat: a retried sign-in finds the anonymous
        lines already gone and moves nothing twice.
        """
        fields = validation.fields(body, ("email", "password"))
        tokens = self._cognito.sign_in(accounts.email(fields["email"]),
                                       accounts.password(fields["password"]))
        try:
            identity = self._verifier.verify(tokens.id_token)
        except InvalidToken as exc:  # Cognito's own fresh token: the app is misconfigured
            raise RuntimeError("the pool's ID token does not verify: check "
                               "COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID") from exc
        account_cart = account_cart_id(identity.subject)
        if anonymous_cart is not None and anonymous_cart != account_cart:
            merge = self._merger.merge(anonymous_cart, account_cart)
        else:
            merge = MergeResult(())
        return SignedIn(identity, tokens, merge)

    def session(self, id_tokens: list[str], refresh_token: str | None) -> Session:
        """The identity in the first valid ID token; an expired one is refreshed.

        A forged, tampered or foreign token is simply "signed out", never an error.
        """
        expired: Identity | None = None
        for token in id_tokens:
            try:
                return Session(self._verifier.verify(token))
            except ExpiredToken as exc:
                expired = expired or exc.identity
            except InvalidToken:
                continue
        if expired is None or refresh_token is None:
            return SIGNED_OUT
        fresh = self._cognito.refresh(refresh_token)
        if fresh is None:
            return SIGNED_OUT
        try:
            identity = self._verifier.verify(fresh)
        except InvalidToken:
            return SIGNED_OUT
        # A refresh token of someone else's never turns one session into another.
        if identity.subject != expired.subject:
            return SIGNED_OUT
        return Session(identity, fresh)
