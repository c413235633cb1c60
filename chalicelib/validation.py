"""Turn untrusted request bodies into plain values, or say exactly what is wrong."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.domain import MAX_QUANTITY, MIN_QUANTITY, InvalidInput

PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_PRICE_WORDS = ("price", "cents", "amount", "total", "cost")


def product_id(value: Any) -> str:
    if not isinstance(value, str) or not PRODUCT_ID.match(value):
        raise InvalidInput(
            "productId must be a catalog id: lowercase letters, digits and '-', "
            "at most 64 characters"
        )
    return value


def quantity(value: Any, *, minimum: int) -> int:
    # bool is an int in Python; JSON true is not a quantity.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("quantity must be a whole number")
    if not minimum <= value <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be between {minimum} and {MAX_QUANTITY}")
    return value


def _fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    extra = sorted(set(body) - set(allowed))
    priced = [name for name in extra if any(w in name.lower() for w in _PRICE_WORDS)]
    if priced:
        raise InvalidInput(
            f"prices come from the catalog, not the client: remove {', '.join(priced)}"
        )
    if extra:
        raise InvalidInput(f"unknown field(s): {', '.join(extra)}")
    missing = [name for name in allowed if name not in body]
    if missing:
        raise InvalidInput(f"missing field(s): {', '.join(missing)}")
    return body


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object_pairs_hook: a key given twice is refused, not resolved.

    `{"quantity": 1, "quantity": 50}` means 1 to one parser and 50 to another; a
    body that two readers could understand differently is not accepted at all.
    """
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise InvalidInput(f"the field {name!r} appears more than once")
        result[name] = value
    return result


def add_item(body: Any) -> tuple[str, int]:
    """Validate `{"productId", "quantity"}` for add-to-cart."""
    fields = _fields(body, ("productId", "quantity"))
    return product_id(fields["productId"]), quantity(
        fields["quantity"], minimum=MIN_QUANTITY
    )


def set_quantity(body: Any) -> int:
    """Validate `{"quantity"}`; 0 means remove the line."""
    fields = _fields(body, ("quantity",))
    return quantity(fields["quantity"], minimum=0)


def no_body(body: Any) -> None:
    """For requests that take no body: nothing, or an empty JSON object."""
    _fields(body, ())


def order_id(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{32}", value):
        raise InvalidInput("orderId is not an order id")
    return value


def fields(body: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object with exactly these fields (their values checked by the caller)."""
    return _fields(body, allowed)
