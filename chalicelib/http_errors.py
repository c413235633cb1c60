"""How a domain error becomes an HTTP answer: Chalice's error shape, never a 500.

Every route that reaches the store is wrapped in `http_errors`: each domain
exception (chalicelib/domain.py, catalog.py, accounts.py, idempotency.py) is
answered with its status and a message for a shopper; a new rule without a
mapping is still a 400, and a busy store a 503 with Retry-After.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice.app import (
    BadRequestError,
    ChaliceViewError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    Response,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableEntityError,
)

from chalicelib import idempotency, presenters
from chalicelib.accounts import (
    AccountsUnavailable,
    BadCredentials,
    EmailTaken,
    MailUnavailable,
    NotConfirmed,
    TooManyAttempts,
    WeakPassword,
    WrongCode,
)
from chalicelib.catalog import NotEnoughStock, OutOfStock, PriceChanged, ProductWithdrawn
from chalicelib.domain import (
    MAX_LINES,
    CartChanged,
    DomainError,
    EmptyCart,
    InvalidInput,
    NotInCart,
    OrderNotFound,
    QuantityLimitExceeded,
    StoreUnavailable,
    TooManyLines,
    UnknownProduct,
)

# The page shows Message as it is, so it speaks to a shopper; API clients read
# Retry-After, and docs/OPERATIONS.md tells them to resend the same
# Idempotency-Key.
STORE_BUSY_MESSAGE = "The shop is busy right now. Please try again in a moment."
STORE_BUSY_RETRY_AFTER = "1"


class UnsupportedMediaType(ChaliceViewError):
    """415, named as Chalice names its own content-type refusal."""

    STATUS_CODE = 415


def store_unavailable() -> Response:
    return Response(
        body={"Code": "ServiceUnavailable", "Message": STORE_BUSY_MESSAGE},
        status_code=503,
        headers={"Retry-After": STORE_BUSY_RETRY_AFTER},
    )


def http_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except InvalidInput as exc:
            raise BadRequestError(str(exc)) from exc
        except UnknownProduct as exc:
            raise BadRequestError(f"unknown product: {exc}") from exc
        except QuantityLimitExceeded as exc:
            raise ConflictError(
                f"a cart line holds at most 99; this line holds {exc} already"
            ) from exc
        except TooManyLines as exc:
            raise ConflictError(
                f"a cart holds at most {MAX_LINES} different products; "
                "remove one to add another"
            ) from exc
        except NotInCart as exc:
            raise NotFoundError(f"product {exc} is not in the cart") from exc
        except OrderNotFound as exc:
            raise NotFoundError("no such order") from exc
        except EmptyCart as exc:
            raise ConflictError("the cart is empty") from exc
        except CartChanged as exc:
            raise ConflictError("the cart changed while this request ran; try again") from exc
        except idempotency.KeyReused as exc:
            raise UnprocessableEntityError(
                f"this {idempotency.HEADER} was already used for a different request"
            ) from exc
        except EmailTaken as exc:
            raise ConflictError("an account with this e-mail already exists; sign in") from exc
        except WeakPassword as exc:
            raise BadRequestError(str(exc)) from exc
        except WrongCode as exc:
            raise BadRequestError("that confirmation code is wrong or has expired") from exc
        except BadCredentials as exc:
            raise UnauthorizedError("wrong e-mail or password") from exc
        except NotConfirmed as exc:
            raise ForbiddenError("confirm the e-mail address first: enter the code "
                                 "we sent to it") from exc
        except TooManyAttempts as exc:
            raise TooManyRequestsError("too many attempts; wait a minute and try again") from exc
        except AccountsUnavailable:
            return Response(body={"Code": "ServiceUnavailable",
                                  "Message": "accounts are not set up on this stage"},
                            status_code=503)
        except MailUnavailable:
            return Response(body={"Code": "ServiceUnavailable",
                                  "Message": "mail cannot be sent right now; "
                                             "try again later"},
                            status_code=503)
        except StoreUnavailable:
            return store_unavailable()
        except (ProductWithdrawn, PriceChanged, OutOfStock, NotEnoughStock) as exc:
            checkout_view = view.__name__ == "checkout"
            return Response(body=presenters.catalog_conflict(exc, checkout_view),
                            status_code=409)
        except DomainError as exc:  # a new rule without a mapping is still a 4xx
            raise BadRequestError(str(exc)) from exc
    return wrapper
