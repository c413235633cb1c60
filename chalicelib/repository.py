"""DynamoDB adapter: the only module that knows the table's item shapes.

It takes a low-level botocore client and a table name, never reads the
environment, and returns domain values. Every mutation is one atomic or
conditional request; nothing here reads and then writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from chalicelib import table
from chalicelib.domain import (
    CURRENCY,
    CartChanged,
    CartLine,
    CartSummary,
    EmptyCart,
    NotInCart,
    Order,
    Product,
    QuantityLimitExceeded,
    StoreUnavailable,
    headroom,
    is_live,
)

# Error codes that mean "the store did not do it, try again later".
_TRANSIENT = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    "TransactionInProgressException",
})
_LINE_FIELDS = {"#q": "quantity", "#n": "name"}


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """Turn throttling, 5xx and timeouts into StoreUnavailable."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT or status >= 500:
            raise StoreUnavailable(code or f"HTTP {status}") from exc
        raise
    except (BotoConnectionError, ReadTimeoutError) as exc:
        raise StoreUnavailable(type(exc).__name__) from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _int(item: dict[str, Any], name: str, default: int = 0) -> int:
    cell = item.get(name)
    return int(cell["N"]) if cell else default


def _str(item: dict[str, Any], name: str, default: str = "") -> str:
    cell = item.get(name)
    return str(cell["S"]) if cell else default


def _expires(item: dict[str, Any]) -> int | None:
    cell = item.get(table.TTL_ATTRIBUTE)
    return int(cell["N"]) if cell else None


def line_from_item(item: dict[str, Any]) -> CartLine:
    """A cart line from its item (DynamoDB JSON, also a stream image)."""
    return CartLine(
        product_id=_str(item, "productId"),
        name=_str(item, "name"),
        unit_price_cents=_int(item, "unitPriceCents"),
        quantity=_int(item, "quantity"),
        updated_at=_str(item, "updatedAt"),
        expires_at=_expires(item),
    )


def _line_to_map(line: CartLine) -> dict[str, Any]:
    return {"M": {
        "productId": _s(line.product_id),
        "name": _s(line.name),
        "unitPriceCents": _n(line.unit_price_cents),
        "quantity": _n(line.quantity),
    }}


def _product_from_item(item: dict[str, Any]) -> Product:
    return Product(
        id=_str(item, "productId"),
        name=_str(item, "name"),
        description=_str(item, "description"),
        price_cents=_int(item, "priceCents"),
        image=_str(item, "image"),
        in_carts=max(0, _int(item, "inCarts")),
    )


def _order_from_item(item: dict[str, Any]) -> Order:
    lines = tuple(line_from_item(cell["M"]) for cell in item["lines"]["L"])
    return Order(
        order_id=_str(item, "orderId"),
        status=_str(item, "status"),
        lines=lines,
        item_count=_int(item, "itemCount"),
        subtotal_cents=_int(item, "subtotalCents"),
        placed_at=_str(item, "placedAt"),
        confirmed_at=_str(item, "confirmedAt") or None,
    )


