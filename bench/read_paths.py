"""What the scale model declares the code reads and writes, route by route.

The scale model (bench/footprint.py + bench/scale.py) measures the mix's
operations; this module is the list it is checked against, so that a new
DynamoDB call, a new route or a new cache cannot slip past it:
tests/functional/test_read_paths.py drives every route of app.py with a
counting botocore hook on a controlled clock and compares what it sees with
these figures, warm and cold.

A route's figures are its steady state: caches warm, a cart of two lines
whose summary exists, one order placed. Keys: "METHOD /path" as app.py
declares it, then, after a colon, the case when one route has several.
"""

from __future__ import annotations

from collections import Counter

from chalicelib.store.popularity import COUNTER_SHARDS

# Steady state, caches warm.
ROUTES: dict[str, dict[str, int]] = {
    # pages: the cart's lines and summary; catalog and counts from the caches
    "GET /": {"Query": 1, "GetItem": 1},
    # the cart at today's prices: the lines, their products' stock (BatchGetItem)
    "GET /cart": {"Query": 1, "GetItem": 1, "BatchGetItem": 1},
    "GET /account": {"GetItem": 1},
    "GET /orders": {"Query": 1, "GetItem": 1},
    "GET /orders/{order_id}": {"GetItem": 2},
    "GET /static/{name}": {},
    "GET /static/img/{name}": {},
    "GET /{proxy+}": {},
    "GET /api/openapi.json": {},
    # the JSON API
    "GET /api/products": {},
    "GET /api/cart": {"Query": 1, "BatchGetItem": 1},
    "GET /api/cart/status": {"GetItem": 1},
    # Every cart write is a transaction with the request's record (store/carts.py).
    # An add with an Idempotency-Key (as the shop page sends) of a new line: the
    # line read (none: pick the create), then one transaction that creates it with
    # the header and the key's record.
    "POST /api/cart/items": {"GetItem": 1, "TransactWriteItems": 1},
    # an add to a line the cart holds: the line read (there: add on top), the
    # transaction, then the line read it answers with; a set: the last two
    "POST /api/cart/items:unkeyed, existing line": {"TransactWriteItems": 1, "GetItem": 2},
    "PUT /api/cart/items/{product_id}": {"TransactWriteItems": 1, "GetItem": 1},
    "DELETE /api/cart/items/{product_id}": {"TransactWriteItems": 1},
    "POST /api/cart/checkout": {"Query": 1, "TransactWriteItems": 1},
    "GET /api/orders/{order_id}": {"GetItem": 1},
    "GET /api/orders": {"Query": 1},
    # accounts: Cognito's calls are not DynamoDB's and are not counted here
    "POST /api/account/signup": {},
    "POST /api/account/confirm": {},
    # the merge of an anonymous cart of 2 lines and 1 order into the account's:
    # the orders (Query) and their references (BatchWriteItem); each cart's
    # lines (Query x 2); one transaction moving the lines
    # and the session's record (PutItem), which sign-out writes off and a signed-in
    # request reads (GetItem)
    "POST /api/account/signin": {"Query": 3, "BatchWriteItem": 1, "TransactWriteItems": 1,
                                 "PutItem": 1},
    "POST /api/account/signout": {"PutItem": 1},
    "GET /api/account": {"GetItem": 1},
}

# What each declared cache (chalicelib/caching.py) reads when it is refilled.
CACHE_REFILLS: dict[str, dict[str, int]] = {
    "counts": {"Query": 1},
    "counts snapshot": {"UpdateItem": 1, "Query": COUNTER_SHARDS, "PutItem": 1},
    "catalog": {"Query": 1, "BatchGetItem": 1},  # the products and their stock shards
    "sold out": {},  # it spares a sold-out product's checkout its transaction
}


# The caches each route refills once every lifetime has passed (a table-scope
# cache is refilled by a route that reads it when it finds it stale).
_COUNTED_CATALOG = ("counts", "counts snapshot", "catalog")
CACHES_READ: dict[str, tuple[str, ...]] = {
    "GET /": _COUNTED_CATALOG,
    "GET /cart": ("catalog",),  # the lines at today's prices, the products' images
    "GET /api/cart": ("catalog",),
    "GET /api/products": _COUNTED_CATALOG,
    "POST /api/cart/items": ("catalog",),
    "POST /api/cart/items:unkeyed, existing line": ("catalog",),
    "PUT /api/cart/items/{product_id}": ("catalog",),  # the line at today's price
    "POST /api/cart/checkout": ("catalog",),
    "POST /api/account/signin": ("catalog",),  # the merge prices lines from the catalog
}
# A table-scope cache is looked at only when a process cache is refilled.
READ_VIA: dict[str, str] = {"counts snapshot": "counts"}
# The scale model's mix, in routes.
MIX_ROUTES: dict[str, str] = {
    "shop page": "GET /", "cart page": "GET /cart", "status": "GET /api/cart/status",
    "display": "GET /api/cart", "products": "GET /api/products",
    "add": "POST /api/cart/items", "set": "PUT /api/cart/items/{product_id}",
    "remove": "DELETE /api/cart/items/{product_id}", "checkout": "POST /api/cart/checkout",
}


def reads(op: str, cache: str) -> bool:
    """Does the mix's operation `op` refill `cache` once it is stale?"""
    return cache in CACHES_READ.get(MIX_ROUTES.get(op, op), ())


def expected(route: str) -> Counter[str]:
    return Counter(ROUTES[route])


def refill(names: list[str]) -> Counter[str]:
    total: Counter[str] = Counter()
    for name in names:
        total.update(CACHE_REFILLS[name])
    return total
