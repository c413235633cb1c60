"""The catalog's rules and the catalog file, with no IO at all."""

from __future__ import annotations

import pytest

from chalicelib.catalog import (
    OutOfStock,
    PriceChanged,
    ProductWithdrawn,
    allocate,
    availability,
    plan_takes,
    split_evenly,
    verdict,
)
from chalicelib.domain import CartLine, Product
from deploy.catalog import CatalogFileError, parse, plan, seed

HEADER = "id,name,description,priceCents,stock,active\n"
KETTLE = Product("kettle", "Kettle", "Steel.", 5900, "kettle.svg", stock=10)


def test_the_seed_catalog_is_a_shop_of_at_least_60_products_with_images():
    products = seed()
    assert len(products) >= 60
    assert len({p.id for p in products}) == len(products)
    assert {p.id for p in products[:3]} == {"espresso-cup", "pour-over", "kettle"}
    assert any(not p.active for p in products) and any(p.stock == 0 for p in products)


def test_a_file_parses_into_products_with_a_default_image():
    products = parse(HEADER + 'kettle,Kettle,"Steel, 1 l",5900,10,true\n'
                     "mug,Mug,Blue.,1200,0,FALSE\n")
    assert products[0] == Product("kettle", "Kettle", "Steel, 1 l", 5900, "product.svg",
                                  stock=10, active=True, position=2)
    assert (products[1].active, products[1].stock) == (False, 0)


@pytest.mark.parametrize("rows, problem", [
    ("kettle,Kettle,Steel.,59.00,10,true\n", "line 2: priceCents (integer cents) must be"),
    ("kettle,Kettle,Steel.,0,10,true\n", "line 2: priceCents (integer cents) must be between 1"),
    ("kettle,Kettle,Steel.,5900,-1,true\n", "line 2: stock must be a whole number >= 0"),
    ("kettle,Kettle,Steel.,5900,10,maybe\n", "line 2: active must be true or false"),
    ("kettle,,Steel.,5900,10,true\n", "line 2: missing name"),
    ("kettle,Kettle,Steel.,5900,10,true\nkettle,K,S,1,1,true\n",
     "line 3: duplicate id 'kettle' (first on line 2)"),
    ("Kettle!,Kettle,Steel.,5900,10,true\n", "line 2: id 'Kettle!' must be"),
    ("kettle,Kettle,Steel.,5900,10,true,extra\n", "line 2: more cells than columns"),
])
def test_a_bad_row_is_named_by_its_line(rows, problem):
    with pytest.raises(CatalogFileError) as failed:
        parse(HEADER + rows)
    assert any(p.startswith(problem) for p in failed.value.problems), failed.value.problems


def test_an_unknown_or_missing_column_fails_on_line_1():
    with pytest.raises(CatalogFileError) as failed:
        parse("id,name,colour,priceCents,stock,active\n")
    assert failed.value.problems == [
        "line 1: unknown column(s): colour (columns: id, name, description, priceCents, "
        "stock, active, image, stockShards)",
        "line 1: missing column(s): description"]


def test_every_bad_line_is_reported_not_only_the_first():
    with pytest.raises(CatalogFileError) as failed:
        parse(HEADER + "a,A,x,1,1,true\nb,B,x,-2,1,true\nc,C,x,1,1,nope\n")
    assert [p.split(":")[0] for p in failed.value.problems] == ["line 3", "line 4"]


def test_a_plan_tells_added_changed_withdrawn_and_unchanged_apart():
    current = {"kettle": KETTLE, "mug": Product("mug", "Mug", "", 900, "m.svg", stock=1)}
    cup = Product("cup", "Cup", "", 500, "c.svg")
    result = plan(current, [cup, Product("kettle", "Kettle", "Steel.", 6100, "kettle.svg",
                                         stock=10),
                            Product("mug", "Mug", "", 900, "m.svg", stock=1, active=False)])
    assert [p.id for p in result.added] == ["cup"]
    assert [new.price_cents for _, new in result.changed] == [6100]
    assert [new.id for _, new in result.withdrew] == ["mug"]
    assert plan(current, list(current.values())).unchanged == list(current.values())


