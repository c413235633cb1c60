"""The deploy's pure template logic: stages, the merge template, its checks."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest
from chalice.utils import to_cfn_resource_name

from deploy import template as tpl
from deploy.runtimes import PYTHON_RUNTIMES, runtime_problem
from deploy.settings import DeployError, Stage, load_stage

DEV = Stage("chalice-cart", "dev", production=False)
PROD = Stage("chalice-cart", "prod", production=True)
HANDLERS = ("process_stream",)


def merged_like_chalice(stage: Stage = DEV) -> dict[str, Any]:
    """A minimal Chalice SAM template with the merge template laid over it."""
    merge = tpl.merge_template(stage, HANDLERS)
    resources: dict[str, Any] = {}
    for handler in ("api_handler", *HANDLERS):
        name = tpl.logical_id(handler)
        own = merge["Resources"][name]
        resources[name] = {
            "Type": "AWS::Serverless::Function",
            **own,
            "Properties": {
                "Runtime": "python3.13",
                "Architectures": ["arm64"],
                "Tracing": "Active",
                **own["Properties"],
            },
        }
    return {"Resources": resources}


def test_logical_ids_match_the_names_chalice_gives_functions() -> None:
    for handler in HANDLERS:
        assert tpl.logical_id(handler) == to_cfn_resource_name(handler)
    assert tpl.logical_id("api_handler") == "APIHandler"


def test_production_table_is_retained_and_dev_table_deleted() -> None:
    prod = tpl.merge_template(PROD, HANDLERS)["Resources"]["CartTable"]
    dev = tpl.merge_template(DEV, HANDLERS)["Resources"]["CartTable"]
    # Kept when the stack goes, and when a change replaces it; a failed first
    # create (an empty table) is not left behind.
    assert (prod["DeletionPolicy"], prod["UpdateReplacePolicy"]) == (
        "RetainExceptOnCreate", "Retain")
    assert dev["DeletionPolicy"] == dev["UpdateReplacePolicy"] == "Delete"


def test_table_properties_come_from_the_shared_definition_in_cloudformation_terms() -> None:
    properties = tpl.merge_template(DEV, HANDLERS)["Resources"]["CartTable"]["Properties"]
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["TimeToLiveSpecification"]["Enabled"] is True


def test_each_follow_up_mapping_gets_failure_handling_and_the_table_stream() -> None:
    resources = tpl.merge_template(DEV, HANDLERS)["Resources"]
    for handler in HANDLERS:
        events = resources[tpl.logical_id(handler)]["Properties"]["Events"]
        event = events[tpl.event_id(handler)]["Properties"]
        assert event["Stream"] == {"Fn::GetAtt": ["CartTable", "StreamArn"]}
        assert event["MaximumRetryAttempts"] <= 5
        assert event["MaximumRecordAgeInSeconds"] <= 3600
        assert event["BisectBatchOnFunctionError"] is True


def test_merged_template_passes_the_check() -> None:
    assert tpl.check_template(merged_like_chalice(), HANDLERS) == []


def test_check_names_a_mapping_that_lost_its_failure_handling() -> None:
    template = merged_like_chalice()
    event = template["Resources"]["ProcessStream"]["Properties"]["Events"][
        "ProcessStreamDynamodbEventSource"
    ]["Properties"]
    del event["BisectBatchOnFunctionError"]
    assert tpl.check_template(template, HANDLERS) == [
        "ProcessStream: mapping BisectBatchOnFunctionError is None"
    ]


def test_check_names_a_handler_chalice_named_differently() -> None:
    template = merged_like_chalice()
    template["Resources"]["ProcessStreamV2"] = template["Resources"].pop("ProcessStream")
    assert "no function ProcessStream for handler process_stream" in tpl.check_template(
        template, HANDLERS
    )


def test_check_fails_the_build_on_python311_which_lambda_deprecated() -> None:
    template = merged_like_chalice()
    template["Resources"]["APIHandler"]["Properties"]["Runtime"] = "python3.11"
    assert tpl.check_template(template, HANDLERS, today=date(2026, 12, 1)) == [
        "APIHandler: runtime python3.11 is deprecated by Lambda on 2026-06-30 (new functions "
        "blocked 2026-07-31, updates blocked 2026-08-31), within 365 days of 2026-12-01: "
        "build with a newer Python (make PYTHON=...)"
    ]
    # Before its deprecation came within a year, the same template passed.
    assert tpl.check_template(template, HANDLERS, today=date(2025, 6, 1)) == []


def test_check_fails_a_runtime_a_year_before_lambda_deprecates_it() -> None:
    template = merged_like_chalice()
    template["Resources"]["ProcessStream"]["Properties"]["Runtime"] = "python3.12"
    assert tpl.check_template(template, HANDLERS, today=date(2027, 10, 31)) == []
    [problem] = tpl.check_template(template, HANDLERS, today=date(2027, 11, 1))
    assert problem.startswith(
        "ProcessStream: runtime python3.12 is deprecated by Lambda on 2028-10-31"
    )


def test_check_refuses_a_runtime_missing_from_the_table() -> None:
    template = merged_like_chalice()
    template["Resources"]["APIHandler"]["Properties"]["Runtime"] = "python3.99"
    [problem] = tpl.check_template(template, HANDLERS)
    assert problem.startswith("APIHandler: runtime python3.99 is not in deploy/runtimes.py's table")


def test_the_deployed_runtime_is_supported_for_more_than_a_year_from_today() -> None:
    assert runtime_problem("python3.13", date.today()) is None
    assert PYTHON_RUNTIMES["python3.13"].deprecated == date(2029, 6, 30)


def test_check_refuses_x86_64_and_untraced_functions() -> None:
    template = merged_like_chalice()
    properties = template["Resources"]["APIHandler"]["Properties"]
    properties["Architectures"] = ["x86_64"]
    properties["Tracing"] = "PassThrough"
    assert tpl.check_template(template, HANDLERS) == [
        "APIHandler: architectures ['x86_64'] are not ['arm64'] (.chalice/config.json "
        "lambda_architecture)",
        "APIHandler: tracing is PassThrough, not Active",
    ]
    properties["Architectures"] = ["arm64"]
    assert tpl.check_template(template, HANDLERS, tracing=False) == [
        "ProcessStream: tracing is Active, not PassThrough"
    ]


def test_with_code_points_every_function_at_the_upload_and_leaves_the_input_alone() -> None:
    template = merged_like_chalice()
    before = copy.deepcopy(template)
    coded = tpl.with_code(template, "bucket", "dev/abc.zip")
    assert template == before
    assert {r["Properties"]["CodeUri"]["Key"] for _, r in tpl.functions(coded)} == {"dev/abc.zip"}


def test_secret_parameter_and_function_names_are_per_stage() -> None:
    assert DEV.secret_parameter == "/chalice-cart/dev/cookie-secret"
    assert PROD.function_name("process_stream") == "chalice-cart-prod-process_stream"
    api = tpl.merge_template(PROD, HANDLERS)["Resources"]["APIHandler"]["Properties"]
    assert api["Environment"]["Variables"]["CART_COOKIE_SECRET_PARAM"] == {
        "Ref": "CookieSecretParameter"
    }


def test_stage_local_is_refused_and_unknown_stages_are_named() -> None:
    with pytest.raises(DeployError, match="local stack"):
        load_stage("local")
    with pytest.raises(DeployError, match="deployable stages: dev, emulated, prod"):
        load_stage("staging")
    assert load_stage("prod").production and not load_stage("dev").production


def _integration(uri: str) -> dict[str, Any]:
    return {
        "x-amazon-apigateway-integration": {"type": "aws_proxy", "httpMethod": "POST", "uri": uri}
    }


def expanded_api() -> dict[str, Any]:
    """The API part of an expanded template: RestApi with its Body, then its deployment."""
    return {
        "Resources": {
            "RestAPIDeploymentabc": {
                "Type": "AWS::ApiGateway::Deployment",
                "Properties": {"RestApiId": {"Ref": "RestAPI"}},
            },
            "RestAPI": {
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": {
                    "Name": "chalice-cart-dev",
                    "Body": {
                        "paths": {
                            "/": {"get": _integration("root")},
                            "/api/cart/items/{product_id}": {
                                "parameters": [],
                                "put": _integration("put"),
                                "delete": _integration("delete"),
                            },
                        }
                    },
                },
            },
        }
    }


def test_explicit_routes_turn_the_openapi_body_into_resources_and_lambda_proxy_methods() -> None:
    template = expanded_api()
    before = copy.deepcopy(template)
    routes = tpl.explicit_routes(template)["Resources"]
    assert template == before
    assert "Body" not in routes["RestAPI"]["Properties"]
    resources = {n: r["Properties"] for n, r in routes.items() if r["Type"].endswith("Resource")}
    assert [r["PathPart"] for r in resources.values()] == ["api", "cart", "items", "{product_id}"]
    assert resources["RestAPIResourceApi"]["ParentId"] == {
        "Fn::GetAtt": ["RestAPI", "RootResourceId"]
    }
    assert resources["RestAPIResourceApiCart"]["ParentId"] == {"Ref": "RestAPIResourceApi"}
    methods = {n: r["Properties"] for n, r in routes.items() if r["Type"].endswith("Method")}
    assert methods["RestAPIMethodRootGET"]["ResourceId"] == {
        "Fn::GetAtt": ["RestAPI", "RootResourceId"]
    }
    put = methods["RestAPIMethodApiCartItemsProductIdPUT"]
    assert put["ResourceId"] == {"Ref": "RestAPIResourceApiCartItemsProductId"}
    assert put["Integration"] == {
        "Type": "AWS_PROXY",
        "IntegrationHttpMethod": "POST",
        "Uri": "put",
    }
    assert len(methods) == 3  # "parameters" is not a method


def test_explicit_routes_come_before_the_deployment_that_needs_them() -> None:
    template = expanded_api()
    routes = tpl.explicit_routes(template)["Resources"]
    names = list(routes)
    deployment = names.index("RestAPIDeploymentabc")
    methods = [n for n in names if routes[n]["Type"] == "AWS::ApiGateway::Method"]
    assert all(names.index(m) < deployment for m in methods)
    assert routes["RestAPIDeploymentabc"]["DependsOn"] == sorted(methods)


def test_resolve_outputs_fills_refs_and_subs_and_leaves_out_what_it_cannot() -> None:
    outputs = {
        "TableName": {"Value": {"Ref": "CartTable"}},
        "EndpointURL": {
            "Value": {
                "Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/"
            }
        },
        "TableStreamArn": {"Value": {"Fn::GetAtt": ["CartTable", "StreamArn"]}},
        "Missing": {"Value": {"Ref": "NotThere"}},
    }
    values = {
        "CartTable": "t-1",
        "RestAPI": "abc",
        "AWS::Region": "eu-west-1",
        "AWS::URLSuffix": "amazonaws.com",
    }
    assert tpl.resolve_outputs(outputs, values) == {
        "TableName": "t-1",
        "EndpointURL": "https://abc.execute-api.eu-west-1.amazonaws.com/api/",
    }


def test_rest_api_is_named_after_the_stack() -> None:
    api = tpl.merge_template(PROD, HANDLERS)["Resources"]["RestAPI"]["Properties"]
    assert api["Name"] == "chalice-cart-prod"


def test_explicit_routes_keep_binary_media_types_and_tell_look_alike_paths_apart() -> None:
    template = expanded_api()
    body = template["Resources"]["RestAPI"]["Properties"]["Body"]
    body["x-amazon-apigateway-binary-media-types"] = ["image/png"]
    body["paths"] = {"/a-b": {"get": _integration("1")}, "/a_b": {"get": _integration("2")}}
    routes = tpl.explicit_routes(template)["Resources"]
    assert routes["RestAPI"]["Properties"]["BinaryMediaTypes"] == ["image/png"]
    uris = {
        r["Properties"]["Integration"]["Uri"]: r["Properties"]["ResourceId"]["Ref"]
        for r in routes.values()
        if r["Type"] == "AWS::ApiGateway::Method"
    }
    assert uris == {"1": "RestAPIResourceAB", "2": "RestAPIResourceAB2"}


def _render(template: str, response_type: str, message: str) -> str:
    """A gateway response body as API Gateway fills it in (simple substitution only)."""
    return template.replace("$context.error.responseType", response_type).replace(
        "$context.error.messageString", json.dumps(message)
    )


def test_api_gateway_own_errors_answer_in_chalice_error_shape_with_their_own_status() -> None:
    api = tpl.merge_template(DEV, HANDLERS)["Resources"]["RestAPI"]["Properties"]
    responses = dict(api["GatewayResponses"])
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED",
                              "MISSING_AUTHENTICATION_TOKEN"}
    responses.pop("MISSING_AUTHENTICATION_TOKEN")  # a 404: the test below
    for response in responses.values():
        assert "StatusCode" not in response  # 403, 429, 502... stay API Gateway's
        [(content_type, body)] = response["ResponseTemplates"].items()
        assert content_type == "application/json"
        assert json.loads(_render(body, "MISSING_AUTHENTICATION_TOKEN", 'No "route"')) == {
            "Code": "MISSING_AUTHENTICATION_TOKEN",
            "Message": 'No "route"',
        }
    assert responses["THROTTLED"]["ResponseParameters"] == {"Headers": {"Retry-After": "'1'"}}


def test_a_path_api_gateway_cannot_route_is_a_404_in_the_error_shape_not_a_403() -> None:
    # API Gateway's 403 "Missing Authentication Token" means "no such route";
    # unknown paths go to the app's /{proxy+} route, a method a path lacks ends here.
    api = tpl.merge_template(DEV, HANDLERS)["Resources"]["RestAPI"]["Properties"]
    response = api["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert response["StatusCode"] == "404"
    [(content_type, body)] = response["ResponseTemplates"].items()
    assert content_type == "application/json"
    rendered = body.replace("$context.httpMethod", "PATCH")
    assert json.loads(rendered) == {"Code": "NotFoundError",
                                    "Message": "no route for PATCH at this path"}


def test_production_deploys_guard_the_table_and_the_user_pool_against_replacement() -> None:
    assert tpl.protected_resources(PROD) == {"CartTable", "UserPool"}
    assert tpl.protected_resources(DEV) == frozenset()


def test_every_function_logs_json_with_lambdas_own_lines_at_the_stages_level() -> None:
    for stage in (DEV, PROD):
        resources = tpl.merge_template(stage, HANDLERS)["Resources"]
        for handler in ("api_handler", *HANDLERS):
            assert resources[tpl.logical_id(handler)]["Properties"]["LoggingConfig"] == {
                "LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}
    # Both deployed stages say so in .chalice/config.json; WARN is also the default.
    assert load_stage("dev").system_log_level == load_stage("prod").system_log_level == "WARN"
    chatty = Stage("chalice-cart", "dev", production=False, system_log_level="INFO")
    api = tpl.merge_template(chatty, HANDLERS)["Resources"]["APIHandler"]["Properties"]
    assert api["LoggingConfig"]["SystemLogLevel"] == "INFO"


def test_check_names_a_function_that_lost_its_logging_config() -> None:
    template = merged_like_chalice()
    del template["Resources"]["ProcessStream"]["Properties"]["LoggingConfig"]
    [problem] = tpl.check_template(template, HANDLERS)
    assert problem.startswith("ProcessStream: LoggingConfig is None, not LogFormat JSON")


def test_check_refuses_an_application_level_that_drops_the_metric_lines() -> None:
    template = merged_like_chalice()
    config = template["Resources"]["APIHandler"]["Properties"]["LoggingConfig"]
    config["ApplicationLogLevel"] = "WARN"  # EMF lines carry no level: Lambda reads INFO
    assert tpl.check_template(template, HANDLERS) == [
        "APIHandler: ApplicationLogLevel WARN drops the EMF metric lines (Lambda reads them "
        "as INFO)"]
    config["ApplicationLogLevel"] = "INFO"
    config["SystemLogLevel"] = "INFO"
    assert tpl.check_template(template, HANDLERS) == [
        "APIHandler: SystemLogLevel is INFO, not WARN (.chalice/config.json system_log_level)"]
    assert tpl.check_template(template, HANDLERS, system_log_level="INFO") == [
        "ProcessStream: SystemLogLevel is WARN, not INFO (.chalice/config.json "
        "system_log_level)"]
