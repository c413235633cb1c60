"""DynamoDB adapter: the only module that knows the table's item shapes.

It takes a low-level botocore client and a table name, never reads the
environment, and returns domain values. Every mutation is one atomic or
conditional request; nothing here reads and then writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

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
from chalicelib.idempotency import IdempotentRequest, KeyReused

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
# Attempts of a keyed add whose line changed between its read and its write.
ADD_ONCE_ATTEMPTS = 5
# Cancellation reasons that mean "busy", not "your condition failed".
_BUSY_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded",
                           "RequestLimitExceeded"})


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Turn throttling, 5xx and timeouts into StoreUnavailable."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT or status >= 500:
            raise StoreUnavailable(code or f"HTTP {status}") from exc
        raise
    except (BotoConnectionError, HTTPClientError) as exc:
        # Network trouble and timeouts only: a parameter or credentials error
        # is a bug or a misconfiguration, and a retry would not help.
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


def _unchanged(old: dict[str, Any] | None) -> dict[str, Any]:
    """Condition a write on the item being exactly as read (or still absent)."""
    if old is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    parts = ["attribute_exists(pk)"]
    for i, attribute in enumerate(("quantity", "updatedAt", table.TTL_ATTRIBUTE)):
        names[f"#a{i}"] = attribute
        if attribute in old:
            parts.append(f"#a{i} = :a{i}")
            values[f":a{i}"] = old[attribute]
        else:
            parts.append(f"attribute_not_exists(#a{i})")
    condition: dict[str, Any] = {"ConditionExpression": " AND ".join(parts),
                                 "ExpressionAttributeNames": names}
    if values:
        condition["ExpressionAttributeValues"] = values
    return condition


def _replay(record: dict[str, Any], once: IdempotentRequest) -> dict[str, Any]:
    """The response a key record remembers, if it was made for this very request."""
    if _str(record, "requestHash") != once.request_hash:
        raise KeyReused(once.key)
    return record["response"]["M"]  # type: ignore[no-any-return]


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
        with store_errors():
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
            with store_errors():
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
            with store_errors():
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
            with store_errors():
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
        with store_errors():
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
        with store_errors():
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
            with store_errors():
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

    # -- writes that apply once per idempotency key ----------------------

    def add_line_once(self, cart_id: str, product: Product, quantity: int, now: str,
                      now_epoch: int, expires_at: int, once: IdempotentRequest) -> CartLine:
        """add_line, applied once per key; a retry gets the line the first call made.

        A transaction returns no new values, so the line is read and then
        written on the condition that it is unchanged, in one transaction with
        the key record that remembers the resulting line.
        """
        key = {"pk": _s(table.cart_pk(cart_id)), "sk": _s(table.line_sk(product.id))}
        for _ in range(ADD_ONCE_ATTEMPTS):
            with store_errors():
                old = self._client.get_item(
                    TableName=self._table, Key=key, ConsistentRead=True).get("Item")
            live = old is not None and is_live(_expires(old), now_epoch)
            held = _int(old, "quantity") if old is not None and live else 0
            if held > headroom(quantity):
                remembered = self._remembered(cart_id, once, now_epoch)
                if remembered is not None:
                    return line_from_item(remembered)
                raise QuantityLimitExceeded(held)
            line = CartLine(product.id, product.name, product.price_cents,
                            held + quantity, now, expires_at)
            item = {**key, **_line_to_map(line)["M"], "updatedAt": _s(now),
                    "expiresAt": _n(expires_at)}
            try:
                with store_errors():
                    self._client.transact_write_items(TransactItems=[
                        {"Put": self._key_record(cart_id, once, _line_to_map(line),
                                                 now, now_epoch)},
                        {"Put": {"TableName": self._table, "Item": item, **_unchanged(old)}},
                    ])
            except ClientError as exc:
                remembered = self._cancelled_by_key(exc, cart_id, once, now_epoch, 0)
                if remembered is not None:
                    return line_from_item(remembered)
                reasons = exc.response.get("CancellationReasons", [])
                if {r.get("Code") for r in reasons} & _BUSY_REASONS:
                    raise StoreUnavailable("transaction throttled") from exc
                continue  # the line changed since it was read: read it again
            return line
        raise CartChanged(cart_id)

    def _key_record(self, cart_id: str, once: IdempotentRequest, response: dict[str, Any],
                    now: str, now_epoch: int) -> dict[str, Any]:
        """The Put of a key record: it fails while a live record holds the key."""
        return {
            "TableName": self._table,
            "Item": {
                "pk": _s(table.cart_pk(cart_id)),
                "sk": _s(table.IDEMPOTENCY_PREFIX + once.key),
                "requestHash": _s(once.request_hash),
                "response": response,
                "createdAt": _s(now),
                table.TTL_ATTRIBUTE: _n(once.expires_at),
            },
            # DynamoDB deletes expired records late: an expired one is free.
            "ConditionExpression": "attribute_not_exists(pk) OR expiresAt <= :epoch",
            "ExpressionAttributeValues": {":epoch": _n(now_epoch)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _cancelled_by_key(self, exc: ClientError, cart_id: str, once: IdempotentRequest,
                          now_epoch: int, index: int) -> dict[str, Any] | None:
        """The remembered response when the key record cancelled the transaction.

        None when something else cancelled it; re-raises any other error.
        """
        if exc.response["Error"]["Code"] != "TransactionCanceledException":
            raise exc
        reasons = exc.response.get("CancellationReasons", [])
        reason: dict[str, Any] = reasons[index] if index < len(reasons) else {}  # type: ignore[assignment]
        if reason.get("Code") != "ConditionalCheckFailed":
            return None
        item = reason.get("Item")
        if item is None:  # older SDKs and emulators may leave the old item out
            return self._remembered(cart_id, once, now_epoch)
        return _replay(item, once)

    def _remembered(self, cart_id: str, once: IdempotentRequest,
                    now_epoch: int) -> dict[str, Any] | None:
        """The response a live key record remembers, None when there is none."""
        with store_errors():
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": _s(table.cart_pk(cart_id)),
                     "sk": _s(table.IDEMPOTENCY_PREFIX + once.key)},
                ConsistentRead=True,
            ).get("Item")
        if item is None or not is_live(_expires(item), now_epoch):
            return None
        return _replay(item, once)

    # -- summary -------------------------------------------------------

    def get_summary(self, cart_id: str, now_epoch: int) -> CartSummary | None:
        with store_errors():
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
        with store_errors():
            self._client.put_item(TableName=self._table, Item=item)

    # -- orders --------------------------------------------------------

    def checkout(self, cart_id: str, order_id: str, now: str, now_epoch: int,
                 once: IdempotentRequest | None = None) -> Order:
        """Place an order from the cart's live lines in one transaction.

        Each line is deleted on the condition that it still holds what the
        order was built from, so a concurrent change cancels the checkout
        instead of slipping in between. With `once`, the key record that
        remembers the order is part of the same transaction.
        """
        items = self._live_line_items(cart_id, now_epoch)
        if not items:
            # An empty cart may be the first checkout's doing: its retry replays.
            remembered = self._remembered(cart_id, once, now_epoch) if once else None
            if remembered is not None:
                return _order_from_item(remembered)
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
        if once is not None:
            response = {"M": {k: v for k, v in order_item.items() if k not in ("pk", "sk")}}
            actions.append({"Put": self._key_record(cart_id, once, response, now, now_epoch)})
        try:
            with store_errors():
                self._client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if once is not None:
                remembered = self._cancelled_by_key(exc, cart_id, once, now_epoch,
                                                    len(actions) - 1)
                if remembered is not None:
                    return _order_from_item(remembered)
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
        with store_errors():
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": _s(table.cart_pk(cart_id)), "sk": _s(table.order_sk(order_id))},
            )
        item = response.get("Item")
        return _order_from_item(item) if item else None

    def confirm_order(self, cart_id: str, order_id: str, now: str) -> bool:
        """PLACED becomes CONFIRMED once; False when it already was."""
        try:
            with store_errors():
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
        # A mark that holds lives as long as the line does, so it never expires;
        # one that let go is kept a while only to recognise replays.
        values: dict[str, Any] = {":h": {"BOOL": holds}, ":seq": _n(sequence),
                                  ":was": {"BOOL": not holds}}
        if holds:
            update = "SET holds = :h, seq = :seq REMOVE expiresAt"
        else:
            update = "SET holds = :h, seq = :seq, expiresAt = :exp"
            values[":exp"] = _n(expires_at)
        try:
            with store_errors():
                self._client.transact_write_items(TransactItems=[
                    {"Update": {
                        "TableName": self._table,
                        "Key": holder_key,
                        "UpdateExpression": update,
                        "ConditionExpression": (
                            f"{expected} AND (attribute_not_exists(seq) OR seq < :seq)"
                        ),
                        "ExpressionAttributeValues": values,
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
