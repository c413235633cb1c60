"""Domain values as the API's JSON, and request facts the views need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.accounts import MergeResult, OrderSummary
from chalicelib.catalog import (
    LineView,
    NotEnoughStock,
    OutOfStock,
    PriceChanged,
    ProductWithdrawn,
    availability,
    left_text,
)
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
        "stock": max(0, product.stock),
        "soldOut": product.stock <= 0,
        "availability": availability(product.stock),
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


SHOP_PAGE_SIZE = 16  # products per shop page: the first load stays under 60 KB


def shop_page(products: list[Product], query: Mapping[str, str] | None) -> tuple[
        list[Product], int, int]:
    """The products of the page `?page=N` asks for (1 when absent or not a page), the
    page number and the number of pages."""
    pages = max(1, -(-len(products) // SHOP_PAGE_SIZE))
    asked = (query or {}).get("page", "1")
    page = int(asked) if asked.isdigit() and 1 <= int(asked) <= pages else 1
    start = (page - 1) * SHOP_PAGE_SIZE
    return products[start:start + SHOP_PAGE_SIZE], page, pages


def line_view_json(view: LineView) -> dict[str, Any]:
    """A cart line at today's price; `previousPriceCents` is what the line was added at."""
    return {
        **line_json(view.line),
        "unitPriceCents": view.price_cents,
        "lineTotalCents": view.line_total_cents,
        "priceChanged": view.price_changed,
        "previousPriceCents": view.line.unit_price_cents if view.price_changed else None,
        "withdrawn": view.withdrawn,
        "stock": None if view.stock is None else max(0, view.stock),
        "availability": view.availability,
    }


def cart_view_json(views: list[LineView], item_count: int,
                   subtotal_cents: int) -> dict[str, Any]:
    """The cart at today's prices; withdrawn lines are listed but not counted."""
    return {
        "items": [line_view_json(view) for view in views],
        "itemCount": item_count,
        "subtotalCents": subtotal_cents,
        "currency": CURRENCY,
    }


def catalog_conflict(exc: ProductWithdrawn | PriceChanged | OutOfStock | NotEnoughStock,
                     checkout: bool) -> dict[str, str]:
    """The 409 body (Chalice's error shape) for a promise the catalog cannot keep."""
    if isinstance(exc, ProductWithdrawn):
        names = ", ".join(name for _, name in exc.products)
        return {"Code": "ProductWithdrawn",
                "Message": f"no longer available: {names}; remove it from the cart"
                if checkout else f"{names} is no longer available"}
    if isinstance(exc, PriceChanged):
        return {"Code": "PriceChanged",
                "Message": f"prices changed since the cart was shown: {exc}; the cart now "
                           "has today's prices, check out again to pay them"}
    if isinstance(exc, OutOfStock):
        return {"Code": "OutOfStock", "Message": "not enough stock: " + "; ".join(
            f"{s.name}: {left_text(s.left)} (the cart has {s.wanted})" for s in exc.shortages)}
    return {"Code": "NotEnoughStock",
            "Message": f"{exc.product.name}: {left_text(exc.product.stock)}, "
                       f"so {exc.wanted} cannot be in the cart"}


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


def signed_in_json(email: str, merge: MergeResult) -> dict[str, Any]:
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