def test_availability_says_sold_out_and_only_n_left_under_the_threshold():
    assert [availability(n) for n in (0, -1, 1, 10, 11)] == [
        "sold out", "sold out", "only 1 left", "only 10 left", None]


def test_stock_splits_evenly_over_shards():
    assert split_evenly(10, 4) == [3, 3, 2, 2] and split_evenly(0, 2) == [0, 0]


def test_allocate_takes_one_shard_when_one_holds_enough_else_splits():
    assert allocate([3, 3, 2, 2], 2, start=2) == {2: 2}
    assert allocate([0, 0, 5, 0], 3, start=0) == {2: 3}
    assert allocate([3, 3, 2, 2], 9, start=0) == {0: 3, 1: 3, 2: 2, 3: 1}
    assert allocate([3, 3, 2, 2], 11, start=0) is None


def test_plan_takes_picks_a_shard_and_keeps_the_lines_price():
    lines = [CartLine("kettle", "Kettle", 5900, 2), CartLine("cup", "Cup", 500, 1)]
    takes = plan_takes(lines, {"kettle": 4, "cup": 1}, {}, pick=7)
    assert [(t.product_id, t.shard, t.quantity, t.price_cents) for t in takes] == [
        ("kettle", 3, 2, 5900), ("cup", 0, 1, 500)]
    split = plan_takes(lines[:1], {"kettle": 2}, {"kettle": [1, 1]}, pick=0, spare=1)
    assert [(t.shard, t.quantity) for t in split] == [(0, 1), (1, 1)]


def test_the_verdict_names_withdrawn_then_price_then_stock():
    line = CartLine("kettle", "Kettle", 5900, 2)
    assert verdict([line], {"kettle": KETTLE}) is None
    assert isinstance(verdict([line], {}), ProductWithdrawn)
    changed = verdict([line], {"kettle": Product("kettle", "Kettle", "", 6100, "", stock=9)})
    assert isinstance(changed, PriceChanged) and str(changed) == "Kettle $59.00 -> $61.00"
    short = verdict([line], {"kettle": Product("kettle", "Kettle", "", 5900, "", stock=1)})
    assert isinstance(short, OutOfStock) and str(short) == "Kettle: only 1 left"


def test_a_split_stays_within_the_transactions_spare_actions():
    lines = [CartLine("kettle", "Kettle", 5900, 4)]
    assert len(plan_takes(lines, {"kettle": 4}, {"kettle": [1, 1, 1, 1]}, 0, spare=3)) == 4
    assert len(plan_takes(lines, {"kettle": 4}, {"kettle": [1, 1, 1, 1]}, 0, spare=2)) == 1


def test_a_full_cart_fits_one_transaction_with_room_for_splits():
    from chalicelib.domain import CHECKOUT_FIXED_ACTIONS, MAX_LINES
    from chalicelib.store.orders import TRANSACTION_ACTIONS

    assert 2 * MAX_LINES + CHECKOUT_FIXED_ACTIONS + 7 == TRANSACTION_ACTIONS


def test_a_shop_page_is_16_products_and_a_bad_page_number_is_the_first():
    from chalicelib.presenters import shop_page

    products = [Product(f"p{i}", f"P{i}", "", 100, "") for i in range(40)]
    assert [len(shop_page(products, {"page": n})[0]) for n in ("1", "2", "3")] == [16, 16, 8]
    assert shop_page(products, {"page": "3"})[1:] == (3, 3)
    assert shop_page(products, {"page": "x"})[1] == shop_page(products, None)[1] == 1
    assert shop_page([], None) == ([], 1, 1)


def test_the_seed_file_sets_each_products_place_in_the_shop():
    assert [p.position for p in seed()[:3]] == [2, 3, 4]
