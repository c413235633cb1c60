"""The anchor peer's design, priced with the same prices and the same declared mix.

aws-samples/aws-serverless-shopping-cart (read at commit 66a863f with `fetch`):
one REST API (SAM `AWS::Serverless::Api`, `TracingEnabled`, stage
`MethodSettings` with `DataTraceEnabled` and `LoggingLevel: INFO`), a Lambda
function per route (python3.8, 512 MB, x86_64, Powertools with
`log_event=True`), and a second REST API, the product mock service (256 MB),
which `add_to_cart` and `update_cart` call over HTTP on every request
(`utils.get_product_from_external_service`). Nothing here is measured: each
route's calls are read from the peer's source and declared below; durations
and log sizes are this model's stated assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.cost import (
    MILLION,
    PLATFORM_LOG_BYTES,
    XRAY_RATE,
    XRAY_RESERVOIR_PER_S,
    price,
)
from bench.scale import Workload

FRONT_DOOR_LINE = "API Gateway (REST), with the product service's calls"
SOURCE = "aws-samples/aws-serverless-shopping-cart@66a863f"
CART_MEMORY_MB = 512  # Globals.Function.MemorySize
PRODUCT_MEMORY_MB = 256  # product-mock.yaml
ROUND_TRIP_S = 0.005  # a DynamoDB request, as bench/footprint.py assumes
HANDLER_S = 0.010  # the handler's own work with Powertools' logger, tracer, metrics
PRODUCT_CALL_S = 0.030  # the cart function waits on the product API (gateway + Lambda)
# Execution logging at INFO with data trace writes the request and response, headers
# and body, in some 20 lines; log_event=True logs the whole REST event (~2 KB).
EXECUTION_LOG_BYTES = 4000
EVENT_LOG_BYTES = 2500
POWERTOOLS_LINES_BYTES = 600
# db_stream_handler: one ADD per product per batch of up to 100 records (a 60 s
# window): at the declared Zipf catalog about 0.7 distinct products per record.
STREAM_WCU_PER_RECORD = 0.7


@dataclass(frozen=True)
class PeerRoute:
    """What one request of the mix costs in the peer's design."""

    api_calls: int  # REST API requests (the shopper's, plus the product service's)
    cart_invocations: int  # cart functions at 512 MB
    product_invocations: int  # product functions at 256 MB
    dynamodb_requests: int
    rcu: float
    wcu: float
    stream_records: float
    waits_on_product: bool = False


# The mix's routes in the peer's terms (its frontend/src/backend/api.js):
ROUTES: dict[str, tuple[PeerRoute, str]] = {
    "shop page": (PeerRoute(2, 1, 1, 1, 0.5, 0, 0),
                  "static page (Amplify); its script calls GET /product and GET /cart"),
    "cart page": (PeerRoute(1, 1, 0, 1, 0.5, 0, 0), "static page; GET /cart (list_cart)"),
    "status": (PeerRoute(1, 1, 0, 1, 0.5, 0, 0),
               "no status route: GET /cart (Query, eventually consistent)"),
    "display": (PeerRoute(1, 1, 0, 1, 0.5, 0, 0), "GET /cart"),
    "products": (PeerRoute(1, 0, 1, 0, 0, 0, 0),
                 "GET /product: the product service (a bundled JSON file)"),
    "add": (PeerRoute(2, 1, 1, 1, 0, 1, 1, True),
            "POST /cart: GET /product/{id} over HTTP, then UpdateItem ADD"),
    "set": (PeerRoute(2, 1, 1, 1, 0, 1, 1, True),
            "PUT /cart/{id}: GET /product/{id} over HTTP, then PutItem"),
    "remove": (PeerRoute(2, 1, 1, 1, 0, 1, 1, True),
               "PUT /cart/{id} with quantity 0 (its frontend's remove)"),
    "checkout": (PeerRoute(1, 1, 0, 4, 0.5, 3, 3),
                 "POST /cart/checkout (Cognito authorizer): Query + BatchWriteItem "
                 "deletes, a cart of 3 lines"),
}


def _gb_s(seconds: float, memory_mb: int) -> float:
    return seconds * memory_mb / 1024 * price("lambda_gb_s_x86_64")


def lines(wl: Workload) -> dict[str, float]:
    """Dollars per 1M API requests of the mix (the shopper's requests), by line."""
    per: dict[str, float] = {}

    def add(line: str, dollars: float) -> None:
        per[line] = per.get(line, 0.0) + dollars * MILLION

    for name, share in wl.mix:
        route, _ = ROUTES[name]
        cart_s = (HANDLER_S + route.dynamodb_requests * ROUND_TRIP_S
                  + (PRODUCT_CALL_S if route.waits_on_product else 0.0))
        add(FRONT_DOOR_LINE,
            share * route.api_calls * price("api_gateway_rest"))
        add("Lambda: requests", share * (route.cart_invocations + route.product_invocations)
            * price("lambda_request"))
        add("Lambda: duration (GB-s, x86_64)",
            share * (route.cart_invocations * _gb_s(math_ceil_ms(cart_s), CART_MEMORY_MB)
                     + route.product_invocations * _gb_s(0.005, PRODUCT_MEMORY_MB)))
        add("DynamoDB reads", share * route.rcu * price("dynamodb_rru"))
        add("DynamoDB writes (API + stream counter)",
            share * (route.wcu + route.stream_records * STREAM_WCU_PER_RECORD)
            * price("dynamodb_wru"))
        invocations = route.cart_invocations + route.product_invocations
        add("CloudWatch Logs ingestion", share * price("logs_ingest") * (
            route.api_calls * EXECUTION_LOG_BYTES
            + invocations * (EVENT_LOG_BYTES + POWERTOOLS_LINES_BYTES + PLATFORM_LOG_BYTES)))
        sampled = min(1.0, (XRAY_RESERVOIR_PER_S + XRAY_RATE * (wl.rate - 1)) / wl.rate)
        add("X-Ray traces (default sampling)", share * sampled * route.api_calls
            * price("xray_trace"))
    return per


def math_ceil_ms(seconds: float) -> float:
    import math

    return math.ceil(seconds * 1000) / 1000


def notes() -> list[str]:
    return [
        f"The peer ({SOURCE}) is priced from its source, not measured: each route's API "
        "calls, invocations and DynamoDB requests are declared in bench/peer.py "
        f"(its cart functions at {CART_MEMORY_MB} MB x86_64, the product service at "
        f"{PRODUCT_MEMORY_MB} MB); durations assumed ({HANDLER_S * 1000:.0f} ms of handler, "
        f"{ROUND_TRIP_S * 1000:.0f} ms per DynamoDB request, {PRODUCT_CALL_S * 1000:.0f} ms "
        "waiting on the product API); logs: its REST stage's execution logs with data "
        f"trace (~{EXECUTION_LOG_BYTES:,} bytes per call, assumed) and log_event=True "
        f"(~{EVENT_LOG_BYTES:,} bytes per invocation). Its stream handler adds quantities "
        "without de-duplication and its add is an unconditional ADD: not exact under "
        "retries, so it is priced here, not held up as the target.",
        "Peer routes in the mix's terms: " + "; ".join(
            f"{name}: {why}" for name, (_, why) in ROUTES.items()) + ".",
    ]
