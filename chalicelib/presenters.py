"""Domain values as the API's JSON, and request facts the views need."""

from __future__ import annotations

from typing import Any

from chalicelib.accounts import MergeResult, OrderSummary
from chalicelib.domain import CURRENCY, CartLine, CartSummary, CartTotals, Order, Product


def base_path(context: dict[str, Any], uri_params: dict[str, str] | None) -> str:
    """The path prefix the app is served under: '' locally, '/api' deployed.

    API Gateway puts the stage in requestContext.path but not in
    resourcePath; `chalice local` has neither, so the difference is the prefix.
    """
    full = str(context.get("path") or "")
    route = str(context.get("resourcePath") or "")
    for name, value in (uri_params or {}).items():
        # "{proxy+}", a greedy variable, is filled in as "proxy".
        route = route.replace("{" + name + "+}", value).replace("{" + name + "}", value)
    if route == "/":
        return full.rstrip("/")
    if route and full.endswith(route):
        return full[: len(full) - len(route)].rstrip("/")
    return ""


def product_json(product: Product, base: str) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "priceCents": product.price_cents,
        "currency": CURRENCY,
        "imageUrl": f"{base}/static/img/{product.image}",
        "inCarts": product.in_carts,
    }


def line_json(line: CartLine) -> dict[str, Any]:
    return {
        "productId": line.product_id,
        "name": line.name,
        "unitPriceCents": line.unit_price_cents,
        "quantity": line.quantity,
        "lineTotalCents": line.line_total_cents,
    }


def cart_json(lines: list[CartLine], cart_totals: CartTotals) -> dict[str, Any]:
    return {
        "items": [line_json(line) for line in lines],
        "itemCount": cart_totals.item_count,
        "subtotalCents": cart_totals.subtotal_cents,
        "currency": CURRENCY,
    }


def status_json(summary: CartSummary) -> dict[str, Any]:
    return {
        "itemCount": summary.item_count,
        "subtotalCents": summary.subtotal_cents,
        "currency": CURRENCY,
        "updatedAt": summary.updated_at,
    }


def order_json(order: Order) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "status": order.status,
        "items": [line_json(line) for line in order.lines],
        "itemCount": order.item_count,
        "subtotalCents": order.subtotal_cents,
        "currency": CURRENCY,
        "placedAt": order.placed_at,
        "confirmedAt": order.confirmed_at,
    }


def order_summary_json(order: OrderSummary) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "status": order.status,
        "placedAt": order.placed_at,
        "itemCount": order.item_count,
        "subtotalCents": order.subtotal_cents,
        "currency": order.currency,
    }


def signed_in_json(email: str | None, merge: MergeResult) -> dict[str, Any]:
    """Who signed in, and what the merge could not keep (over 99, or no room)."""
    return {
        "email": email,
        "merged": {
            "movedLines": len(merge.moved),
            "excess": [{"productId": product_id, "quantity": quantity}
                       for product_id, quantity in sorted(merge.excess.items())],
            "leftBehind": list(merge.left_behind),
        },
    }
