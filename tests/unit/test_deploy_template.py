"""The deploy's pure template logic: stages, the merge template, its checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chalice.utils import to_cfn_resource_name

from deploy import template as tpl
from deploy.settings import DeployError, Stage, load_stage

DEV = Stage("chalice-cart", "dev", production=False)
PROD = Stage("chalice-cart", "prod", production=True)
HANDLERS = ("cart_summary", "product_popularity", "order_confirmation")


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
            "Properties": {"Runtime": "python3.11", **own["Properties"]},
        }
    return {"Resources": resources}


def test_logical_ids_match_the_names_chalice_gives_functions() -> None:
    for handler in HANDLERS:
        assert tpl.logical_id(handler) == to_cfn_resource_name(handler)
    assert tpl.logical_id("api_handler") == "APIHandler"


def test_production_table_is_retained_and_dev_table_deleted() -> None:
    prod = tpl.merge_template(PROD, HANDLERS)["Resources"]["CartTable"]
    dev = tpl.merge_template(DEV, HANDLERS)["Resources"]["CartTable"]
    assert prod["DeletionPolicy"] == prod["UpdateReplacePolicy"] == "Retain"
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
    event = template["Resources"]["OrderConfirmation"]["Properties"]["Events"][
        "OrderConfirmationDynamodbEventSource"
    ]["Properties"]
    del event["BisectBatchOnFunctionError"]
    assert tpl.check_template(template, HANDLERS) == [
        "OrderConfirmation: mapping BisectBatchOnFunctionError is None"
    ]


def test_check_names_a_handler_chalice_named_differently() -> None:
    template = merged_like_chalice()
    template["Resources"]["CartSummaryV2"] = template["Resources"].pop("CartSummary")
    assert "no function CartSummary for handler cart_summary" in tpl.check_template(
        template, HANDLERS
    )


def test_check_refuses_a_runtime_aws_no_longer_takes() -> None:
    template = merged_like_chalice()
    template["Resources"]["APIHandler"]["Properties"]["Runtime"] = "python3.8"
    assert tpl.check_template(template, HANDLERS) == [
        "APIHandler: runtime python3.8 is not supported"
    ]


def test_with_code_points_every_function_at_the_upload_and_leaves_the_input_alone() -> None:
    template = merged_like_chalice()
    before = copy.deepcopy(template)
    coded = tpl.with_code(template, "bucket", "dev/abc.zip")
    assert template == before
    assert {r["Properties"]["CodeUri"]["Key"] for _, r in tpl.functions(coded)} == {"dev/abc.zip"}


def test_secret_parameter_and_function_names_are_per_stage() -> None:
    assert DEV.secret_parameter == "/chalice-cart/dev/cookie-secret"
    assert PROD.function_name("cart_summary") == "chalice-cart-prod-cart_summary"
    api = tpl.merge_template(PROD, HANDLERS)["Resources"]["APIHandler"]["Properties"]
    assert api["Environment"]["Variables"]["CART_COOKIE_SECRET_PARAM"] == {
        "Ref": "CookieSecretParameter"
    }


def test_stage_local_is_refused_and_unknown_stages_are_named() -> None:
    with pytest.raises(DeployError, match="local stack"):
        load_stage("local")
    with pytest.raises(DeployError, match="deployable stages: dev, prod"):
        load_stage("staging")
    assert load_stage("prod").production and not load_stage("dev").production
