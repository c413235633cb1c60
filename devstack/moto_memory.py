"""Keep the local moto server's memory and latency flat over a day of shopping.

Applied in the moto server process only (devstack/motoserver.py); nothing here
is deployed. Measured before (bench/endurance.py): the server's RSS grew from
97 to 624 MB over 500 shopper operations, p95 from 252 to 424 ms. By reading
moto 5.2.5:

- `BaseModel.__new__` appends every model object it ever makes (each Item of
  each write, each stream record, each shard iterator) to a class-wide
  `instances_tracked` list, for moto's dashboard; nothing ever frees them.
  `untrack_instances` stops it (the dashboard at /moto-api/ lists nothing).
- `transact_write_items` deep-copies every table it writes to before it starts,
  to put the copy back if the transaction is cancelled: a copy of the whole
  table per add-to-cart and checkout (slower as the table fills), each copy
  kept alive by the list above. `undo_by_item` keeps moto's own transaction
  code but makes that copy the live table, and keeps, instead, a copy of the
  items the transaction names; a cancelled transaction puts those back and
  takes out the stream records its undone writes emitted. All or nothing
  still holds (tests/functional/test_devstack_memory.py).
- every GetRecords call makes a new shard iterator, kept forever in a dict;
  on AWS an iterator expires after 15 minutes (`expire_iterators`).
- the stream keeps every record; DynamoDB Streams keeps 24 hours
  (`trim_stream`).
- a Query sorts the whole table to find one partition (`query_one_partition`).

And one of behaviour, not memory: moto ignores TransactWriteItems'
`ClientRequestToken`. DynamoDB keeps each token's transaction for 10 minutes:
a second call with the same token and the same actions (botocore's re-send
after a timeout, or an attempt that lands late) succeeds and applies nothing;
with other actions it is `IdempotentParameterMismatchException`. Unkeyed cart
writes rely on it (chalicelib/store/keys.py), so the local store and the tests
honour it too (`honour_request_tokens`, applied with `undo_by_item`); MiniStack
1.5.33 honours it itself.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import time
from collections.abc import Callable
from typing import Any

TOKEN_LIFETIME = 10 * 60.0  # seconds: DynamoDB's ClientRequestToken window
ITERATOR_LIFETIME = 15 * 60.0  # seconds: DynamoDB Streams' shard iterators expire after 15 min
STREAM_RETENTION = 24 * 3600.0  # seconds: a stream record is readable for 24 hours


def untrack_instances() -> bool:
    """moto's models stop registering every instance; False if moto changed shape."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data, reset_model_data

    if getattr(BaseModel.__new__, "untracked", False):
        return True
    if "__new__" not in BaseModel.__dict__:
        return False

    def untracked_new(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)

    untracked_new.untracked = True  # type: ignore[attr-defined]
    BaseModel.__new__ = staticmethod(untracked_new)  # type: ignore[assignment,method-assign]
    if model_data:
        reset_model_data()  # drop what was registered before the patch
    return True


def _key_values(table: Any, op_type: str, op: dict[str, Any]) -> tuple[Any, Any]:
    """The (hash, range) DynamoType pair a transaction action names."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    attrs = op["Item"] if op_type == "Put" else op["Key"]
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = (DynamoType(attrs[table.range_key_attr])
                   if table.range_key_attr is not None else None)
    return hash_value, range_value


def _stored(table: Any, hash_value: Any, range_value: Any) -> Any:
    """The item stored under a key, or None; looks without adding a key to moto's dicts."""
    if range_value is None:
        return table.items.get(hash_value)
    bucket = table.items.get(hash_value)
    return bucket.get(range_value) if bucket else None


def _put_back(table: Any, hash_value: Any, range_value: Any, before: Any) -> None:
    if range_value is None:
        if before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before
        return
    bucket = table.items[hash_value]
    if before is None:
        bucket.pop(range_value, None)
        if not bucket:
            del table.items[hash_value]
    else:
        bucket[range_value] = before


_TRANSACTIONS = threading.RLock()


