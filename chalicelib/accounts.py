"""Accounts' rules: pure values and functions, no IO, no AWS, no HTTP.

Cognito owns the accounts; this module owns what the shop decides about them:
the password policy (the deploy gives the pool the same one), which cart an
account shops in, and how an anonymous cart merges into it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.domain import MAX_QUANTITY, CartLine, DomainError, InvalidInput

# The user pool's password policy: the deploy template and the local stack's pool
# are made from it, and sign-up checks it first to say exactly what is missing
# (Cognito's own refusal names no rule, and moto's none at all).
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
PASSWORD_POLICY = {
    "MinimumLength": PASSWORD_MIN_LENGTH,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": False,
}
# The pool's refresh-token validity (sessions.py and user_pool.py read it from here):
# a revoked session's record lasts as long as any of its tokens could.
REFRESH_TOKEN_DAYS = 30
REFRESH_TOKEN_SECONDS = REFRESH_TOKEN_DAYS * 24 * 3600
EMAIL_MAX_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_CODE = re.compile(r"^[0-9A-Za-z]{1,16}$")


class EmailTaken(DomainError):
    """Sign-up with an e-mail that already has an account."""


class WeakPassword(DomainError):
    """The pool's password policy refuses the password; the message says why."""


class WrongCode(DomainError):
    """The confirmation code is wrong or expired."""


class BadCredentials(DomainError):
    """Wrong password, or no account with that e-mail (the two are not told apart)."""


class NotConfirmed(DomainError):
    """The account exists but its e-mail was never confirmed."""


class AccountsUnavailable(DomainError):
    """This stage has no user pool configured: sign-in cannot work here."""


class TooManyAttempts(DomainError):
    """Cognito throttled the sign-in, sign-up or confirmation: retry later."""


class MailUnavailable(DomainError):
    """Cognito cannot send the pool's mail now (its sending quota is spent): a 503."""


@dataclass(frozen=True)
class Identity:
    """A verified signed-in shopper: Cognito's `sub`, the e-mail, and the session.

    The e-mail is shown only once Cognito says it is verified (`email_verified`):
    an address nobody proved to own is no one's to display. `session_id` is the
    token's `origin_jti` (the same for every token of one sign-in), which sign-out
    revokes.
    """

    subject: str
    email: str
    email_verified: bool = False
    session_id: str = ""

    @property
    def shown_email(self) -> str | None:
        return self.email if self.email_verified else None


@dataclass(frozen=True)
class Tokens:
    """What a sign-in (or a refresh) hands back; the refresh token only on sign-in."""

    id_token: str
    refresh_token: str | None


@dataclass(frozen=True)
class OrderSummary:
    """One row of an order history: the order without its lines."""

    order_id: str
    status: str
    placed_at: str
    item_count: int
    subtotal_cents: int
    currency: str


def newest_first(orders: Iterable[OrderSummary]) -> list[OrderSummary]:
    """placedAt is ISO UTC with milliseconds, so text order is time order."""
    unique = {order.order_id: order for order in orders}
    return sorted(unique.values(), key=lambda order: (order.placed_at, order.order_id),
                  reverse=True)


@dataclass(frozen=True)
class Move:
    """One anonymous line's move into the account's cart."""

    product_id: str
    moved: int          # the quantity that leaves the anonymous line (all of it)
    account_before: int  # the account line's quantity as read (0: no line)
    account_after: int   # capped at MAX_QUANTITY
    excess: int          # what did not fit under the cap, reported to the shopper


@dataclass(frozen=True)
class MergeResult:
    moved: tuple[Move, ...]
    left_behind: tuple[str, ...] = ()  # products the account's cart had no room for

    @property
    def excess(self) -> dict[str, int]:
        return {move.product_id: move.excess for move in self.moved if move.excess}


def account_cart_id(subject: str) -> str:
    """The cart an account shops in, from any browser: derived, never stored.

    Hashed, so it has the shape of every cart id and cannot be guessed from
    an anonymous one; the domain tag keeps it apart from any other use of sub.
    """
    return hashlib.sha256(f"chalice-cart account cart|{subject}".encode()).hexdigest()[:32]


def email(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > EMAIL_MAX_LENGTH or not _EMAIL.match(text):
        raise InvalidInput("email must be an e-mail address")
    # One spelling per address keeps one account per address, whatever the
    # pool's case setting (user_pool.py makes it case-insensitive too).
    return text.lower()


def password_problem(password: str) -> str | None:
    """What PASSWORD_POLICY finds missing in password, None when it passes."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"the password needs at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"the password may have at most {PASSWORD_MAX_LENGTH} characters"
    missing = [
        word for rule, word, pattern in (
            ("RequireUppercase", "an uppercase letter", r"[A-Z]"),
            ("RequireLowercase", "a lowercase letter", r"[a-z]"),
            ("RequireNumbers", "a digit", r"[0-9]"),
        )
        if PASSWORD_POLICY[rule] and not re.search(pattern, password)
    ]
    if missing:
        return "the password needs " + ", ".join(missing)
    return None


def password(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("password must be a non-empty string")
    if len(value) > PASSWORD_MAX_LENGTH:
        raise InvalidInput(f"password may have at most {PASSWORD_MAX_LENGTH} characters")
    return value


def code(value: object) -> str:
    if not isinstance(value, str) or not _CODE.match(value.strip()):
        raise InvalidInput("code must be the confirmation code from the e-mail")
    return value.strip()


def plan_merge(anonymous: Iterable[CartLine], account: Iterable[CartLine],
               max_lines: int | None = None) -> MergeResult:
    """How each anonymous line joins the account's cart.

    Quantities add up to MAX_QUANTITY per line; the rest is reported, not kept.
    A product new to the account's cart needs a free line under `max_lines`;
    without one the anonymous line stays where it is and is reported.
    """
    held = {line.product_id: line.quantity for line in account}
    distinct = len(held)
    moves: list[Move] = []
    left: list[str] = []
    for line in sorted(anonymous, key=lambda line: line.product_id):
        before = held.get(line.product_id, 0)
        if line.product_id not in held:
            if max_lines is not None and distinct >= max_lines:
                left.append(line.product_id)
                continue
            distinct += 1
        after = min(before + line.quantity, MAX_QUANTITY)
        moves.append(Move(line.product_id, line.quantity, before, after,
                          before + line.quantity - after))
        held[line.product_id] = after
    return MergeResult(tuple(moves), tuple(left))
