"""What operates a deployed stage, in its own stack: alarms, their topic, one dashboard,
the API's access logs. Pure functions, no IO; deploy.template merges them in.

The business metrics are the contract with chalicelib's embedded-metric-format
output (Powertools Metrics): namespace `METRICS_NAMESPACE`, one dimension
`service` = the stage's stack name, the names and units in `BUSINESS_METRICS`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from deploy.settings import HTTP_API as HTTP_API_DOOR
from deploy.settings import Stage

METRICS_NAMESPACE = "ChaliceCart"
BUSINESS_METRICS: tuple[tuple[str, str], ...] = (
    ("AddToCart", "Count"),
    ("SetQuantity", "Count"),
    ("RemoveFromCart", "Count"),
    ("CheckoutsPlaced", "Count"),
    ("OrdersConfirmed", "Count"),
    ("StreamRecordsProcessed", "Count"),
    ("StreamRecordsFailed", "Count"),
    ("StreamNewestRecordAgeMs", "Milliseconds"),
)

ALARM_TOPIC = "AlarmTopic"
ALARM_EMAIL_PARAMETER = "AlarmEmail"
HAS_ALARM_EMAIL = "HasAlarmEmail"
DASHBOARD = "OperationsDashboard"
ACCESS_LOG_GROUP = "ApiAccessLogGroup"
# The HTTP API's logical id (deploy/httpapi.py): its metrics are per ApiId.
HTTP_API = "HttpApi"

ITERATOR_AGE_LIMIT_MS = 60_000
API_P99_LATENCY_LIMIT_MS = 1_000
# What the code calls on the table (chalicelib); ThrottledRequests and SystemErrors
# exist only per operation, so an alarm sums them with metric math.
TABLE_OPERATIONS = ("GetItem", "Query", "PutItem", "UpdateItem",
                    "TransactWriteItems", "BatchGetItem", "BatchWriteItem")

# One line per request, JSON for Logs Insights, and every byte of it ingested. For a
# request the function answered, its own line (chalicelib/logging_setup.py) holds the
# route, status, duration, error code and cold start under the same requestId; this
# line is the only record of what never reached it (a throttle's 429, the gateway's own
# 403s and 404s, an integration error or timeout), so it keeps what an operator needs
# for those: the method and route, the status, the gateway's whole latency, the
# response's length, Lambda's status for the invocation (integrationStatus), the
# integration's error message and the gateway's error type (THROTTLED,
# INTEGRATION_TIMEOUT, ...). Left out: the request time (the log event's timestamp),
# the integration latency (responseLatency less the function's durationMs, and the
# stage's IntegrationLatency metric), the X-Ray trace id (unsampled for 95% of
# requests; X-Ray finds a sampled trace by URL and status). No IP, no user agent, no
# query string: nothing that identifies a shopper (the request id leads to the
# function's line). `method` and `route` are the function line's names.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "method": "$context.httpMethod",
    "route": "$context.resourcePath",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorType": "$context.error.responseType",
}
ACCESS_LOG_FORMAT = json.dumps(ACCESS_LOG_FIELDS, separators=(",", ":"))


NO_CMK_LOGS = (
    "CKV_AWS_158",
    "CloudWatch Logs encrypts every log group at rest; a customer-managed KMS key is out "
    "of scope for a reference stack",
)


def checkov_skip(*checks: tuple[str, str]) -> dict[str, Any]:
    """A resource's Metadata that tells checkov which checks it skips, and why."""
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in checks]}}


def _alarm(
    stage: Stage,
    name: str,
    description: str,
    *,
    threshold: float,
    comparison: str = "GreaterThanOrEqualToThreshold",
    period: int = 60,
    evaluation_periods: int = 1,
    metric: dict[str, Any] | None = None,
    metrics: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "AlarmName": f"{stage.stack_name}-{name}",
        "AlarmDescription": description,
        "ActionsEnabled": True,
        "AlarmActions": [{"Ref": ALARM_TOPIC}],
        "OKActions": [{"Ref": ALARM_TOPIC}],
        "ComparisonOperator": comparison,
        "Threshold": threshold,
        "EvaluationPeriods": evaluation_periods,
        # No traffic is not a fault: a quiet shop stays OK.
        "TreatMissingData": "notBreaching",
    }
    if metric is not None:
        properties.update(metric, Period=period)
    else:
        properties["Metrics"] = metrics
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _dimensions(**values: Any) -> list[dict[str, Any]]:
    return [{"Name": k, "Value": v} for k, v in values.items()]


def api_metric_names(stage: Stage) -> dict[str, str]:
    """API Gateway's metric names for this stage's front door (an HTTP API's are lower case)."""
    if stage.api == HTTP_API_DOOR:
        return {"4xx": "4xx", "5xx": "5xx"}
    return {"4xx": "4XXError", "5xx": "5XXError"}