class DynamoCartRepository:
    """Carts, orders and the catalog in the single table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- catalog -------------------------------------------------------

    def list_products(self) -> list[Product]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(table.CATALOG_PK)},
        }
        with _store_errors():
            while True:
                page = self._client.query(**kwargs)
                items.extend(page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_product_from_item(item) for item in items]

    def seed_products(self, products: Iterable[Product]) -> None:
        """Write the catalog, keeping each product's `inCarts` count."""
        for product in products:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": _s(table.CATALOG_PK), "sk": _s(table.product_sk(product.id))},
                UpdateExpression=(
                    "SET productId = :id, #n = :name, description = :d, "
                    "priceCents = :p, image = :img, "
                    "inCarts = if_not_exists(inCarts, :zero)"
                ),
                ExpressionAttributeNames={"#n": "name"},
                ExpressionAttributeValues={
                    ":id": _s(product.id), ":name": _s(product.name),
                    ":d": _s(product.description), ":p": _n(product.price_cents),
                    ":img": _s(product.image), ":zero": _n(0),
                },
            )

    # -- cart lines ----------------------------------------------------

    def add_line(self, cart_id: str, product: Product, quantity: int,
                 now: str, now_epoch: int, expires_at: int) -> CartLine:
        """Add quantity to the line in one conditional UpdateItem."""
        key = {"pk": _s(table.cart_pk(cart_id)), "sk": _s(table.line_sk(product.id))}
        try:
            with _store_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=(
                        "SET #q = if_not_exists(#q, :zero) + :q, productId = :pid, "
                        "#n = :name, unitPriceCents = :price, updatedAt = :now, "
                        "expiresAt = :exp"
                    ),
                    ConditionExpression=(
                        "(attribute_not_exists(#q) OR #q <= :room) AND "
                        "(attribute_not_exists(expiresAt) OR expiresAt > :epoch)"
                    ),
                    ExpressionAttributeNames=_LINE_FIELDS,
                    ExpressionAttributeValues={
                        ":zero": _n(0), ":q": _n(quantity), ":pid": _s(product.id),
                        ":name": _s(product.name), ":price": _n(product.price_cents),
                        ":now": _s(now), ":exp": _n(expires_at),
                        ":room": _n(headroom(quantity)), ":epoch": _n(now_epoch),
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            if is_live(_expires(old), now_epoch):
                raise QuantityLimitExceeded(_int(old, "quantity")) from exc
            # The line expired but DynamoDB has not deleted it yet: start afresh.
            return self._replace_expired_line(key, old, product, quantity, now, expires_at)
        return line_from_item(response["Attributes"])

    def _replace_expired_line(self, key: dict[str, Any], old: dict[str, Any],
                              product: Product, quantity: int, now: str,
                              expires_at: int) -> CartLine:
        line = CartLine(product.id, product.name, product.price_cents, quantity, now)
        try:
            with _store_errors():
                self._client.put_item(
                    TableName=self._table,
                    Item={**key, **_line_to_map(line)["M"], "updatedAt": _s(now),
                          "expiresAt": _n(expires_at)},
                    ConditionExpression="expiresAt = :old",
                    ExpressionAttributeValues={":old": old["expiresAt"]},
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise CartChanged("the line changed while it was renewed") from exc
            raise
        return line

    def set_quantity(self, cart_id: str, product_id: str, quantity: int,
                     now: str, now_epoch: int, expires_at: int) -> CartLine:
        """Set a live line's quantity; NotInCart when there is none."""
        try:
            with _store_errors():
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"pk": _s(table.cart_pk(cart_id)),
                         "sk": _s(table.line_sk(product_id))},
                    UpdateExpression="SET #q = :q, updatedAt = :now, expiresAt = :exp",
                    ConditionExpression="attribute_exists(#q) AND expiresAt > :epoch",
                    ExpressionAttributeNames={"#q": "quantity"},
                    ExpressionAttributeValues={
                        ":q": _n(quantity), ":now": _s(now), ":exp": _n(expires_at),
                        ":epoch": _n(now_epoch),
                    },
                    ReturnValues="ALL_NEW",
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise NotInCart(product_id) from exc
            raise
        return line_from_item(response["Attributes"])

    def remove_line(self, cart_id: str, product_id: str) -> None:
        """Delete the line; deleting an absent line is not an error."""
        with _store_errors():
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": _s(table.cart_pk(cart_id)),
                     "sk": _s(table.line_sk(product_id))},
            )

    def list_lines(self, cart_id: str, now_epoch: int) -> list[CartLine]:
        return [line_from_item(item) for item in self._live_line_items(cart_id, now_epoch)]

    def _live_line_items(self, cart_id: str, now_epoch: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :line)",
            "ExpressionAttributeValues": {
                ":pk": _s(table.cart_pk(cart_id)), ":line": _s(table.LINE_PREFIX),
            },
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        with _store_errors():
            while True:
                page = self._client.query(**kwargs)
                items.extend(page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [item for item in items if is_live(_expires(item), now_epoch)]

    def renew_line(self, cart_id: str, product_id: str, expires_at: int,
                   now_epoch: int) -> None:
        """Push a live line's expiry out to the cart's; never shorten or revive one."""
        try:
            with _store_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": _s(table.cart_pk(cart_id)),
                         "sk": _s(table.line_sk(product_id))},
                    UpdateExpression="SET expiresAt = :exp",
                    ConditionExpression="expiresAt < :exp AND expiresAt > :epoch",
                    ExpressionAttributeValues={
                        ":exp": _n(expires_at), ":epoch": _n(now_epoch),
                    },
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # -- summary -------------------------------------------------------

    def get_summary(self, cart_id: str, now_epoch: int) -> CartSummary | None:
        with _store_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": _s(table.cart_pk(cart_id)), "sk": _s(table.SUMMARY_SK)},
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None or not is_live(_expires(item), now_epoch):
            return None
        return CartSummary(
            item_count=_int(item, "itemCount"),
            subtotal_cents=_int(item, "subtotalCents"),
            updated_at=_str(item, "updatedAt") or None,
        )

    def put_summary(self, cart_id: str, summary: CartSummary, expires_at: int) -> None:
        item = {
            "pk": _s(table.cart_pk(cart_id)),
            "sk": _s(table.SUMMARY_SK),
            "itemCount": _n(summary.item_count),
            "subtotalCents": _n(summary.subtotal_cents),
            "expiresAt": _n(expires_at),
        }
        if summary.updated_at:
            item["updatedAt"] = _s(summary.updated_at)
        with _store_errors():
            self._client.put_item(TableName=self._table, Item=item)

    # -- orders --------------------------------------------------------

    def checkout(self, cart_id: str, order_id: str, now: str, now_epoch: int) -> Order:
        """Place an order from the cart's live lines in one transaction.

        Each line is deleted on the condition that it still holds what the
        order was built from, so a concurrent change cancels the checkout
        instead of slipping in between.
        """
        items = self._live_line_items(cart_id, now_epoch)
        if not items:
            raise EmptyCart(cart_id)
        lines = [line_from_item(item) for item in items]
        count = sum(line.quantity for line in lines)
        subtotal = sum(line.line_total_cents for line in lines)
        pk = _s(table.cart_pk(cart_id))
        order_item = {
            "pk": pk,
            "sk": _s(table.order_sk(order_id)),
            "orderId": _s(order_id),
            "status": _s("PLACED"),
            "lines": {"L": [_line_to_map(line) for line in lines]},
            "itemCount": _n(count),
            "subtotalCents": _n(subtotal),
            "currency": _s(CURRENCY),
            "placedAt": _s(now),
        }
        actions: list[dict[str, Any]] = [{"Put": {
            "TableName": self._table,
            "Item": order_item,
            "ConditionExpression": "attribute_not_exists(pk)",
        }}]
        for item in items:
            actions.append({"Delete": {
                "TableName": self._table,
                "Key": {"pk": pk, "sk": item["sk"]},
                "ConditionExpression": "#q = :q AND updatedAt = :u",
                "ExpressionAttributeNames": {"#q": "quantity"},
                "ExpressionAttributeValues": {
                    ":q": item["quantity"], ":u": item["updatedAt"],
                },
            }})
        try:
            with _store_errors():
                self._client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                codes = {r.get("Code") for r in reasons}
                if codes & {"ThrottlingError", "TransactionConflict",
                            "ProvisionedThroughputExceeded"}:
                    raise StoreUnavailable("transaction throttled or in conflict") from exc
                raise CartChanged(cart_id) from exc
            raise
        return _order_from_item(order_item)

    def get_order(self, cart_id: str, order_id: str) -> Order | None:
        with _store_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": _s(table.cart_pk(cart_id)), "sk": _s(table.order_sk(order_id))},
            )
        item = response.get("Item")
        return _order_from_item(item) if item else None

    def confirm_order(self, cart_id: str, order_id: str, now: str) -> bool:
        """PLACED becomes CONFIRMED once; False when it already was."""
        try:
            with _store_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": _s(table.cart_pk(cart_id)), "sk": _s(table.order_sk(order_id))},
                    UpdateExpression="SET #s = :confirmed, confirmedAt = :now",
                    ConditionExpression="#s = :placed",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":confirmed": _s("CONFIRMED"), ":placed": _s("PLACED"),
                        ":now": _s(now),
                    },
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- popularity ----------------------------------------------------

    def record_holding(self, product_id: str, cart_id: str, holds: bool,
                       sequence: int, expires_at: int) -> bool:
        """Move the (product, cart) holder mark and the product's count together.

        The mark remembers the last stream sequence applied, so a duplicated
        or replayed record changes nothing. False when there was nothing to do.
        """
        holder_key = {"pk": _s(table.PRODUCT_PREFIX + product_id),
                      "sk": _s(table.HOLDER_PREFIX + cart_id)}
        # The mark must be in the other state: present-and-false or absent
        # for a new holder, present-and-true for one that lets go.
        expected = "(attribute_not_exists(holds) OR holds = :was)" if holds else "holds = :was"
        try:
            with _store_errors():
                self._client.transact_write_items(TransactItems=[
                    {"Update": {
                        "TableName": self._table,
                        "Key": holder_key,
                        "UpdateExpression": "SET holds = :h, seq = :seq, expiresAt = :exp",
                        "ConditionExpression": (
                            f"{expected} AND (attribute_not_exists(seq) OR seq < :seq)"
                        ),
                        "ExpressionAttributeValues": {
                            ":h": {"BOOL": holds}, ":seq": _n(sequence),
                            ":exp": _n(expires_at), ":was": {"BOOL": not holds},
                        },
                    }},
                    {"Update": {
                        "TableName": self._table,
                        "Key": {"pk": _s(table.CATALOG_PK),
                                "sk": _s(table.product_sk(product_id))},
                        "UpdateExpression": "ADD inCarts :delta",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":delta": _n(1 if holds else -1)},
                    }},
                ])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = exc.response.get("CancellationReasons", [])
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return False
            raise
        return True
