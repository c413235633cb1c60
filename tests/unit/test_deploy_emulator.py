"""The emulated stage: what deploy/emulator.py changes, for that stage only, and why."""

from __future__ import annotations

import copy
import platform

import pytest

from deploy import emulator
from deploy import template as tpl
from deploy.build import foreign_binaries
from deploy.settings import DeployError, host_architecture, load_stage

EMULATED, DEV, PROD = load_stage("emulated"), load_stage("dev"), load_stage("prod")
ENDPOINT = "http://127.0.0.1:4566"


def expanded_like() -> dict[str, object]:
    """The merge template with a mapping as the SAM transform writes it."""
    template = tpl.merge_template(DEV, ["process_stream"])
    template["Resources"]["ProcessStreamMapping"] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {**tpl.mapping_properties(), "FunctionName": {"Ref": "ProcessStream"}},
    }
    return template


def test_the_emulated_stage_is_devs_on_this_machines_architecture() -> None:
    assert EMULATED.emulator == emulator.MINISTACK
    assert EMULATED.architecture == host_architecture(platform.machine())
    assert (DEV.emulator, PROD.emulator) == (None, None)
    assert DEV.architecture == PROD.architecture == tpl.ARCHITECTURE == "arm64"
    same = ("production", "api_rate_limit", "api_burst_limit", "log_retention_days",
            "tracing", "api_stage", "reserved_concurrency", "api", "system_log_level")
    assert {k: getattr(EMULATED, k) for k in same} == {k: getattr(DEV, k) for k in same}


def test_machine_names_map_to_lambdas_and_others_are_refused() -> None:
    assert host_architecture("x86_64") == host_architecture("AMD64") == "x86_64"
    assert host_architecture("aarch64") == host_architecture("arm64") == "arm64"
    with pytest.raises(DeployError, match="x86_64 or arm64 only"):
        host_architecture("ppc64le")


def test_an_x86_64_package_takes_x86_64_wheels_and_refuses_aarch64_ones() -> None:
    x86 = {"cryptography-50.dist-info/WHEEL": "Tag: cp311-abi3-manylinux_2_34_x86_64\n"}
    arm = {"cryptography-50.dist-info/WHEEL": "Tag: cp311-abi3-manylinux_2_34_aarch64\n"}
    assert foreign_binaries({"m/_s.cpython-313-x86_64-linux-gnu.so"}, x86, "x86_64") == []
    assert foreign_binaries({"m/_s.cpython-313-aarch64-linux-gnu.so"}, arm, "x86_64") == [
        "m/_s.cpython-313-aarch64-linux-gnu.so is compiled for another machine than "
        "Lambda x86_64",
        "cryptography-50.dist-info is a wheel for manylinux_2_34_aarch64, not Lambda x86_64 "
        "(linux x86_64)",
    ]


def test_adapt_leaves_out_the_metric_math_alarms_and_fills_in_the_gaps() -> None:
    template = expanded_like()
    before = copy.deepcopy(template)
    adapted = emulator.adapt(template, ENDPOINT + "/")

    assert template == before  # dev's and prod's template never changes
    assert emulator.left_out(template) == ["TableSystemErrorsAlarm",
                                           "TableThrottledRequestsAlarm"]
    alarms = [n for n, r in adapted["Resources"].items()
              if r.get("Type") == "AWS::CloudWatch::Alarm"]
    assert alarms and all("Metrics" not in adapted["Resources"][n]["Properties"]
                          for n in alarms)
    variables = adapted["Resources"][tpl.API_LOGICAL_ID]["Properties"]["Environment"][
        "Variables"]
    assert variables["COGNITO_ENDPOINT"] == ENDPOINT
    mapping = adapted["Resources"]["ProcessStreamMapping"]["Properties"]
    assert mapping["MaximumRecordAgeInSeconds"] == emulator.EMULATED_RECORD_AGE_SECONDS == 60
    assert {k: v for k, v in mapping.items() if k != "MaximumRecordAgeInSeconds"} == {
        k: v for k, v in before["Resources"]["ProcessStreamMapping"]["Properties"].items()
        if k != "MaximumRecordAgeInSeconds"}
    for gap in ("metric_math", "jwks", "retries", "partial_batch", "url", "log_levels"):
        assert emulator.EMULATOR_GAPS[gap]


def test_the_emulated_stage_never_goes_to_aws() -> None:
    with pytest.raises(DeployError, match="local emulator only"):
        emulator.check_endpoint(EMULATED, None)
    assert emulator.check_endpoint(EMULATED, ENDPOINT + "/") == ENDPOINT


def test_the_shop_is_the_apis_own_host_under_localhost_and_the_api_also_a_path() -> None:
    outputs = {"EndpointURL": "https://ab12cd34.execute-api.us-east-1.amazonaws.com/api/"}
    assert emulator.urls(ENDPOINT, outputs, EMULATED) == (
        "http://ab12cd34.execute-api.localhost:4566/api/",
        "http://127.0.0.1:4566/_aws/execute-api/ab12cd34/api/",
    )
    with pytest.raises(DeployError, match="cannot read the API id"):
        emulator.urls(ENDPOINT, {"EndpointURL": "https://example.com/api/"}, EMULATED)


def test_the_emulated_stage_sends_every_aws_call_to_the_emulator() -> None:
    env = {"AWS_PROFILE": "prod-admin", "AWS_SESSION_TOKEN": "t", "MINISTACK_PORT": "18266",
           "HOME": "/home/me"}
    assert emulator.point_at_emulator(env) == "http://127.0.0.1:18266"
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:18266"
    assert (env["AWS_ACCESS_KEY_ID"], env["HOME"]) == ("test", "/home/me")
    given = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4999"}
    assert emulator.point_at_emulator(given) == "http://127.0.0.1:4999"
