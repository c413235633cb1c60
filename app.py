"""chalice-cart: HTTP routes and stream follow-ups wired to chalicelib."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from chalice.app import (
    BadRequestError,
    Chalice,
    ConflictError,
    DynamoDBEvent,
    NotFoundError,
    Request,
    Response,
    UnauthorizedError,
)

from chalicelib import (
    cookies,
    followups,
    idempotency,
    logging_setup,
    metrics,
    openapi,
    presenters,
    request_guard,
    runtime,
    sessions,
    validation,
    web,
)
from chalicelib.account_services import SIGNED_OUT, Session
from chalicelib.accounts import (
    AccountsUnavailable,
)
from chalicelib.domain import (
    Order,
    OrderNotFound,
    StoreUnavailable,
)
from chalicelib.http_errors import (
    STORE_BUSY_RETRY_AFTER,
    UnsupportedMediaType,
    http_errors,
    store_unavailable,
)

app = Chalice(app_name="chalice-cart")

# `chalice package` imports this module with no table around; the deploy's
# merge template puts the real stream ARN in both the event and the variable.
STREAM_ARN = os.environ.get(
    "TABLE_STREAM_ARN",
    "arn:aws:dynamodb:us-east-1:000000000000:table/placeholder/stream/placeholder",
)
ACCESS_LOG = logging_setup.configure(app.log)
MAX_BODY_BYTES = 8192


# -- every request: one line (access record and metrics), and a bound on the body --

@app.middleware("http")
def log_requests(event: Request, get_response: Callable[[Request], Response]) -> Response:
    started = time.perf_counter()
    # What Chalice answers if anything below raises.
    status, body = 500, {"Code": "InternalServerError"}
    with logging_setup.request_scope(event.context, event.lambda_context) as request_id:
        try:
            response = get_response(event)
            status, body = response.status_code, response.body
            response.headers["X-Request-Id"] = request_id
            return response
        finally:
            logging_setup.log_request(
                ACCESS_LOG, event.method, event.path, status, started,
                logging_setup.error_code(status, body),
                metrics.request_members(runtime.metrics_settings(), event.method, event.path,
                                        status))


@app.middleware("http")
def refuse_cross_origin_writes(event: Request,
                               get_response: Callable[[Request], Response]) -> Response:
    # Also: HEAD answered without a body, HSTS behind https (chalicelib/request_guard.py).
    return request_guard.guard(event, get_response, os.environ.get("SHOP_ORIGINS"))


@app.middleware("http")
def session_cookies(event: Request, get_response: Callable[[Request], Response]) -> Response:
    # The session is read lazily, once per request (_session); a refreshed ID
    # token goes back to the browser on whatever the view answers.
    token = _request_session.set({})
    try:
        response = get_response(event)
        refreshed = _request_session.get().get("session")
        if isinstance(refreshed, Session) and refreshed.refreshed_id_token:
            _add_cookies(response, [sessions.session_cookie(refreshed.refreshed_id_token,
                                                            _secure())])
        return response
    finally:
        _request_session.reset(token)


@app.middleware("http")
def limit_body_size(event: Request, get_response: Callable[[Request], Response]) -> Response:
    # Chalice maps no exception raised in middleware, so answer with a Response.
    if len(event.raw_body) > MAX_BODY_BYTES:
        return Response(
            body={"Code": "RequestEntityTooLarge",
                  "Message": f"the request body is over {MAX_BODY_BYTES} bytes"},
            status_code=413,
        )
    return get_response(event)


# -- the request and its cart cookie ------------------------------------------

def _request() -> Request:
    request = app.current_request
    # Chalice sets current_request before any view runs.
    assert request is not None  # nosec B101
    return request


def _json_body() -> Any:
    request = _request()
    # Chalice lets a request without Content-Type through as JSON, then reads
    # its body only when the header starts with lowercase "application/json".
    # Media types are case-insensitive, and a body must say what it is.
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise UnsupportedMediaType(
            "a request with a body needs the header Content-Type: application/json")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(f"Unsupported media type: {content_type}")
    try:
        return json.loads(request.raw_body, object_pairs_hook=validation.unique_keys)
    except (ValueError, RecursionError) as exc:
        # Deeply nested JSON makes json.loads raise RecursionError, which
        # Chalice (catching ValueError only) would answer with a 500.
        raise BadRequestError("Error Parsing JSON") from exc


def _no_body() -> None:
    # Checkout and remove take no body: a stray one (a price, say) is refused,
    # not ignored. An empty JSON object is allowed, as some clients send one.
    if _request().raw_body.strip():
        validation.no_body(_json_body())


def _anonymous_cart() -> str | None:
    headers = _request().headers
    return cookies.cart_id_from_header(
        runtime.cookie_secret(), headers.get("cookie"), int(time.time())
    )


# -- the signed-in shopper ------------------------------------------------------

_request_session: ContextVar[dict[str, Any]] = ContextVar("request_session")


def _session() -> Session:
    """Who the session cookies say this is; forged, foreign or expired = signed out."""
    state = _request_session.get()
    if "session" not in state:
        id_tokens, refresh = sessions.tokens_from_header(_request().headers.get("cookie"))
        try:
            state["session"] = (runtime.account_service().session(id_tokens, refresh)
                                if id_tokens else SIGNED_OUT)
        except AccountsUnavailable:  # no pool on this stage: no token can be valid
            state["session"] = SIGNED_OUT
    session: Session = state["session"]
    return session


def _current_cart() -> str | None:
    """The account's cart while signed in, else this browser's anonymous one."""
    return _session().cart_id or _anonymous_cart()


def _secure() -> bool:
    return str(_request().headers.get("x-forwarded-proto", "")) == "https"


def _add_cookies(response: Response, values: list[str]) -> None:
    existing = response.headers.get("Set-Cookie")
    before = [] if existing is None else [existing] if isinstance(existing, str) else existing
    merged = [*before, *values]
    response.headers["Set-Cookie"] = merged[0] if len(merged) == 1 else merged


def _idempotency_key() -> str | None:
    # A key is remembered per cart: a cookie-less retry of a first add lands
    # in a fresh cart (docs/OPERATIONS.md, "Reliability").
    return idempotency.key_from_header(_request().headers.get(idempotency.HEADER))


def _cart_for_write() -> str:
    return _current_cart() or cookies.new_cart_id()


def _with_cart_cookie(cart_id: str, body: Any, status_code: int,
                      headers: dict[str, str | list[str]] | None = None) -> Response:
    if cart_id == _session().cart_id:
        # The account's cart never goes into the anonymous cookie: signed out,
        # this browser must not keep the account's cart.
        return Response(body=body, status_code=status_code, headers=dict(headers or {}))
    header = cookies.set_cookie_header(
        runtime.cookie_secret(), cart_id, int(time.time()), _secure()
    )
    return Response(body=body, status_code=status_code,
                    headers={**(headers or {}), "Set-Cookie": header})


def _base() -> str:
    request = _request()
    return presenters.base_path(request.context, request.uri_params)


# -- JSON API -----------------------------------------------------------------

@app.route("/api/products", methods=["GET"])
@http_errors
def list_products() -> dict[str, Any]:
    base = _base()
    products = runtime.cart_service().list_products()
    return {"products": [presenters.product_json(p, base) for p in products]}


@app.route("/api/cart/items", methods=["POST"])
@http_errors
def add_to_cart() -> Response:
    key = _idempotency_key()
    current = _current_cart()
    cart_id = current or cookies.new_cart_id()
    body = _json_body()
    try:
        line = runtime.cart_service().add_to_cart(cart_id, body, key,
                                                  new_cart=current is None)
    except StoreUnavailable:
        # The add may have landed all the same: a new visitor's retry must
        # come back to this cart, where its Idempotency-Key is remembered.
        busy = store_unavailable()
        return _with_cart_cookie(cart_id, busy.body, busy.status_code, busy.headers)
    return _with_cart_cookie(cart_id, presenters.line_json(line), 201)


@app.route("/api/cart/items/{product_id}", methods=["PUT"])
@http_errors
def set_quantity(product_id: str) -> Response:
    cart_id = _current_cart()
    line = runtime.cart_service().set_quantity(cart_id, product_id, _json_body())
    if cart_id is None:  # quantity 0 and no cart: nothing to remove, no cart to make
        return Response(body="", status_code=204)
    if line is None:
        return _with_cart_cookie(cart_id, "", 204)
    return _with_cart_cookie(cart_id, presenters.line_json(line), 200)


@app.route("/api/cart/items/{product_id}", methods=["DELETE"])
@http_errors
def remove_from_cart(product_id: str) -> Response:
    _no_body()
    runtime.cart_service().remove_from_cart(_current_cart(), product_id)
    return Response(body="", status_code=204)


@app.route("/api/cart", methods=["GET"])
@http_errors
def display_cart() -> dict[str, Any]:
    return presenters.cart_view_json(*runtime.cart_service().cart_view(_current_cart()))


@app.route("/api/cart/status", methods=["GET"])
@http_errors
def cart_status() -> dict[str, Any]:
    return presenters.status_json(runtime.cart_service().cart_status(_current_cart()))


@app.route("/api/cart/checkout", methods=["POST"])
@http_errors
def checkout() -> Response:
    key = _idempotency_key()
    _no_body()
    cart_id = _current_cart()
    if cart_id is None:
        raise ConflictError("the cart is empty")
    order = runtime.cart_service().checkout(cart_id, key)
    return Response(body=presenters.order_json(order), status_code=201)


@app.route("/api/orders/{order_id}", methods=["GET"])
@http_errors
def get_order(order_id: str) -> dict[str, Any]:
    return presenters.order_json(_order(order_id))


def _order(order_id: str) -> Order:
    """This cart's order, or, signed in, any order of the account's."""
    account_cart = _session().cart_id
    if account_cart is None:
        return runtime.cart_service().get_order(_anonymous_cart(), order_id)
    return runtime.order_history().find(account_cart, order_id)


@app.route("/api/orders", methods=["GET"])
@http_errors
def list_orders() -> dict[str, Any]:
    orders = runtime.order_history().orders(_current_cart())
    return {"orders": [presenters.order_summary_json(order) for order in orders]}


# -- accounts -------------------------------------------------------------------

@app.route("/api/account/signup", methods=["POST"])
@http_errors
def sign_up() -> Response:
    email = runtime.account_service().sign_up(_json_body())
    return Response(body={"email": email}, status_code=201)


@app.route("/api/account/confirm", methods=["POST"])
@http_errors
def confirm_sign_up() -> Response:
    runtime.account_service().confirm(_json_body())
    return Response(body="", status_code=204)


@app.route("/api/account/signin", methods=["POST"])
@http_errors
def sign_in() -> Response:
    anonymous_cart = _anonymous_cart()
    signed_in = runtime.account_service().sign_in(_json_body(), anonymous_cart)
    response = Response(body=presenters.signed_in_json(signed_in.identity.shown_email,
                                                       signed_in.merge), status_code=200)
    values = [sessions.session_cookie(signed_in.tokens.id_token, _secure())]
    if signed_in.tokens.refresh_token:
        values.append(sessions.refresh_cookie(signed_in.tokens.refresh_token, _secure()))
    if anonymous_cart is not None and not signed_in.merge.left_behind:
        values.append(sessions.cleared_cart_cookie(_secure()))
    _add_cookies(response, values)
    return response


@app.route("/api/account/signout", methods=["POST"])
@http_errors
def sign_out() -> Response:
    _no_body()
    id_tokens, refresh = sessions.tokens_from_header(_request().headers.get("cookie"))
    if id_tokens or refresh:
        try:  # revoked for good: copies of these cookies are refused from now on
            runtime.account_service().sign_out(id_tokens, refresh)
        except AccountsUnavailable:  # no pool on this stage: no token was ever valid
            pass
    response = Response(body="", status_code=204)
    _add_cookies(response, sessions.signed_out_cookies(_secure()))
    return response


@app.route("/api/account", methods=["GET"])
@http_errors
def get_account() -> dict[str, Any]:
    identity = _session().identity
    if identity is None:
        raise UnauthorizedError("not signed in")
    return {"email": identity.shown_email}


@app.route("/api/openapi.json", methods=["GET"])
def openapi_document() -> dict[str, Any]:
    return openapi.document(_base())


# -- pages ----------------------------------------------------------------------

def _html_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except OrderNotFound:
            return web.render("error.html", _base(), 404, status=None,
                              heading="Order not found",
                              message="This browser's cart placed no order with that id.")
        except StoreUnavailable:
            response = web.render("error.html", _base(), 503, status=None,
                                  heading="The shop is busy",
                                  message="The shop is busy right now. "
                                          "Reload the page in a moment.")
            response.headers["Retry-After"] = STORE_BUSY_RETRY_AFTER
            return response
    return wrapper


@app.route("/", methods=["GET"])
@_html_errors
def browse_shop() -> Response:
    service, cart_id = runtime.cart_service(), _current_cart()
    lines, _ = service.display_cart(cart_id)
    products, page, pages = presenters.shop_page(service.list_products(),
                                                 _request().query_params)
    return web.render("shop.html", _base(), products=products, page=page, pages=pages,
                      in_cart={line.product_id: line.quantity for line in lines},
                      status=service.cart_status(cart_id), account=_account_email())


@app.route("/cart", methods=["GET"])
@_html_errors
def view_cart() -> Response:
    service, cart_id = runtime.cart_service(), _current_cart()
    views, item_count, subtotal = service.cart_view(cart_id)
    images = {p.id: p.image for p in service.catalog_products()} if views else {}
    return web.render("cart.html", _base(), lines=views, item_count=item_count,
                      subtotal=subtotal, images=images,
                      status=service.cart_status(cart_id), account=_account_email())


def _account_email() -> str | None:
    """For the header: who is signed in, None when nobody is."""
    identity = _session().identity
    if identity is None:
        return None
    return identity.shown_email or "an account whose e-mail is not verified yet"


@app.route("/account", methods=["GET"])
@_html_errors
def view_account() -> Response:
    service = runtime.cart_service()
    return web.render("account.html", _base(), account=_account_email(),
                      status=service.cart_status(_current_cart()))


@app.route("/orders", methods=["GET"])
@_html_errors
def view_orders() -> Response:
    cart_id = _current_cart()
    orders = runtime.order_history().orders(cart_id)
    return web.render("orders.html", _base(), orders=orders, account=_account_email(),
                      status=runtime.cart_service().cart_status(cart_id))


@app.route("/orders/{order_id}", methods=["GET"])
@_html_errors
def view_order(order_id: str) -> Response:
    service, cart_id = runtime.cart_service(), _current_cart()
    return web.render("order.html", _base(), order=_order(order_id),
                      status=service.cart_status(cart_id), account=_account_email())


# -- static files -----------------------------------------------------------------

# SVG goes out as text; raster images, if static/ ever holds one, as binary.
app.api.binary_types.extend(
    sorted(set(web.BINARY_TYPES.values()) - set(app.api.binary_types)))


def _serve_static(name: str) -> Response:
    asset = web.assets().get(name)
    if asset is None:
        raise NotFoundError(f"no static file {name}")
    request = _request()
    return web.static_response(asset, request.headers.get("if-none-match"),
                               request.query_params)


@app.route("/static/{name}", methods=["GET"])
def serve_static(name: str) -> Response:
    return _serve_static(name)


@app.route("/static/img/{name}", methods=["GET"])
def serve_image(name: str) -> Response:
    return _serve_static(f"img/{name}")


# -- everything else: 404 ---------------------------------------------------------

# API Gateway sends a path no other route matches to a greedy resource; Chalice
# finds no path parameter in "{proxy+}", so the view takes none. chalice local
# matches greedy routes only through devstack's wrapper (devstack/chalice_local.py).
NOT_FOUND_ROUTE = "/{proxy+}"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@app.route(NOT_FOUND_ROUTE, methods=ALL_METHODS)
def route_not_found() -> Response:
    path = "/" + (_request().uri_params or {}).get("proxy", "")
    if path == "/api" or path.startswith("/api/"):
        return Response(body={"Code": "NotFoundError",
                              "Message": f"no such route: {_request().method} {path}"},
                        status_code=404)
    return web.render("error.html", _base(), 404, status=None, heading="Page not found",
                      message="There is no page at this address.")


# HEAD for every page and GET route: the GET view, its body dropped by the guard.
request_guard.answer_head(
    app.routes, lambda path, view: app.route(path, methods=["HEAD"])(view))


# -- stream follow-ups ----------------------------------------------------------

# One reader on the table's stream: DynamoDB Streams allows two per shard, and
# every @app.on_dynamodb_record is one more. It runs every follow-up on each
# batch (chalicelib/followups.py).
@app.middleware("dynamodb")
def observe_stream(event: DynamoDBEvent,
                   get_response: Callable[[DynamoDBEvent], dict[str, Any]]) -> dict[str, Any]:
    records = event.to_dict()["Records"]
    with (logging_setup.request_scope(None, event.context),
          metrics.invocation(runtime.metrics_settings()) as recorded):
        try:
            response = get_response(event)
        except Exception:  # Lambda retries the whole batch
            metrics.record_batch_error(recorded, records)
            raise
        metrics.record_batch(recorded, records, response, time.time())
        return response


@app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=100,
                        starting_position="TRIM_HORIZON")
def process_stream(event: DynamoDBEvent) -> dict[str, Any]:
    return followups.process_batch(event.to_dict()["Records"], runtime.repository())
