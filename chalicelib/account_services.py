"""Account use cases: sign-up, confirmation, sign-in with the cart merge, sessions.

Each takes plain values (request bodies, cookie values) and returns domain
values; Cognito, the token verifier and the stores are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib import accounts, validation
from chalicelib.accounts import (
    REFRESH_TOKEN_SECONDS,
    Identity,
    MergeResult,
    OrderSummary,
    Tokens,
    WeakPassword,
    account_cart_id,
    newest_first,
    plan_merge,
)
from chalicelib.cognito import CognitoAccounts
from chalicelib.domain import (
    CartChanged,
    CartLine,
    InvalidInput,
    Order,
    OrderNotFound,
    Product,
    UnknownProduct,
    expiry_after,
)
from chalicelib.store.carts import DynamoCarts
from chalicelib.store.history import DynamoOrderHistory
from chalicelib.store.merges import DynamoCartMerges, LineMove
from chalicelib.store.revocations import DynamoRevocations
from chalicelib.tokens import ExpiredToken, InvalidToken, TokenVerifier

Clock = Callable[[], float]
ProductLookup = Callable[[str], Product]
# Reads and writes again when a line changed in between (an add racing the merge).
MERGE_ATTEMPTS = 5


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


class CartMerger:
    """Move an anonymous cart's lines and orders into an account's."""

    def __init__(self, carts: DynamoCarts, merges: DynamoCartMerges,
                 history: DynamoOrderHistory, product: ProductLookup,
                 max_lines: int | None = None, clock: Clock = time.time) -> None:
        self._carts = carts
        self._merges = merges
        self._history = history
        self._product = product
        self._max_lines = max_lines
        self._clock = clock

    def merge(self, anonymous_cart: str, account_cart: str) -> MergeResult:
        """Read both carts, plan, move; again from the top if a line changed meanwhile."""
        from chalicelib.services import iso

        # One account per anonymous cart, ever: on a shared browser the next
        # account to sign in adopts nothing the first one adopted.
        if not self._merges.claim(anonymous_cart, account_cart):
            return MergeResult(())
        # Orders first: they never change, so linking them again is harmless.
        self._history.link(account_cart, anonymous_cart, self._history.orders_of(anonymous_cart))
        for attempt in range(MERGE_ATTEMPTS):
            moment = self._clock()
            now, epoch = iso(moment), int(moment)
            anonymous = {line.product_id: line for line in
                         self._carts.list_lines(anonymous_cart, epoch)}
            if not anonymous:
                return MergeResult(())
            account = {line.product_id: line for line in
                       self._carts.list_lines(account_cart, epoch)}
            plan = plan_merge(anonymous.values(), account.values(), self._max_lines)
            moves = [self._line_move(anonymous[m.product_id], account.get(m.product_id),
                                     m.account_after) for m in plan.moved]
            try:
                self._merges.move_lines(anonymous_cart, account_cart, moves, now, epoch,
                                        expiry_after(epoch), (len(anonymous), len(account)))
            except CartChanged:
                if attempt == MERGE_ATTEMPTS - 1:
                    raise
                continue
            return plan
        raise AssertionError("unreachable")

    def _line_move(self, anonymous: CartLine, account: CartLine | None,
                   quantity: int) -> LineMove:
        try:
            product = self._product(anonymous.product_id)
            name, price = product.name, product.price_cents
        except UnknownProduct:  # withdrawn since it was added: keep the price it was added at
            kept = account or anonymous
            name, price = kept.name, kept.unit_price_cents
        return LineMove(anonymous, account, quantity, name, price)


class OrderHistory:
    """What a cart ordered: an account's cart includes the orders it adopted at sign-in."""

    def __init__(self, history: DynamoOrderHistory) -> None:
        self._history = history

    def orders(self, cart_id: str | None) -> list[OrderSummary]:
        """Newest first; no cart, no orders."""
        return newest_first(self._history.orders_of(cart_id)) if cart_id else []

    def find(self, account_cart: str, order_id: str) -> Order:
        """An order the account's cart placed or adopted; OrderNotFound for any other id."""
        try:
            validation.order_id(order_id)
        except InvalidInput as exc:
            raise OrderNotFound(order_id) from exc
        order = self._history.find(account_cart, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order


class AccountService:
    def __init__(self, cognito: CognitoAccounts, verifier: TokenVerifier,
                 merger: CartMerger, revocations: DynamoRevocations,
                 clock: Clock = time.time) -> None:
        self._cognito = cognito
        self._verifier = verifier
        self._merger = merger
        self._revocations = revocations
        self._clock = clock

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
                identity = self._verifier.verify(token)
            except ExpiredToken as exc:
                expired = expired or exc.identity
                continue
            except InvalidToken:
                continue
            return SIGNED_OUT if self._revoked(identity) else Session(identity)
        if expired is None or refresh_token is None or self._revoked(expired):
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
        if identity.session_id != expired.session_id and self._revoked(identity):
            return SIGNED_OUT
        return Session(identity, fresh)

    def _revoked(self, identity: Identity) -> bool:
        """Signed out of this session: one strongly consistent GetItem."""
        return bool(identity.session_id) and self._revocations.is_revoked(
            identity.session_id, int(self._clock()))

    def sign_out(self, id_tokens: list[str], refresh_token: str | None) -> None:
        """End the session for good, not just in this browser.

        Every session the cookies name is recorded as revoked (so copies of its ID
        tokens are refused until they could no longer be refreshed), then Cognito
        revokes the refresh token (so it buys no new one). Both are safe to repeat.
        """
        sessions = set()
        for token in id_tokens:
            try:
                sessions.add(self._verifier.verify(token).session_id)
            except ExpiredToken as exc:
                sessions.add(exc.identity.session_id)
            except InvalidToken:
                continue
        until = int(self._clock()) + REFRESH_TOKEN_SECONDS
        for session_id in sorted(s for s in sessions if s):
            self._revocations.revoke(session_id, until)
        if refresh_token:
            self._cognito.revoke(refresh_token)
