"""Create the local table from the shared definition and seed the catalog, idempotently."""

from __future__ import annotations

from typing import Any

from chalicelib import table
from chalicelib.catalog import SEED
from chalicelib.repository import DynamoCartRepository


def ensure_table(client: Any, table_name: str) -> tuple[str, bool]:
    """The table's stream ARN, creating the table if needed; True if it was created."""
    try:
        description = client.describe_table(TableName=table_name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return table.create_table(client, table_name), True
    arn = description.get("LatestStreamArn")
    if not arn:
        raise RuntimeError(f"table {table_name} exists but has no stream")
    return str(arn), False


def bootstrap(client: Any, table_name: str) -> str:
    """Table, stream, TTL and catalog seed; safe to run again. Returns the stream ARN."""
    arn, _ = ensure_table(client, table_name)
    DynamoCartRepository(client, table_name).seed_products(SEED)
    return arn
