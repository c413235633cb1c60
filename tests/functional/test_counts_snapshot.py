"""The shared counts snapshot: one container sums the shards for the whole fleet.

Several containers are several CatalogCache objects over one table, each on
a controlled clock: what each reads is counted from the botocore client's own
events.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from chalicelib import table
from chalicelib.domain import EMPTY_SUMMARY
from chalicelib.repository import DynamoCartRepository
from chalicelib.services import (
    COUNTS,
    COUNTS_LEASE_SECONDS,
    COUNTS_SNAPSHOT,
    CatalogCache,
)
from chalicelib.store.popularity import COUNTER_SHARDS, sequence_text
from chalicelib.store.summaries import summary_holds
from tests.factories import TABLE_NAME

SUM_OF_SHARDS = Counter({"Query": 1 + COUNTER_SHARDS, "UpdateItem": 1, "PutItem": 1})
SNAPSHOT_ONLY = Counter({"Query": 1})


class Calls:
    def __init__(self, client: Any) -> None:
        self.made: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.made[model.name] += 1

    def take(self) -> Counter[str]:
        made, self.made = self.made, Counter()
        return made


@pytest.fixture
def fleet(repo: DynamoCartRepository, dynamodb: Any) -> Any:
    now = [1_000_000.0]

    def container() -> CatalogCache:
        return CatalogCache(clock=lambda: now[0])

    return now, container, Calls(dynamodb)


def hold(repo: DynamoCartRepository, cart: str, product: str, sequence: int) -> None:
    """The cart's summary counts the product: the stream's transaction, made directly."""
    seen = repo.carts.read_summary(cart)
    held = (summary_holds(seen) or frozenset()) | {product}
    put = repo.carts.summary_put(cart, EMPTY_SUMMARY, 0, sequence_text(sequence), held, seen)
    assert repo.popularity.recount(cart, put, {product: 1})


def in_carts(cache: CatalogCache, repo: DynamoCartRepository) -> dict[str, int]:
    return {p.id: p.in_carts for p in cache.products(repo) if p.in_carts}


def test_the_first_reader_sums_the_shards_and_the_others_read_its_snapshot(repo, fleet):
    now, container, calls = fleet
    hold(repo, "a", "kettle", 1)
    first, second = container(), container()
    first.products(repo)  # the catalog too
    calls.take()
    first.expire()
    assert in_carts(first, repo) == {"kettle": 1}
    # and the catalog again (its products and their stock)
    assert calls.take() == SUM_OF_SHARDS + Counter({"Query": 1, "BatchGetItem": 1})
    second.products(repo)
    calls.take()  # its catalog
    now[0] += COUNTS.seconds + 0.1
    assert in_carts(second, repo) == {"kettle": 1}
    assert calls.take() == SNAPSHOT_ONLY


def test_a_stale_snapshot_is_summed_again_by_one_container_only(repo, fleet):
    now, container, calls = fleet
    caches = [container() for _ in range(4)]
    for cache in caches:
        cache.products(repo)
    hold(repo, "a", "grinder", 1)
    now[0] += COUNTS_SNAPSHOT.seconds + 0.1
    calls.take()
    seen = [in_carts(cache, repo) for cache in caches]
    assert seen == [{"grinder": 1}] * 4
    made = calls.take()
    # One lease, one sum, one snapshot; every other container read the snapshot.
    assert (made["UpdateItem"], made["PutItem"]) == (1, 1)
    assert made["Query"] == COUNTER_SHARDS + len(caches)


def test_counts_are_never_older_than_both_windows(repo, fleet):
    now, container, _ = fleet
    cache = container()
    assert in_carts(cache, repo) == {}
    hold(repo, "a", "tote", 1)
    now[0] += COUNTS.seconds + 0.1
    assert in_carts(cache, repo) == {}  # the snapshot is younger than its lifetime
    now[0] += COUNTS_SNAPSHOT.seconds
    assert in_carts(cache, repo) == {"tote": 1}


def test_a_container_that_died_holding_the_lease_blocks_only_for_a_lease(repo, fleet, dynamodb):
    now, container, calls = fleet
    cache = container()
    cache.products(repo)
    dynamodb.update_item(  # a container took the lease at this moment, and died
        TableName=TABLE_NAME, Key={"pk": {"S": table.COUNTS_PK}, "sk": {"S": table.LEASE_SK}},
        UpdateExpression="SET takenAt = :t",
        ExpressionAttributeValues={":t": {"N": str(int((now[0] + 1) * 1000))}})
    hold(repo, "a", "scale", 1)
    now[0] += COUNTS_SNAPSHOT.seconds + 1.1
    calls.take()
    assert in_carts(cache, repo) == {}
    assert calls.take() == SNAPSHOT_ONLY
    now[0] += COUNTS_LEASE_SECONDS
    assert in_carts(cache, repo) == {"scale": 1}


def test_a_late_computation_never_puts_the_snapshot_back(repo, fleet):
    now, container, _ = fleet
    cache = container()
    hold(repo, "a", "filters", 1)
    assert in_carts(cache, repo) == {"filters": 1}
    popularity = repo.popularity
    popularity._put_snapshot({}, int((now[0] - 10) * 1000))  # summed long ago, written now
    assert popularity.read_snapshot().counts == {"filters": 1}
