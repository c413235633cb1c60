"""Checkout a shop can trust: today's prices, withdrawn products, stock on hand (issue 17)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from chalicelib import runtime, table
from chalicelib.store.codec import key
from deploy import catalog as catalog_file
from tests.factories import ESPRESSO, KETTLE, TABLE_NAME, add_body, cookie_from
from tests.functional.conftest import request


def body(response):
    return json.loads(response.body)


def load(repo, *products):
    """What `make catalog` does with a file holding these products; the cache catches up."""
    catalog_file.apply(repo.catalog, list(products), out=lambda line: None)
    runtime.cart_service().catalog.expire()


def stock(repo, product_id):
    return repo.products([product_id], consistent=True)[product_id].stock


def cart_items(client, cookie):
    return {i["productId"]: i for i in body(request(client, "GET", "/api/cart", cookie))["items"]}


def orders_in(dynamodb, cookie):
    cart_id = cookie.split("=", 1)[1].split(".")[0]
    return dynamodb.query(
        TableName=TABLE_NAME, KeyConditionExpression="pk = :pk AND begins_with(sk, :o)",
        ExpressionAttributeValues={":pk": {"S": table.cart_pk(cart_id)},
                                   ":o": {"S": table.ORDER_PREFIX}})["Items"]


# -- today's price ----------------------------------------------------------------

def test_a_price_change_shows_in_the_cart_and_checkout_charges_the_new_price_after_a_409(
        client, cart, repo, dynamodb):
    load(repo, dataclasses.replace(KETTLE, price_cents=3 * KETTLE.price_cents))
    line = cart_items(client, cart)["kettle"]
    assert (line["unitPriceCents"], line["priceChanged"], line["previousPriceCents"]) == (
        17700, True, 5900)
    page = request(client, "GET", "/cart", cart).body.decode()
    assert 'data-testid="price-changed"' in page and "was $59.00" in page

    refused = request(client, "POST", "/api/cart/checkout", cart)
    assert refused.status_code == 409
    assert body(refused)["Code"] == "PriceChanged"
    assert "Gooseneck kettle $59.00 -> $177.00" in body(refused)["Message"]
    assert orders_in(dynamodb, cart) == [] and stock(repo, "kettle") == KETTLE.stock
    assert cart_items(client, cart)["kettle"]["priceChanged"] is False  # the line has it now

    order = request(client, "POST", "/api/cart/checkout", cart)
    assert order.status_code == 201
    assert body(order)["subtotalCents"] == 2 * ESPRESSO.price_cents + 17700


def test_set_quantity_does_not_keep_an_old_price_alive(client, cart, repo):
    load(repo, dataclasses.replace(KETTLE, price_cents=6100))
    assert request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 2}).status_code \
        == 200
    assert body(request(client, "POST", "/api/cart/checkout", cart))["Code"] == "PriceChanged"
    order = body(request(client, "POST", "/api/cart/checkout", cart))
    assert {i["productId"]: i["unitPriceCents"] for i in order["items"]}["kettle"] == 6100


# -- withdrawn products --------------------------------------------------------------

def test_a_withdrawn_product_cannot_be_added_once_the_cache_catches_up(client, repo):
    load(repo, dataclasses.replace(KETTLE, active=False))
    refused = request(client, "POST", "/api/cart/items", body=add_body("kettle"))
    assert refused.status_code == 409
    assert body(refused) == {"Code": "ProductWithdrawn",
                             "Message": "Gooseneck kettle is no longer available"}
    listed = {p["id"] for p in body(request(client, "GET", "/api/products"))["products"]}
    assert "kettle" not in listed and "espresso-cup" in listed


def test_a_cart_holding_a_withdrawn_product_shows_it_and_checks_out_nothing(
        client, cart, repo, dynamodb):
    load(repo, dataclasses.replace(KETTLE, active=False))
    items = cart_items(client, cart)
    assert items["kettle"]["withdrawn"] is True
    cart_body = body(request(client, "GET", "/api/cart", cart))
    assert cart_body["subtotalCents"] == 2 * ESPRESSO.price_cents  # not charged for
    page = request(client, "GET", "/cart", cart).body.decode()
    assert 'data-testid="withdrawn"' in page and 'data-testid="remove-line"' in page

    refused = request(client, "POST", "/api/cart/checkout", cart)
    assert refused.status_code == 409
    assert body(refused)["Code"] == "ProductWithdrawn"
    assert "Gooseneck kettle" in body(refused)["Message"]
    assert orders_in(dynamodb, cart) == []
    assert stock(repo, "espresso-cup") == ESPRESSO.stock  # nothing written
    assert set(cart_items(client, cart)) == {"espresso-cup", "kettle"}

    assert request(client, "DELETE", "/api/cart/items/kettle", cart).status_code == 204
    assert request(client, "POST", "/api/cart/checkout", cart).status_code == 201


# -- stock on hand ---------------------------------------------------------------------

def test_checkout_takes_the_units_from_stock_in_its_transaction(client, cart, repo):
    assert request(client, "POST", "/api/cart/checkout", cart).status_code == 201
    assert stock(repo, "espresso-cup") == ESPRESSO.stock - 2
    assert stock(repo, "kettle") == KETTLE.stock - 1


def test_a_checkout_short_of_stock_is_a_409_naming_what_is_left_and_writes_nothing(
        client, cart, repo, dynamodb):
    load(repo, dataclasses.replace(ESPRESSO, stock=1), dataclasses.replace(KETTLE, stock=0))
    refused = request(client, "POST", "/api/cart/checkout", cart)
    assert refused.status_code == 409
    assert body(refused) == {"Code": "OutOfStock", "Message": (
        "not enough stock: Espresso cup: only 1 left (the cart has 2); "
        "Gooseneck kettle: sold out (the cart has 1)")}
    assert orders_in(dynamodb, cart) == []
    assert (stock(repo, "espresso-cup"), stock(repo, "kettle")) == (1, 0)
    assert set(cart_items(client, cart)) == {"espresso-cup", "kettle"}


def test_an_add_or_set_above_the_stock_is_a_409_saying_how_many_are_left(client, cart, repo):
    load(repo, dataclasses.replace(KETTLE, stock=3))
    added = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 4))
    assert added.status_code == 409
    assert body(added) == {"Code": "NotEnoughStock",
                           "Message": "Gooseneck kettle: only 3 left, so 4 cannot be in the cart"}
    # The cart holds 1 kettle: 3 more would make 4, one more than there are.
    more = request(client, "POST", "/api/cart/items", cart, add_body("kettle", 3))
    assert (more.status_code, body(more)["Message"]) == (
        409, "Gooseneck kettle: only 3 left, so 4 cannot be in the cart")
    assert request(client, "POST", "/api/cart/items", cart, add_body("kettle", 2)).status_code \
        == 201
    set_ = request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 5})
    assert (set_.status_code, body(set_)["Code"]) == (409, "NotEnoughStock")
    assert request(client, "PUT", "/api/cart/items/kettle", cart, {"quantity": 3}).status_code \
        == 200


def test_the_product_list_and_the_shop_page_say_how_many_are_left(client, repo):
    load(repo, dataclasses.replace(KETTLE, stock=3), dataclasses.replace(ESPRESSO, stock=0))
    products = {p["id"]: p for p in body(request(client, "GET", "/api/products"))["products"]}
    assert (products["kettle"]["stock"], products["kettle"]["availability"]) == (3, "only 3 left")
    assert (products["espresso-cup"]["soldOut"], products["espresso-cup"]["availability"]) == (
        True, "sold out")
    assert products["grinder"]["availability"] is None
    page = request(client, "GET", "/").body.decode()
    assert "only 3 left" in page and "sold out" in page


def test_a_line_is_split_over_shards_when_no_single_one_holds_it(client, repo, dynamodb):
    load(repo, dataclasses.replace(KETTLE, stock=10, stock_shards=4))  # 3, 3, 2, 2
    added = request(client, "POST", "/api/cart/items", body=add_body("kettle", 9))
    cookie = cookie_from(added)
    order = request(client, "POST", "/api/cart/checkout", cookie)
    assert order.status_code == 201, order.body
    assert stock(repo, "kettle") == 1
    units = [int(dynamodb.get_item(TableName=TABLE_NAME, Key=key(table.stock_pk("kettle", k),
                                                                  table.STOCK_SK))
                 ["Item"]["units"]["N"]) for k in range(4)]
    assert sum(units) == 1 and min(units) == 0


@pytest.mark.parametrize("shards", [1, 3])
def test_a_reload_of_the_same_stock_after_sales_restocks(client, repo, shards):
    load(repo, dataclasses.replace(KETTLE, stock=5, stock_shards=shards))
    cookie = cookie_from(request(client, "POST", "/api/cart/items", body=add_body("kettle", 5)))
    assert request(client, "POST", "/api/cart/checkout", cookie).status_code == 201
    assert stock(repo, "kettle") == 0
    load(repo, dataclasses.replace(KETTLE, stock=5, stock_shards=shards))
    assert stock(repo, "kettle") == 5


# -- the shop at a real shop's size -----------------------------------------------------

def test_the_shop_pages_the_whole_catalog_in_the_files_order(client, repo):
    from tests.factories import FULL_SEED

    repo.seed_products(FULL_SEED)
    runtime.cart_service().catalog.expire()
    on_sale = [p.id for p in FULL_SEED if p.active]
    listed = [p["id"] for p in body(request(client, "GET", "/api/products"))["products"]]
    assert listed == on_sale and len(listed) >= 60
    shown = []
    for page in range(1, 6):
        html = request(client, "GET", f"/?page={page}").body.decode()
        listing = html.split('data-testid="pager"')[0]
        shown += [i for i in on_sale if f'data-product-id="{i}"' in listing]
    assert sorted(shown) == sorted(on_sale)  # every product on exactly one page
    first = request(client, "GET", "/").body.decode()
    assert first.count('data-testid="product-card"') == 16
    assert 'href="/?page=2" rel="next"' in first and 'aria-current="page">1<' in first
    assert request(client, "GET", "/?page=99").body.decode().count("product-card") == 16
