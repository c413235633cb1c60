"""What operates a deployed stage, as the merge template declares it: alarms and their
topic, the dashboard, tracing, access logs, capacity settings, the stream mapping's
filters and the package's architecture check. No IO."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib import followups, metrics
from deploy import operations as ops
from deploy import template as tpl
from deploy.build import foreign_binaries
from deploy.settings import DeployError, Stage, load_stage

DEV = load_stage("dev")
PROD = load_stage("prod")
HANDLERS = ("process_stream",)
FUNCTIONS = {"APIHandler": "api_handler", "ProcessStream": "process_stream"}


def resources(stage: Stage = DEV) -> dict[str, Any]:
    return tpl.merge_template(stage, HANDLERS)["Resources"]  # type: ignore[no-any-return]


def alarms(stage: Stage = DEV) -> dict[str, dict[str, Any]]:
    return {
        name: r["Properties"]
        for name, r in resources(stage).items()
        if r.get("Type") == "AWS::CloudWatch::Alarm"
    }


def _metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    return alarm["Namespace"], alarm["MetricName"], dimensions


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears() -> None:
    found = alarms()
    assert len(found) == 10
    for alarm in found.values():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmName"].startswith("chalice-cart-dev-")
    assert resources()["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def test_a_dead_letter_alarms_at_the_first_message_in_the_queue() -> None:
    alarm = alarms()["DeadLetterQueueAlarm"]
    assert _metric(alarm) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["FollowupDeadLetterQueue", "QueueName"]}},
    )
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum", "GreaterThanOrEqualToThreshold", 1
    )


def test_the_stream_mapping_alarms_when_it_falls_over_a_minute_behind() -> None:
    alarm = alarms()["ProcessStreamIteratorAgeAlarm"]
    assert _metric(alarm) == (
        "AWS/Lambda", "IteratorAge", {"FunctionName": {"Ref": "ProcessStream"}}
    )
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Maximum", "GreaterThanThreshold", 60_000
    )


def test_each_function_alarms_on_its_errors_and_throttles() -> None:
    found = alarms()
    for logical in FUNCTIONS:
        for kind in ("Errors", "Throttles"):
            alarm = found[f"{logical}{kind}Alarm"]
            assert _metric(alarm) == ("AWS/Lambda", kind, {"FunctionName": {"Ref": logical}})
            assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)


def test_the_api_alarms_on_5xx_and_on_p99_latency_of_its_stage() -> None:
    found = alarms(DEV)
    api = {"ApiName": "chalice-cart-dev", "Stage": "api"}
    assert DEV.api == "rest"
    assert _metric(found["Api5xxAlarm"]) == ("AWS/ApiGateway", "5XXError", api)
    latency = found["ApiLatencyAlarm"]
    assert _metric(latency) == ("AWS/ApiGateway", "Latency", api)
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] == 1000
    # The names the dimensions point at are the ones the template gives.
    assert resources(DEV)["RestAPI"]["Properties"]["Name"] == api["ApiName"]


def test_an_http_api_stage_alarms_on_its_api_by_id_with_the_http_api_metric_names() -> None:
    found = alarms(PROD)
    api = {"ApiId": {"Ref": ops.HTTP_API}, "Stage": "api"}
    assert PROD.api == "http"
    assert _metric(found["Api5xxAlarm"]) == ("AWS/ApiGateway", "5xx", api)
    assert _metric(found["ApiLatencyAlarm"]) == ("AWS/ApiGateway", "Latency", api)
    body = resources(PROD)["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert '["AWS/ApiGateway","5xx","ApiId","${HttpApi}","Stage","api"]' in body
    assert "ApiName" not in body and "5XXError" not in body


DYNAMODB_CALL = re.compile(
    r"\.(get_item|query|scan|put_item|update_item|delete_item|transact_write_items|"
    r"transact_get_items|batch_write_item|batch_get_item)\("
)


def table_calls() -> set[str]:
    """The DynamoDB operations chalicelib's adapters call (read from the source)."""
    root = Path(__file__).resolve().parents[2]
    sources = [root / "app.py", *sorted((root / "chalicelib").rglob("*.py"))]
    return {m[1] for path in sources for m in DYNAMODB_CALL.finditer(path.read_text())}


@pytest.mark.parametrize("kind", ["ThrottledRequests", "SystemErrors"])
def test_the_table_alarms_sum_every_operation_the_code_calls(kind: str) -> None:
    metrics = alarms()[f"Table{kind}Alarm"]["Metrics"]
    *parts, total = metrics
    assert total["ReturnData"] is True and total["Expression"] == (
        "SUM([" + ",".join(m["Id"] for m in parts) + "])"
    )
    operations = set()
    for part in parts:
        metric = part["MetricStat"]["Metric"]
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert (metric["Namespace"], metric["MetricName"]) == ("AWS/DynamoDB", kind)
        assert dimensions["TableName"] == {"Ref": "CartTable"}
        assert part["ReturnData"] is False
        operations.add(dimensions["Operation"])
    assert operations == {"".join(w.capitalize() for w in c.split("_")) for c in table_calls()}


