"""Packing a batch's counted writes into transactions: pure, no IO."""

from __future__ import annotations

import json

from chalicelib.store.codec import TRANSACTION_ACTIONS
from chalicelib.store.popularity import (
    COUNTER_BYTES,
    COUNTER_SHARDS,
    DynamoPopularity,
    Recount,
    net_deltas,
    pack,
)


def recount(cart: str, seed: str = "1", marks: int = 0, **deltas: int) -> Recount:
    put = {"TableName": "t", "Item": {"pk": {"S": f"CART#{cart}"}, "sk": {"S": "SUMMARY"}}}
    mark_items = tuple({"pk": {"S": f"CART#{cart}"}, "sk": {"S": f"HOLDER#{i}"},
                        "seq": {"S": "0"}} for i in range(marks))
    return Recount(cart, put, deltas, mark_items, seed=seed)


def test_a_gain_and_a_loss_of_one_product_cancel_out():
    assert net_deltas([recount("a", kettle=1, grinder=1), recount("b", kettle=-1),
                       recount("c", grinder=1)]) == {"grinder": 2}


def test_one_product_over_many_carts_fills_each_transaction_with_one_add():
    carts = [recount(str(i), kettle=1) for i in range(150)]
    packs = pack(carts)
    assert [len(p) for p in packs] == [TRANSACTION_ACTIONS - 1, 150 - TRANSACTION_ACTIONS + 1]
    assert sum(packs, []) == carts  # every cart once, in order


def test_a_pack_never_exceeds_the_actions_of_a_transaction():
    carts = [recount(str(i), marks=i % 3, **{f"p{i % 40}": 1, f"q{i % 7}": -1})
             for i in range(300)]
    for group in pack(carts):
        assert sum(r.actions for r in group) + len(net_deltas(group)) <= TRANSACTION_ACTIONS
    assert sum(pack(carts), []) == carts


def test_a_pack_never_exceeds_the_bytes_of_a_transaction():
    carts = [recount(str(i), kettle=1) for i in range(40)]
    packs = pack(carts, size=1000)
    assert len(packs) > 4 and sum(packs, []) == carts
    for group in packs:
        puts = sum(len(json.dumps(r.put, separators=(",", ":"))) for r in group)
        assert puts + COUNTER_BYTES <= 1000


def test_the_shards_are_the_same_for_a_replay_and_spread_over_batches():
    store = DynamoPopularity(None, "t")

    def shards(seed: str, attempt: int = 0) -> list[str]:
        actions, owners = store._actions([recount("a", seed, kettle=1),
                                          recount("b", "9" + seed, kettle=1)], seed, attempt)
        assert owners == ["a", "b", None]
        return [a["Update"]["Key"]["pk"]["S"] for a in actions if "Update" in a]

    assert shards("0001") == shards("0001")
    assert shards("0001", 1) != shards("0001")
    assert len({shards(str(seed).zfill(40))[0] for seed in range(64)}) > COUNTER_SHARDS // 2
