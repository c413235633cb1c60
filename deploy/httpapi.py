"""The HTTP API front door: the same Chalice app behind an API Gateway HTTP API.

Chalice builds REST APIs only (its issue #1321). Its handler routes on
`requestContext.resourcePath` and `requestContext.httpMethod` and reads
`pathParameters`, `multiValueQueryStringParameters`, `headers`, `body`,
`isBase64Encoded` and `stageVariables`: an HTTP API's payload format 1.0
carries every one of them in the REST shape (tests/functional/test_http_api.py
feeds the app such events), and takes the REST response back, `multiValueHeaders`
(two Set-Cookie lines) included. So `transform` turns the template `chalice
package` wrote into one whose front door is an HTTP API: one route per route
of Chalice's (read from the OpenAPI document Chalice generated from the app),
one Lambda integration with payload format 1.0, the stage `api` (the URLs keep
their shape, /api/...) with the stage's throttling and JSON access logs, and
the permission for the HTTP API to invoke the function. Pure functions, no IO.

What a REST API did and an HTTP API does not is in docs/OPERATIONS.md, "Front door".
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

from deploy import operations as ops
from deploy.settings import Stage
from deploy.template import API_LOGICAL_ID, OPENAPI_METHODS, REST_API

HTTP_API = ops.HTTP_API
INTEGRATION = "HttpApiIntegration"
STAGE = "HttpApiStage"
PERMISSION = "APIHandlerInvokePermission"  # Chalice's name: replaced in place
FUNCTION = API_LOGICAL_ID
PAYLOAD_FORMAT_VERSION = "1.0"
# Lambda's own timeout for the API is 15 s; the integration waits at most this.
INTEGRATION_TIMEOUT_MS = 29_000

ANY = "ANY"
ROOT = "/"

# The REST stage's access log fields (deploy.operations, which says why these), in
# the variables an HTTP API has: routeKey ("POST /api/cart/items", "ANY /{proxy+}")
# for the route.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "method": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorType": "$context.error.responseType",
}
ACCESS_LOG_FORMAT = json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))

def chalice_routes(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) for every route Chalice put in its REST API, in its order."""
    body = template["Resources"][REST_API]["Properties"]["DefinitionBody"]
    return [
        (OPENAPI_METHODS[verb], path)
        for path, operations in body["paths"].items()
        for verb in operations
        if verb in OPENAPI_METHODS
    ]


def _greedy(path: str) -> bool:
    return path.rstrip("/").endswith("+}")


def route_keys(routes: list[tuple[str, str]]) -> list[str]:
    """The HTTP API's route keys for Chalice's routes.

    Each (method, path) is its own route, except a greedy path (the app's
    404 catch-all, /{proxy+}): it becomes one ANY route, so a method no route
    names at a path the app knows (DELETE /api/cart) reaches the app's 404
    too, in its error shape, where a REST API needed a gateway response.
    A greedy variable never matches the root, so with a catch-all the root
    gets an ANY route as well: Chalice answers its other methods 405 in its
    error shape. Nothing is left for the HTTP API's own {"message": ...} 404.
    """
    keys: list[str] = []
    for method, path in routes:
        key = f"{ANY} {path}" if _greedy(path) else f"{method} {path}"
        if key not in keys:
            keys.append(key)
    if any(_greedy(path) for _, path in routes) and any(path == ROOT for _, path in routes):
        keys.append(f"{ANY} {ROOT}")
    return keys


def _route_id(key: str, taken: set[str]) -> str:
    method, path = key.split(" ", 1)
    words = re.findall(r"[A-Za-z0-9]+", path)
    base = "HttpApiRoute" + method.capitalize() + ("".join(w.capitalize() for w in words)
                                                   or "Root")
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


def routes(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id, resource) for every route of the HTTP API in `template`."""
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::ApiGatewayV2::Route":
            yield name, resource


def _resources(stage: Stage, keys: list[str]) -> dict[str, Any]:
    api = {"Ref": HTTP_API}
    resources: dict[str, Any] = {
        HTTP_API: {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": stage.stack_name,
                "ProtocolType": "HTTP",
                "Description": f"{stage.stack_name}: the Chalice app behind an HTTP API "
                "(payload format 1.0)",
            },
        },
        INTEGRATION: {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": api,
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": [FUNCTION, "Arn"]},
                "PayloadFormatVersion": PAYLOAD_FORMAT_VERSION,
                "TimeoutInMillis": INTEGRATION_TIMEOUT_MS,
            },
        },
    }
    taken = set(resources)
    route_ids: list[str] = []
    for key in keys:
        name = _route_id(key, taken)
        route_ids.append(name)
        resources[name] = {
            "Type": "AWS::ApiGatewayV2::Route",
            # No authorizer: the shop is public; the app knows a shopper by the signed
            # cart cookie and the Cognito session, and an authorizer would refuse
            # the anonymous one.
            "Properties": {
                "ApiId": api,
                "RouteKey": key,
                "AuthorizationType": "NONE",
                "Target": {"Fn::Join": ["/", ["integrations", {"Ref": INTEGRATION}]]},
            },
        }
    resources[STAGE] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        # AutoDeploy deploys every change; the first deployment holds every route.
        "DependsOn": route_ids,
        "Properties": {
            "ApiId": api,
            "StageName": stage.api_stage,
            "AutoDeploy": True,
            "Description": "The shop: the same URLs as the REST stage (/api/...)",
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": stage.api_rate_limit,
                "ThrottlingBurstLimit": stage.api_burst_limit,
                "DetailedMetricsEnabled": False,
            },
            "AccessLogSettings": {
                "DestinationArn": {"Fn::GetAtt": [ops.ACCESS_LOG_GROUP, "Arn"]},
                "Format": ACCESS_LOG_FORMAT,
            },
        },
    }
    resources[PERMISSION] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "FunctionName": {"Ref": FUNCTION},
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            # Any stage and route of this API, and nothing else.
            "SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:"
                "${AWS::AccountId}:${" + HTTP_API + "}/*"
            },
        },
    }
    return resources


def transform(template: dict[str, Any], stage: Stage) -> dict[str, Any]:
    """Chalice's SAM template with an HTTP API in place of its REST API."""
    result = copy.deepcopy(template)
    keys = route_keys(chalice_routes(result))
    resources = {
        name: resource
        for name, resource in result["Resources"].items()
        if name not in (REST_API, PERMISSION)
    }
    resources.update(_resources(stage, keys))
    result["Resources"] = resources
    outputs = {k: v for k, v in result.get("Outputs", {}).items() if k != "RestAPIId"}
    outputs["HttpApiId"] = {"Value": {"Ref": HTTP_API}}
    outputs["EndpointURL"] = {
        "Value": {
            "Fn::Sub": "https://${" + HTTP_API + "}.execute-api.${AWS::Region}."
            "${AWS::URLSuffix}/" + stage.api_stage + "/"
        }
    }
    result["Outputs"] = outputs
    return result
