"""The local table's items as plain JSON, kept up to date from the table's own stream.

The moto server saves the table every second it changed (motoserver.Snapshotter).
Turning every item into JSON for each save cost O(table) under the server's one
lock: ~350 ms at 10,000 items on this machine, so the longer a session ran, the
more of every second the store spent saving, and the slower every request got.
The stream already says what changed (NEW_AND_OLD_IMAGES: each write's new
image, each delete's keys): the mirror applies the records since its last look,
and only reads the whole table the first time, or when the table was re-created
or its stream moved past what the mirror saw. Call it under the server's lock.
"""

from __future__ import annotations

import json
from typing import Any

IMAGES = ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")


def _key(keys: dict[str, Any]) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


class TableMirror:
    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._table_id: int | None = None
        self._next: int | None = None  # the sequence number of the first record not applied
        self.full_reads = 0

    def items(self, table: Any) -> list[dict[str, Any]]:
        """Every item of `table`, as GetItem's `Item` would show it."""
        shard = getattr(table, "stream_shard", None)
        view = (getattr(table, "stream_specification", None) or {}).get("StreamViewType")
        if (shard is not None and view in IMAGES and id(table) == self._table_id
                and self._next is not None
                and shard.starting_sequence_number <= self._next
                <= shard.starting_sequence_number + len(shard.items)):
            self._apply(shard.items[self._next - shard.starting_sequence_number:])
        else:
            self._read_all(table)
        self._table_id = id(table)
        self._next = (shard.starting_sequence_number + len(shard.items)
                      if shard is not None else None)
        return list(self._items.values())

    def _apply(self, records: list[Any]) -> None:
        for record in records:
            body = record.record
            change = body["dynamodb"]
            key = _key(change["Keys"])
            if body["eventName"] == "REMOVE":
                self._items.pop(key, None)
            else:
                self._items[key] = change["NewImage"]

    def _read_all(self, table: Any) -> None:
        self.full_reads += 1
        names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
        self._items = {}
        for item in table.all_items():
            attributes = item.to_json()["Attributes"]
            self._items[_key({name: attributes[name] for name in names})] = attributes