def undo_by_item() -> bool:
    """TransactWriteItems undoes item by item, not by copying tables; False: unchanged."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = getattr(DynamoDBBackend, "transact_write_items", None)
    if original is None:
        return False
    if getattr(original, "undoes_by_item", False):
        return honour_request_tokens()  # applied with it; True if it is in place

    def not_copied(table: Any, memo: dict[int, Any]) -> Any:
        return table

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        # One transaction at a time: what it saves, and the class attribute it sets,
        # are shared by every thread (in-process tests run moto from many).
        with _TRANSACTIONS:
            _undoable(self, transact_items)

    def _undoable(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, item before)
        for action in transact_items if isinstance(transact_items, list) else []:
            try:
                (op_type, op), = action.items()
                table = self.tables[op["TableName"]]
                hash_value, range_value = _key_values(table, op_type, op)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # moto rejects this action before it writes anything
            before = _stored(table, hash_value, range_value)
            saved.append((table, hash_value, range_value,
                          copy.deepcopy(before) if before is not None else None))
        marks = [(table.stream_shard, len(table.stream_shard.items))
                 for table in {id(t): t for t, _, _, _ in saved}.values()
                 if getattr(table, "stream_shard", None) is not None]
        # moto's "backup" of each table is now the live table itself, so its
        # rollback (self.tables[name] = backup) changes nothing: ours does it.
        # (Restored as found: a wrapper of this wrapper may nest it inside itself.)
        had = Table.__dict__.get("__deepcopy__")
        Table.__deepcopy__ = not_copied  # type: ignore[attr-defined]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, before in reversed(saved):
                _put_back(table, hash_value, range_value, before)
            for shard, length in marks:
                del shard.items[length:]  # emitted by the writes just undone
            raise
        finally:
            if had is None:
                del Table.__deepcopy__  # type: ignore[attr-defined]
            else:
                Table.__deepcopy__ = had  # type: ignore[attr-defined]

    transact_write_items.undoes_by_item = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    return honour_request_tokens()


# ClientRequestToken -> (the transaction's actions as JSON, monotonic time it applied)
_TOKENS: dict[str, tuple[str, float]] = {}


def honour_request_tokens(clock: Callable[[], float] = time.monotonic) -> bool:
    """TransactWriteItems applies a ClientRequestToken's transaction once in 10 minutes,
    as DynamoDB does; False: moto's shape is not the one this was written for."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.responses import DynamoHandler

    original = getattr(DynamoHandler, "transact_write_items", None)
    if original is None:
        return False
    if getattr(original, "honours_tokens", False):
        return True

    class IdempotentParameterMismatch(DynamodbException):
        def __init__(self) -> None:
            super().__init__(
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                message="The ClientRequestToken was used for another request in the "
                        "last 10 minutes")

    def transact_write_items(self: Any) -> Any:
        token = self.body.get("ClientRequestToken")
        if not token:
            return original(self)
        actions = json.dumps(self.body.get("TransactItems"), sort_keys=True)
        with _TRANSACTIONS:
            now = clock()
            for old in [t for t, (_, at) in _TOKENS.items() if now - at > TOKEN_LIFETIME]:
                del _TOKENS[old]
            seen = _TOKENS.get(token)
            if seen is not None:
                if seen[0] != actions:
                    raise IdempotentParameterMismatch()
                # Applied already: the same success, nothing applied again.
                return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
            result = original(self)  # a cancelled transaction raises: no token kept
            _TOKENS[token] = (actions, now)
            return result

    transact_write_items.honours_tokens = True  # type: ignore[attr-defined]
    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign]
    return True


def expire_iterators(lifetime: float = ITERATOR_LIFETIME,
                     clock: Callable[[], float] = time.monotonic) -> bool:
    """Shard iterators older than `lifetime` are forgotten, as on AWS."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    if getattr(ShardIterator.__init__, "stamped", False):
        return True
    init = ShardIterator.__init__
    get_records = DynamoDBStreamsBackend.get_records

    def stamped(iterator: Any, *args: Any, **kwargs: Any) -> None:
        init(iterator, *args, **kwargs)
        iterator.issued_at = clock()

    def get_records_pruned(backend: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        from moto.core.exceptions import JsonRESTError

        now = clock()
        if now - getattr(backend, "pruned_at", 0.0) > 60.0:
            backend.pruned_at = now
            for arn, iterator in list(backend.shard_iterators.items()):
                if now - getattr(iterator, "issued_at", now) > lifetime:
                    del backend.shard_iterators[arn]
        if iterator_arn not in backend.shard_iterators:
            raise JsonRESTError("ExpiredIteratorException",
                                "Iterator expired: older than 15 minutes, or unknown")
        result: dict[str, Any] = get_records(backend, iterator_arn, limit)
        return result

    stamped.stamped = True  # type: ignore[attr-defined]
    ShardIterator.__init__ = stamped  # type: ignore[method-assign,assignment]
    DynamoDBStreamsBackend.get_records = get_records_pruned  # type: ignore[method-assign,assignment]
    return True


def _epoch(value: Any) -> float | None:
    """A stream record's creation time in epoch seconds (moto keeps a naive UTC datetime)."""
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return aware.timestamp()
    return float(value) if isinstance(value, int | float) else None


def trim_stream(table: Any, now: float, retention: float = STREAM_RETENTION) -> int:
    """Drop the stream records older than `retention`; the number dropped.

    The shard's starting sequence number moves past them, so sequence numbers
    and TRIM_HORIZON keep their meaning. Call under the server's lock.
    """
    shard = getattr(table, "stream_shard", None)
    if shard is None:
        return 0
    old = 0
    for record in shard.items:
        created = _epoch(record.record["dynamodb"].get("ApproximateCreationDateTime"))
        if created is None or now - created <= retention:
            break
        old += 1
    if old:
        del shard.items[:old]
        shard.starting_sequence_number += old
    return old


def query_one_partition() -> bool:
    """A Query on the table reads its partition, not every item of the table.

    moto's `Table.query` without an index walks `all_items()`, which collects
    and sorts every item of the table, then keeps those of the asked partition:
    each Query cost O(n log n) of the table (the catalog page makes 17 of them:
    861 ms -> 3.6 s p95 over 3,000 operations). Here the walk sees only the
    asked partition's items; moto's own code filters, sorts and pages them as
    before.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "one_partition", False):
        return True

    def query(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name is not None or hash_key is None:
            return original(table, hash_key, *args, **kwargs)
        bucket = table.items.get(hash_key)
        partition = list(bucket.values()) if isinstance(bucket, dict) else (
            [bucket] if bucket is not None else [])
        table.all_items = lambda: partition  # this call only: the instance's, not the class's
        try:
            return original(table, hash_key, *args, **kwargs)
        finally:
            del table.all_items

    query.one_partition = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign,assignment]
    return True


def bound_memory() -> list[str]:
    """Apply every patch; the names of those moto's shape refused (a new moto?)."""
    patches = {"untrack_instances": untrack_instances, "undo_by_item": undo_by_item,
               "expire_iterators": expire_iterators, "query_one_partition": query_one_partition}
    return [name for name, patch in patches.items() if not patch()]