def api_dimensions(stage: Stage, sub: bool = False) -> list[Any]:
    """The API stage's metric dimensions as name, value, ...: a REST API's by name,
    an HTTP API's by id (`sub`: as an Fn::Sub reference, else as a Ref)."""
    if stage.api == HTTP_API_DOOR:
        api_id: Any = f"${{{HTTP_API}}}" if sub else {"Ref": HTTP_API}
        return ["ApiId", api_id, "Stage", stage.api_stage]
    return ["ApiName", stage.stack_name, "Stage", stage.api_stage]


def _api_dimensions(stage: Stage) -> list[dict[str, Any]]:
    flat = api_dimensions(stage)
    return [{"Name": flat[i], "Value": flat[i + 1]} for i in range(0, len(flat), 2)]


def _function_ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}  # a function's Ref is its name


def alarms(
    stage: Stage, functions: dict[str, str], stream_functions: Iterable[str],
    table: str, queue: str,
) -> dict[str, Any]:
    """Every alarm, by logical id. `functions`: handler -> logical id."""
    resources: dict[str, Any] = {
        "DeadLetterQueueAlarm": _alarm(
            stage, "dead-letters",
            "A follow-up batch failed for good and waits in the dead-letter queue: "
            "redrive it (docs/OPERATIONS.md, Dead letters)",
            threshold=1,
            metric={
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": _dimensions(QueueName={"Fn::GetAtt": [queue, "QueueName"]}),
                "Statistic": "Maximum",
            },
        ),
        "Api5xxAlarm": _alarm(
            stage, "api-5xx", "The API answered 5xx (the function failed or timed out)",
            threshold=1, period=300,
            metric={
                "Namespace": "AWS/ApiGateway",
                "MetricName": api_metric_names(stage)["5xx"],
                "Dimensions": _api_dimensions(stage),
                "Statistic": "Sum",
            },
        ),
        "ApiLatencyAlarm": _alarm(
            stage, "api-p99-latency",
            f"API p99 latency over {API_P99_LATENCY_LIMIT_MS} ms for 3 of 3 five-minute periods",
            threshold=API_P99_LATENCY_LIMIT_MS, comparison="GreaterThanThreshold",
            period=300, evaluation_periods=3,
            metric={
                "Namespace": "AWS/ApiGateway",
                "MetricName": "Latency",
                "Dimensions": _api_dimensions(stage),
                "ExtendedStatistic": "p99",
            },
        ),
    }
    for kind in ("ThrottledRequests", "SystemErrors"):
        ids = [f"m{n}" for n in range(len(TABLE_OPERATIONS))]
        per_operation: list[dict[str, Any]] = [
            {
                "Id": metric_id,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/DynamoDB",
                        "MetricName": kind,
                        "Dimensions": _dimensions(TableName={"Ref": table}, Operation=operation),
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
            for metric_id, operation in zip(ids, TABLE_OPERATIONS, strict=True)
        ]
        total = {
            "Id": "total",
            "Label": f"{kind} (all operations)",
            "Expression": "SUM([" + ",".join(ids) + "])",
            "ReturnData": True,
        }
        resources[f"Table{kind}Alarm"] = _alarm(
            stage, f"table-{kind.lower()}",
            f"DynamoDB {kind} on the cart table (any operation)",
            threshold=1, metrics=[*per_operation, total],
        )
    for handler, logical in functions.items():
        for kind in ("Errors", "Throttles"):
            resources[f"{logical}{kind}Alarm"] = _alarm(
                stage, f"{handler}-{kind.lower()}",
                f"Lambda {kind} of {handler}",
                threshold=1, period=300,
                metric={
                    "Namespace": "AWS/Lambda",
                    "MetricName": kind,
                    "Dimensions": _dimensions(FunctionName=_function_ref(logical)),
                    "Statistic": "Sum",
                },
            )
    for logical in stream_functions:
        resources[f"{logical}IteratorAgeAlarm"] = _alarm(
            stage, f"{logical}-iterator-age",
            f"{logical} is over {ITERATOR_AGE_LIMIT_MS // 1000} s behind the table's stream",
            threshold=ITERATOR_AGE_LIMIT_MS, comparison="GreaterThanThreshold",
            metric={
                "Namespace": "AWS/Lambda",
                "MetricName": "IteratorAge",
                "Dimensions": _dimensions(FunctionName=_function_ref(logical)),
                "Statistic": "Maximum",
            },
        )
    return resources


def topic(stage: Stage) -> dict[str, Any]:
    """The alarms' topic and, when the deploy was given an address, its e-mail subscription."""
    return {
        ALARM_TOPIC: {
            "Type": "AWS::SNS::Topic",
            "Metadata": checkov_skip(
                ("CKV_AWS_26", "CloudWatch alarms cannot publish to a topic encrypted with "
                 "the AWS-managed SNS key; a customer-managed KMS key is out of scope for a "
                 "reference stack, and alarm texts carry no shopper data"),
            ),
            "Properties": {"DisplayName": f"{stage.stack_name} alarms"},
        },
        "AlarmEmailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Condition": HAS_ALARM_EMAIL,
            "Properties": {
                "TopicArn": {"Ref": ALARM_TOPIC},
                "Protocol": "email",
                "Endpoint": {"Ref": ALARM_EMAIL_PARAMETER},
            },
        },
    }