def test_an_email_given_to_the_deploy_subscribes_to_the_topic_and_none_is_the_default() -> None:
    merged = tpl.merge_template(DEV, HANDLERS)
    parameter = merged["Parameters"]["AlarmEmail"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.match("") and pattern.match("ops@example.com")
    assert not pattern.match("not an address") and not pattern.match("a@b")
    subscription = merged["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert merged["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


def _substituted(body: str) -> dict[str, Any]:
    """The dashboard as CloudFormation's Fn::Sub leaves it, with made-up physical names."""
    names = {
        "AWS::Region": "eu-west-1",
        "CartTable": "chalice-cart-dev-CartTable-X",
        "FollowupDeadLetterQueue.QueueName": "chalice-cart-dev-Dlq-Y",
    }
    used = set(re.findall(r"\$\{([^}]+)\}", body))
    assert used == set(names)
    result: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", lambda m: names[m[1]], body))
    return result


def test_the_dashboard_shows_what_the_alarms_watch_and_every_business_metric() -> None:
    dashboard = resources()["OperationsDashboard"]
    assert dashboard["Type"] == "AWS::CloudWatch::Dashboard"
    assert dashboard["Properties"]["DashboardName"] == "chalice-cart-dev"
    body = _substituted(dashboard["Properties"]["DashboardBody"]["Fn::Sub"])
    shown: set[tuple[str, str]] = set()
    business: set[tuple[str, ...]] = set()
    for widget in body["widgets"]:
        assert widget["properties"]["region"] == "eu-west-1"
        for metric in widget["properties"]["metrics"]:
            names = [part for part in metric if isinstance(part, str)]
            shown.add((names[0], names[1]))
            if names[0] == "ChaliceCart":
                business.add(tuple(names))
    for alarm in alarms().values():
        if "Namespace" in alarm:
            assert (alarm["Namespace"], alarm["MetricName"]) in shown
        else:
            metric = alarm["Metrics"][0]["MetricStat"]["Metric"]
            assert (metric["Namespace"], metric["MetricName"]) in shown
    assert business == {
        ("ChaliceCart", name, "service", "chalice-cart-dev") for name, _ in ops.BUSINESS_METRICS
    }


def test_every_function_names_the_metrics_namespace_and_service_for_powertools() -> None:
    for stage in (DEV, PROD):
        for logical in FUNCTIONS:
            variables = resources(stage)[logical]["Properties"]["Environment"]["Variables"]
            assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ChaliceCart"
            assert variables["POWERTOOLS_SERVICE_NAME"] == f"chalice-cart-{stage.name}"


def test_api_stage_is_traced_and_writes_json_access_logs_with_the_stage_retention() -> None:
    merged = resources(PROD)
    api = merged["RestAPI"]["Properties"]
    assert api["TracingEnabled"] is True
    setting = api["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(setting["Format"])
    # What an operator needs of a request the function never saw (a throttle, the
    # gateway's own refusals, an integration error); the function's line has the rest.
    assert fields == {
        "requestId": "$context.requestId", "method": "$context.httpMethod",
        "route": "$context.resourcePath", "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationError": "$context.integrationErrorMessage",
        "errorType": "$context.error.responseType"}
    # Nothing that identifies a shopper.
    assert not {"$context.identity.sourceIp", "$context.identity.userAgent"} & set(
        fields.values())
    group = merged["ApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == PROD.log_retention_days == 90
    # The account's API Gateway logging role is the deploy's, outside the stack.
    assert not any(r.get("Type") == "AWS::ApiGateway::Account" for r in merged.values())


def test_a_stage_can_turn_tracing_off(tmp_path: Path) -> None:
    config = json.loads(Path(".chalice/config.json").read_text())
    config["stages"]["dev"]["xray"] = False
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    untraced = load_stage("dev", path)
    assert untraced.tracing is False and DEV.tracing is True
    assert resources(untraced)["RestAPI"]["Properties"]["TracingEnabled"] is False


def test_capacity_comes_from_each_stage_in_the_config() -> None:
    assert (PROD.api_rate_limit, PROD.api_burst_limit) == (1000, 2000)
    assert PROD.reserved_concurrency == {"api_handler": 200, "process_stream": 20}
    assert (DEV.api_rate_limit, DEV.api_burst_limit, DEV.reserved_concurrency) == (50, 100, {})
    assert (DEV.log_retention_days, PROD.log_retention_days) == (14, 90)
    [throttle] = resources(PROD)["RestAPI"]["Properties"]["MethodSettings"]
    assert (throttle["ThrottlingRateLimit"], throttle["ThrottlingBurstLimit"]) == (1000, 2000)
    for logical in (*FUNCTIONS, "ApiAccessLogGroup"):
        name = logical if logical.endswith("Group") else logical + "LogGroup"
        assert resources(PROD)[name]["Properties"]["RetentionInDays"] == 90


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_throttling": {"rate_limit": 0}}, "rate_limit must be a number >= 1"),
        ({"api_throttling": {"burst_limit": 10.5}}, "burst_limit must be a whole number"),
        ({"log_retention_days": 10}, "log_retention_days must be one of CloudWatch Logs'"),
        ({"system_log_level": "ERROR"}, "system_log_level must be one of DEBUG, INFO, WARN"),
        ({"lambda_functions": {"api_handler": {"reserved_concurrency": "lots"}}},
         "reserved_concurrency must be a number >= 0"),
    ],
)
def test_a_capacity_setting_out_of_range_is_named(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    config = json.loads(Path(".chalice/config.json").read_text())
    config["stages"]["dev"].update(change)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(DeployError, match=re.escape(message)):
        load_stage("dev", path)


def test_the_stream_mapping_filters_with_the_follow_ups_own_patterns() -> None:
    event = resources()["ProcessStream"]["Properties"]["Events"]["ProcessStreamDynamodbEventSource"]
    filters = event["Properties"]["FilterCriteria"]["Filters"]
    assert [json.loads(f["Pattern"]) for f in filters] == list(followups.STREAM_FILTER_PATTERNS)
    assert event["Properties"]["ParallelizationFactor"] == tpl.PARALLELIZATION_FACTOR
    assert 1 <= tpl.PARALLELIZATION_FACTOR <= 10


def test_every_checkov_skip_names_its_check_and_says_why() -> None:
    skipped = 0
    for stage in (DEV, PROD):
        for resource in resources(stage).values():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert re.fullmatch(r"CKV_AWS_\d+", skip["id"])
                assert len(skip["comment"]) > 20
                skipped += 1
    assert skipped > 0
    # Reserving concurrency is a per-stage choice: only a stage without it skips the check.
    assert "CKV_AWS_115" in json.dumps(resources(DEV)["APIHandler"]["Metadata"])
    assert "CKV_AWS_115" not in json.dumps(resources(PROD)["APIHandler"]["Metadata"])


def test_a_package_with_x86_64_compiled_code_or_wheels_is_refused() -> None:
    arm = "Tag: cp313-cp313-manylinux_2_17_aarch64\nTag: cp313-cp313-manylinux2014_aarch64\n"
    pure = "Tag: py3-none-any\n"
    x86 = "Tag: cp313-cp313-manylinux_2_17_x86_64\n"
    assert foreign_binaries(
        {"markupsafe/_speedups.cpython-313-aarch64-linux-gnu.so", "jinja2/__init__.py"},
        {"markupsafe-3.0.dist-info/WHEEL": arm, "jinja2-3.1.dist-info/WHEEL": pure},
    ) == []
    assert foreign_binaries(
        {"pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so"},
        {"pydantic_core-2.0.dist-info/WHEEL": x86},
    ) == [
        "pydantic_core/_pydantic_core.cpython-313-x86_64-linux-gnu.so is compiled for another "
        "machine than Lambda arm64",
        "pydantic_core-2.0.dist-info is a wheel for manylinux_2_17_x86_64, not Lambda arm64 "
        "(linux aarch64)",
    ]
    # An abi3 library names no machine: its wheel's tags tell.
    assert foreign_binaries(
        {"cryptography/hazmat/bindings/_rust.abi3.so"},
        {"cryptography-44.dist-info/WHEEL": "Tag: cp39-abi3-manylinux_2_28_x86_64\n"},
    ) == [
        "cryptography-44.dist-info is a wheel for manylinux_2_28_x86_64, not Lambda arm64 "
        "(linux aarch64)"
    ]


def test_the_dashboard_s_business_metrics_are_the_ones_the_code_emits() -> None:
    emitted = {
        (getattr(metrics, name), metrics.MILLISECONDS if name.endswith("_MS") else metrics.COUNT)
        for name in dir(metrics)
        if name.isupper() and isinstance(getattr(metrics, name), str)
        and getattr(metrics, name) in {m for m, _ in ops.BUSINESS_METRICS}
    }
    assert emitted == set(ops.BUSINESS_METRICS)
    assert (metrics.DEFAULT_NAMESPACE, metrics.DIMENSION) == (ops.METRICS_NAMESPACE, "service")
    assert metrics.NAMESPACE_VARIABLE in tpl.metrics_environment(DEV)
    assert metrics.SERVICE_VARIABLE in tpl.metrics_environment(DEV)


def test_an_on_failure_record_s_sequence_numbers_are_kept_as_the_stream_wrote_them() -> None:
    # MiniStack writes them zero-padded and GetShardIterator matches the string:
    # as an int, "00...10" became "10" and the batch read as trimmed.
    from deploy.redrive import BatchInfo

    body = json.dumps({"DDBStreamBatchInfo": {
        "streamArn": "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/s",
        "shardId": "shardId-00000000000000000000-00000000",
        "startSequenceNumber": "000000017964240107230000000010",
        "endSequenceNumber": "000000017964240107230000000012", "batchSize": 3}})
    info = BatchInfo.from_message(body)
    assert (info.start_sequence, info.end_sequence) == (
        "000000017964240107230000000010", "000000017964240107230000000012")
    with pytest.raises(ValueError, match="not a DynamoDB stream on-failure record"):
        BatchInfo.from_message(body.replace('"000000017964240107230000000010"', '"1e5"'))
