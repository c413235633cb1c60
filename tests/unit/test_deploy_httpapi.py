"""The HTTP API front door as a template transformation: the stage setting,
the routes it derives from Chalice's, the stage, the permission. No IO."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy import httpapi
from deploy import operations as ops
from deploy.settings import DeployError, Stage, load_stage

HTTP = Stage("chalice-cart", "prod", production=True, api_rate_limit=1000.0,
             api_burst_limit=2000, api="http")
INVOKE = {"type": "aws_proxy", "httpMethod": "POST", "uri": "arn:...:APIHandler/invocations"}


def _operation() -> dict[str, Any]:
    return {"x-amazon-apigateway-integration": INVOKE, "responses": {}}


def chalice_like(paths: dict[str, list[str]]) -> dict[str, Any]:
    """The parts of Chalice's SAM template the transformation reads and replaces."""
    body = {"swagger": "2.0",
            "paths": {path: {verb: _operation() for verb in verbs}
                      for path, verbs in paths.items()}}
    return {
        "Resources": {
            "RestAPI": {"Type": "AWS::Serverless::Api",
                        "Properties": {"StageName": "api", "DefinitionBody": body}},
            "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {}},
            "APIHandlerInvokePermission": {"Type": "AWS::Lambda::Permission",
                                           "Properties": {"SourceArn": "rest"}},
            "ApiAccessLogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {}},
        },
        "Outputs": {
            "RestAPIId": {"Value": {"Ref": "RestAPI"}},
            "EndpointURL": {"Value": {"Fn::Sub": "https://${RestAPI}.execute-api..."}},
            "TableName": {"Value": {"Ref": "CartTable"}},
        },
    }


SHOP = {
    "/api/cart": ["get"],
    "/api/cart/items/{product_id}": ["put", "delete"],
    "/": ["get"],
    "/{proxy+}": ["get", "post", "put", "patch", "delete"],
}


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def test_a_stage_names_its_front_door_and_rest_is_the_default(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"app_name": "a", "stages": {
        "plain": {}, "cheap": {"api": "http"}, "odd": {"api": "websocket"}}}))
    assert load_stage("plain", config).api == "rest"
    assert load_stage("cheap", config).api == "http"
    with pytest.raises(DeployError, match=r"stages\.odd\.api must be one of rest, http"):
        load_stage("odd", config)
    assert load_stage("prod").api == "http" and load_stage("dev").api == "rest"


def test_each_chalice_route_is_a_route_and_the_catch_all_takes_any_method() -> None:
    keys = httpapi.route_keys(httpapi.chalice_routes(chalice_like(SHOP)))
    assert keys == ["GET /api/cart", "PUT /api/cart/items/{product_id}",
                    "DELETE /api/cart/items/{product_id}", "GET /", "ANY /{proxy+}", "ANY /"]


def test_an_app_without_a_catch_all_gets_no_any_routes() -> None:
    keys = httpapi.route_keys([("GET", "/"), ("POST", "/api/cart/items")])
    assert keys == ["GET /", "POST /api/cart/items"]


def test_the_rest_api_and_its_permission_give_way_to_the_http_api() -> None:
    out = httpapi.transform(chalice_like(SHOP), HTTP)
    resources = out["Resources"]
    assert "RestAPI" not in resources
    assert not _of_type(out, "AWS::Serverless::Api")
    [api] = _of_type(out, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    assert api["Properties"]["Name"] == "chalice-cart-prod"  # what the dashboard shows
    [integration] = _of_type(out, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["PayloadFormatVersion"] == "1.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["APIHandler", "Arn"]}
    permission = resources["APIHandlerInvokePermission"]["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["FunctionName"] == {"Ref": "APIHandler"}
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${HttpApi}/*")


def test_every_route_is_public_and_goes_to_the_one_integration() -> None:
    out = httpapi.transform(chalice_like(SHOP), HTTP)
    routes = dict(httpapi.routes(out))
    assert len(routes) == 6
    for route in routes.values():
        properties = route["Properties"]
        assert properties["ApiId"] == {"Ref": "HttpApi"}
        assert properties["AuthorizationType"] == "NONE"
        assert properties["Target"] == {
            "Fn::Join": ["/", ["integrations", {"Ref": "HttpApiIntegration"}]]}
    # The stage is deployed after every route exists.
    assert sorted(out["Resources"]["HttpApiStage"]["DependsOn"]) == sorted(routes)


def test_the_stage_keeps_the_urls_shape_throttles_and_logs_json() -> None:
    out = httpapi.transform(chalice_like(SHOP), HTTP)
    stage = out["Resources"]["HttpApiStage"]["Properties"]
    assert stage["StageName"] == "api" and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 1000.0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 2000
    logs = stage["AccessLogSettings"]
    assert logs["DestinationArn"] == {"Fn::GetAtt": [ops.ACCESS_LOG_GROUP, "Arn"]}
    fields = json.loads(logs["Format"])
    # The REST stage's fields, routeKey for its route.
    rest = dict(json.loads(ops.ACCESS_LOG_FORMAT))
    del rest["route"]
    assert fields == {**rest, "routeKey": "$context.routeKey"}
    # No shopper's IP, user agent or query string, as on the REST stage.
    assert not {"$context.identity.sourceIp", "$context.identity.userAgent"} & set(
        fields.values())


def test_the_outputs_point_at_the_http_api_under_the_same_stage_path() -> None:
    outputs = httpapi.transform(chalice_like(SHOP), HTTP)["Outputs"]
    assert "RestAPIId" not in outputs
    assert outputs["HttpApiId"] == {"Value": {"Ref": "HttpApi"}}
    assert outputs["EndpointURL"]["Value"]["Fn::Sub"] == (
        "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/")
    assert outputs["TableName"] == {"Value": {"Ref": "CartTable"}}


def test_two_paths_that_spell_one_name_get_distinct_route_ids() -> None:
    out = httpapi.transform(chalice_like({"/a-b": ["get"], "/ab": ["get"], "/a/b": ["get"]}),
                            HTTP)
    keys = sorted(r["Properties"]["RouteKey"] for _, r in httpapi.routes(out))
    assert keys == ["GET /a-b", "GET /a/b", "GET /ab"]