def parameters() -> dict[str, Any]:
    return {
        ALARM_EMAIL_PARAMETER: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "Description": "An e-mail address to subscribe to the alarm topic (it must "
            "confirm the subscription); empty for none",
        }
    }


def conditions() -> dict[str, Any]:
    return {HAS_ALARM_EMAIL: {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_EMAIL_PARAMETER}, ""]}]}}


def access_logs(stage: Stage) -> dict[str, Any]:
    """The stage's access log group.

    API Gateway writes it through the account's logging role, which the deploy
    sets outside the stack when the account has none (deploy.account).
    """
    return {
        ACCESS_LOG_GROUP: {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Metadata": checkov_skip(NO_CMK_LOGS),
            "Properties": {
                "LogGroupName": f"/aws/apigateway/{stage.stack_name}-access",
                "RetentionInDays": stage.log_retention_days,
            },
        },
    }


def access_log_setting() -> dict[str, Any]:
    return {
        "DestinationArn": {"Fn::GetAtt": [ACCESS_LOG_GROUP, "Arn"]},
        "Format": ACCESS_LOG_FORMAT,
    }


# -- the dashboard -------------------------------------------------------------------


def _widget(title: str, metrics: list[list[Any]], stat: str, x: int, y: int,
            period: int = 60) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "stat": stat,
            "period": period,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard_body(stage: Stage, functions: dict[str, str], stream_functions: list[str],
                   table: str, queue: str) -> str:
    """The dashboard's JSON, for Fn::Sub: ${...} are the stack's names."""
    api = api_dimensions(stage, sub=True)
    errors = api_metric_names(stage)
    service = ["service", stage.service_name]
    names = {handler: stage.function_name(handler) for handler in functions}
    stream_names = [
        stage.function_name(h) for h, logical in functions.items() if logical in stream_functions
    ]
    business = [name for name, unit in BUSINESS_METRICS if unit == "Count"]
    widgets = [
        _widget("API requests, 4XX, 5XX",
                [["AWS/ApiGateway", m, *api] for m in ("Count", errors["4xx"], errors["5xx"])],
                "Sum", 0, 0),
        _widget("API latency p50 / p99 (ms)",
                [["AWS/ApiGateway", "Latency", *api, {"stat": s}] for s in ("p50", "p99")],
                "p99", 12, 0),
        _widget("Lambda errors and throttles",
                [["AWS/Lambda", m, "FunctionName", n] for n in names.values()
                 for m in ("Errors", "Throttles")],
                "Sum", 0, 6),
        _widget("Lambda duration p99 (ms)",
                [["AWS/Lambda", "Duration", "FunctionName", n] for n in names.values()],
                "p99", 12, 6),
        _widget("Stream iterator age (ms, max)",
                [["AWS/Lambda", "IteratorAge", "FunctionName", n] for n in stream_names],
                "Maximum", 0, 12),
        _widget("Dead-letter queue: messages visible",
                [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                  f"${{{queue}.QueueName}}"]],
                "Maximum", 12, 12),
        _widget("DynamoDB throttled requests and system errors",
                [["AWS/DynamoDB", m, "TableName", f"${{{table}}}", "Operation", op]
                 for m in ("ThrottledRequests", "SystemErrors") for op in TABLE_OPERATIONS],
                "Sum", 0, 18),
        _widget("DynamoDB consumed capacity",
                [["AWS/DynamoDB", m, "TableName", f"${{{table}}}"]
                 for m in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits")],
                "Sum", 12, 18),
        _widget("Shop: cart operations, checkouts, orders confirmed",
                [[METRICS_NAMESPACE, m, *service] for m in business if not m.startswith("Stream")],
                "Sum", 0, 24, period=300),
        _widget("Follow-ups: stream records processed and failed",
                [[METRICS_NAMESPACE, m, *service] for m in business if m.startswith("Stream")],
                "Sum", 12, 24),
        _widget("Follow-ups: age of the newest record processed (ms, max)",
                [[METRICS_NAMESPACE, "StreamNewestRecordAgeMs", *service]],
                "Maximum", 0, 30),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def dashboard(stage: Stage, functions: dict[str, str], stream_functions: list[str],
              table: str, queue: str) -> dict[str, Any]:
    return {
        DASHBOARD: {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": stage.stack_name,
                "DashboardBody": {
                    "Fn::Sub": dashboard_body(stage, functions, stream_functions, table, queue)
                },
            },
        }
    }


def outputs() -> dict[str, Any]:
    return {
        "AlarmTopicArn": {"Value": {"Ref": ALARM_TOPIC}},
        "DashboardURL": {
            "Value": {
                "Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home"
                "?region=${AWS::Region}#dashboards:name=${" + DASHBOARD + "}"
            }
        },
        "AccessLogGroup": {"Value": {"Ref": ACCESS_LOG_GROUP}},
    }
