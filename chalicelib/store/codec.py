"""Item shapes: domain values to DynamoDB JSON and back (also stream images)."""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.domain import CartLine, Order, Product

# DynamoDB's limit on the actions of one TransactWriteItems.
TRANSACTION_ACTIONS = 100
# ... and on the size of its items together.
TRANSACTION_BYTES = 4_000_000

Item = dict[str, Any]


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def integer(item: Item | None, name: str, default: int = 0) -> int:
    cell = (item or {}).get(name)
    return int(cell["N"]) if cell else default


def string(item: Item | None, name: str, default: str = "") -> str:
    cell = (item or {}).get(name)
    return str(cell["S"]) if cell else default


def expires(item: Item | None) -> int | None:
    cell = (item or {}).get(table.TTL_ATTRIBUTE)
    return int(cell["N"]) if cell else None


def key(pk: str, sk: str) -> Item:
    return {"pk": s(pk), "sk": s(sk)}


def line_from_item(item: Item) -> CartLine:
    """A cart line from its item (DynamoDB JSON, also a stream image)."""
    return CartLine(
        product_id=string(item, "productId"),
        name=string(item, "name"),
        unit_price_cents=integer(item, "unitPriceCents"),
        quantity=integer(item, "quantity"),
        updated_at=string(item, "updatedAt"),
        expires_at=expires(item),
    )


def line_to_map(line: CartLine) -> Item:
    return {"M": {
        "productId": s(line.product_id),
        "name": s(line.name),
        "unitPriceCents": n(line.unit_price_cents),
        "quantity": n(line.quantity),
    }}


def product_from_item(item: Item, stock: int = 0) -> Product:
    """A product from its CATALOG item; its stock lives in STOCK# items (store/stock.py)."""
    active = item.get("active")
    return Product(
        id=string(item, "productId"),
        name=string(item, "name"),
        description=string(item, "description"),
        price_cents=integer(item, "priceCents"),
        image=string(item, "image"),
        stock=stock,
        # Items written before stock existed have no flag: they were on sale.
        active=bool(active["BOOL"]) if active else True,
        stock_shards=integer(item, "stockShards", 1),
        position=integer(item, "position"),
    )


def order_from_item(item: Item) -> Order:
    lines = tuple(line_from_item(cell["M"]) for cell in item["lines"]["L"])
    return Order(
        order_id=string(item, "orderId"),
        status=string(item, "status"),
        lines=lines,
        item_count=integer(item, "itemCount"),
        subtotal_cents=integer(item, "subtotalCents"),
        placed_at=string(item, "placedAt"),
        confirmed_at=string(item, "confirmedAt") or None,
    )


def query_all(client: Any, **kwargs: Any) -> list[Item]:
    """Every page of a Query (call inside errors.translated())."""
    items: list[Item] = []
    while True:
        page = client.query(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def batch_get_all(client: Any, table_name: str, keys: list[Item], consistent: bool,
                  attempts: int = 5) -> list[Item]:
    """Every item of `keys` that exists, 100 keys per BatchGetItem (call inside
    errors.translated()); keys DynamoDB leaves unprocessed are asked again."""
    import time

    items: list[Item] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table_name: {"Keys": keys[start:start + 100],
                                                "ConsistentRead": consistent}}
        for attempt in range(attempts):
            response = client.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.02 * (attempt + 1))  # throttled keys: a short backoff
        else:
            raise UnprocessedKeys(f"BatchGetItem left keys of {table_name} unprocessed")
    return items


def batch_write_all(client: Any, table_name: str, items: list[Item], attempts: int = 5) -> None:
    """Put every item, 25 per BatchWriteItem (call inside errors.translated())."""
    import time

    for start in range(0, len(items), 25):
        request: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}}
                                                for item in items[start:start + 25]]}
        for attempt in range(attempts):
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(0.02 * (attempt + 1))
        else:
            raise UnprocessedKeys(f"BatchWriteItem left items of {table_name} unwritten")


class UnprocessedKeys(Exception):
    """DynamoDB kept some keys of a BatchGetItem unread (throttling)."""
