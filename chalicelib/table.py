"""The one DynamoDB table: its definition and its key layout.

Tests, the local stack and the deploy template all build the table from
TABLE_SPEC, so there is exactly one place where it is described.

Key layout (single table, pk/sk strings):

    CATALOG         PRODUCT#<productId>    a product: name, description, price, image
    CART#<cartId>   LINES                  the lines' header: lineCount, rev (TTL)
    CART#<cartId>   LINE#<productId>       one cart line (TTL)
    CART#<cartId>   SUMMARY                the cart summary cart-status reads, and the products
                                           the counts carry for the cart (TTL once it holds none)
    CART#<cartId>   ORDER#<orderId>        an order, reachable only from its cart; its
                                           checkout request's record (store/orders.py)
    CART#<cartId>   IDEMPOTENCY#<key>      a remembered response (TTL)
    CART#<cartId>   REQUEST#<token>        one API request's write happened (TTL 1 h)
    CART#<cartId>   ORDERREF#<orderId>     an account's order placed from another cart
    CART#<cartId>   HOLDER#<productId>     migration only: the cart's holdings before the summary
                                           counted them (read and deleted by the stream)
    CART#<cartId>   ADOPTEDBY              the one account that adopted this anonymous cart
    SESSION#<id>    REVOKED                a signed-out session: its tokens are refused (TTL)
    POPULARITY#<n>  PRODUCT#<productId>    shard n of the product's `inCarts` count
    COUNTS          SNAPSHOT               every product's `inCarts`, summed from the shards
    COUNTS          LEASE                  who is computing the next snapshot
    STOCK#<productId>#<k>   STOCK          allotment k of the product's stock on hand,
                                           with copies of its price and active flag

Only LINE# and ORDER# items need a follow-up (followups.STREAM_FILTER_PATTERNS);
SUMMARY and POPULARITY# items are the follow-ups' own writes; LINES,
IDEMPOTENCY# and REQUEST# items are written in the same transaction as the
lines they guard ("LINES" does not begin with "LINE#": no filter matches it);
the COUNTS items are written by the API (the first reader to find the snapshot stale).
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "expiresAt"

TABLE_SPEC: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
    "StreamSpecification": {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    },
}

CATALOG_PK = "CATALOG"
PRODUCT_PREFIX = "PRODUCT#"
CART_PREFIX = "CART#"
LINE_PREFIX = "LINE#"
# The lines' header: its sort key does not begin with LINE_PREFIX, so the stream's
# filter and the lines' Query never see it.
LINES_SK = "LINES"
ORDER_PREFIX = "ORDER#"
SUMMARY_SK = "SUMMARY"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
REQUEST_PREFIX = "REQUEST#"
# Not "ORDER#...": the order-confirmation filter and follow-up must never see one.
ORDER_REF_PREFIX = "ORDERREF#"
HOLDER_PREFIX = "HOLDER#"
COUNTER_PREFIX = "POPULARITY#"
COUNTS_PK = "COUNTS"
SNAPSHOT_SK = "SNAPSHOT"
LEASE_SK = "LEASE"
STOCK_PREFIX = "STOCK#"
STOCK_SK = "STOCK"
ADOPTED_BY_SK = "ADOPTEDBY"
SESSION_PREFIX = "SESSION#"
REVOKED_SK = "REVOKED"


def create_table(client: Any, table_name: str) -> str:
    """Create the table with its stream and TTL; return the stream ARN."""
    response = client.create_table(TableName=table_name, **TABLE_SPEC)
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return str(response["TableDescription"]["LatestStreamArn"])


def cloudformation_properties() -> dict[str, Any]:
    """TABLE_SPEC as AWS::DynamoDB::Table properties, TTL included.

    CloudFormation's StreamSpecification has only StreamViewType; the API's
    StreamEnabled flag would fail validation.
    """
    return {
        **TABLE_SPEC,
        "StreamSpecification": {
            "StreamViewType": TABLE_SPEC["StreamSpecification"]["StreamViewType"],
        },
        "TimeToLiveSpecification": {
            "Enabled": True,
            "AttributeName": TTL_ATTRIBUTE,
        },
    }


def cart_pk(cart_id: str) -> str:
    return CART_PREFIX + cart_id


def line_sk(product_id: str) -> str:
    return LINE_PREFIX + product_id


def order_sk(order_id: str) -> str:
    return ORDER_PREFIX + order_id


def product_sk(product_id: str) -> str:
    return PRODUCT_PREFIX + product_id


def counter_pk(shard: int) -> str:
    return f"{COUNTER_PREFIX}{shard}"


def stock_pk(product_id: str, shard: int) -> str:
    # One partition key per allotment: a flash sale's writes spread over partitions.
    return f"{STOCK_PREFIX}{product_id}#{shard}"
