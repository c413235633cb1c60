"""Create the local table from the shared definition and seed the catalog, idempotently."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from chalicelib import table
from chalicelib.repository import DynamoCartRepository
from deploy.catalog import seed

BATCH = 25  # BatchWriteItem's limit in DynamoDB (moto takes more)


class SnapshotError(RuntimeError):
    """The saved local data cannot be restored (one-line message)."""


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
    DynamoCartRepository(client, table_name).seed_products(seed())
    return arn


def restore(client: Any, table_name: str, snapshot: Path) -> int | None:
    """Put back the items a snapshot saved; None when there is none to restore.

    Run on a table just created, before the stream runner starts: the
    supervisor then marks the runner's start after these writes
    (runner.mark_start), so the INSERT records the restore emits are never
    taken for shoppers' writes.
    """
    try:
        saved = json.loads(snapshot.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"cannot read the saved data {snapshot}: {exc}; "
                            "`make reset` starts clean") from exc
    if saved.get("table") != table_name:
        raise SnapshotError(f"{snapshot} holds table {saved.get('table')!r}, not "
                            f"{table_name!r}; `make reset` starts clean")
    items: list[dict[str, Any]] = saved.get("items", [])
    for start in range(0, len(items), BATCH):
        pending: dict[str, Any] = {table_name: [
            {"PutRequest": {"Item": item}} for item in items[start:start + BATCH]]}
        for attempt in range(10):
            unprocessed = client.batch_write_item(RequestItems=pending).get(
                "UnprocessedItems") or {}
            if not unprocessed:
                break
            pending = unprocessed
            time.sleep(0.05 * (attempt + 1))
        else:
            raise SnapshotError(f"the store kept refusing the restore of {snapshot}")
    return len(items)
