"""bench/flash_sale.py's arithmetic: the shard count keeps every stock item under half its limit."""

from __future__ import annotations

from bench.flash_sale import PARTITION_WCU, figures


def test_one_stock_item_cannot_take_a_flash_sale_and_the_shards_can():
    sale = figures(rate=5000, units=100, stock_wcu=2, memo_seconds=1.0)
    assert sale["one_item_wcu"] == 10_000 and sale["one_item_share"] == 10
    assert sale["shards"] == 20
    assert sale["per_shard_wcu"] <= PARTITION_WCU / 2
    assert sale["sold_out_read_share"] < 0.5


def test_a_bigger_item_needs_more_shards():
    assert figures(stock_wcu=4, memo_seconds=1.0)["shards"] == 40
