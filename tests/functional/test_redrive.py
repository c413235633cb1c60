"""`python -m deploy redrive`: a real failed batch, its on-failure record, run again.

The batch fails the way it would in Lambda (the table refuses the follow-ups'
writes, so process_stream reports a failure); the message put in the
dead-letter queue is Lambda's documented on-failure record for a stream
source (docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from chalicelib import runtime
from deploy import account as acct
from deploy import cli
from deploy import redrive as rd
from deploy.settings import load_stage
from tests.factories import TABLE_NAME, add_body, cookie_from
from tests.functional.botocore_faults import Faults, error_response
from tests.functional.conftest import request

WRITES = ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem")
STAGE = load_stage("dev")


@pytest.fixture
def queue_url(stream_arn: str) -> str:
    """The stage's stack as the deploy leaves it: a dead-letter queue and the table."""
    template = {
        "Resources": {"FollowupDeadLetterQueue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"DeadLetterQueueUrl": {"Value": {"Ref": "FollowupDeadLetterQueue"}},
                    "TableName": {"Value": TABLE_NAME}},
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName=STAGE.stack_name, TemplateBody=json.dumps(template))
    outputs = cloudformation.describe_stacks(StackName=STAGE.stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in outputs["Outputs"]}["DeadLetterQueueUrl"]


def _failed_batch(stream: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deliver with the table refusing writes; the records Lambda would give up on."""
    with Faults(runtime.dynamodb_client()) as faults:
        for operation in WRITES:
            faults.always(operation, "unavailable")
        [result] = stream.deliver(records).values()
    [failure] = result["batchItemFailures"]
    first = int(failure["itemIdentifier"])
    return [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= first]


def on_failure_record(records: list[dict[str, Any]], stream_arn: str) -> str:
    """Lambda's on-failure destination message for a stream batch, as documented."""
    shard_id = boto3.client("dynamodbstreams").describe_stream(
        StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return json.dumps({
        "requestContext": {
            "requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:"
                           + STAGE.function_name("process_stream"),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 6,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": None},
        "version": "1.0",
        "timestamp": "2026-12-01T14:30:06.021Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": "2026-12-01T14:30:04Z",
            "approximateArrivalOfLastRecord": "2026-12-01T14:30:05Z",
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    })


def _queue_depth(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def test_redrive_recovers_a_failed_batch_and_empties_the_queue(client, stream, stream_arn,
                                                               queue_url, capsys):
    added = request(client, "POST", "/api/cart/items", body=add_body("kettle", 2))
    cookie = cookie_from(added)
    failed = _failed_batch(stream, stream.read())
    boto3.client("sqs").send_message(QueueUrl=queue_url,
                                     MessageBody=on_failure_record(failed, stream_arn))
    status = request(client, "GET", "/api/cart/status", cookie)
    assert json.loads(status.body)["itemCount"] == 0  # the follow-up never ran

    assert cli.main(["redrive", "--stage", STAGE.name]) == 0

    status = request(client, "GET", "/api/cart/status", cookie)
    assert json.loads(status.body)["itemCount"] == 2
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    assert {p["id"]: p["inCarts"] for p in products}["kettle"] == 1
    assert _queue_depth(queue_url) == 0
    printed = capsys.readouterr().out
    assert "1 of 1 failed batch(es) recovered and deleted" in printed


def test_redrive_twice_changes_nothing_more(client, stream, stream_arn, queue_url):
    request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    failed = _failed_batch(stream, stream.read())
    sqs = boto3.client("sqs")
    for _ in range(2):  # Lambda may send the same batch twice; redrive it twice
        sqs.send_message(QueueUrl=queue_url, MessageBody=on_failure_record(failed, stream_arn))
    assert cli.main(["redrive", "--stage", STAGE.name]) == 0
    products = json.loads(request(client, "GET", "/api/products").body)["products"]
    assert {p["id"]: p["inCarts"] for p in products}["kettle"] == 1
    assert _queue_depth(queue_url) == 0


class Trimmed:
    """The stream answering as it does for records past its 24-hour retention."""

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        return error_response(request.url, "TrimmedDataAccessException", 400)


def _account() -> acct.Account:
    return acct.Account(boto3.session.Session(), "us-east-1", "123456789012")


def test_trimmed_and_still_failing_batches_are_reported_and_kept(client, stream, stream_arn,
                                                                 queue_url):
    request(client, "POST", "/api/cart/items", body=add_body("kettle", 1))
    failed = _failed_batch(stream, stream.read())
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody=on_failure_record(failed, stream_arn))
    sqs.send_message(QueueUrl=queue_url, MessageBody='{"not": "an on-failure record"}')

    account = _account()
    trimmed = account.client("dynamodbstreams")
    trimmed.meta.events.register_first("before-send.dynamodb-streams.GetShardIterator",
                                       Trimmed())
    lines: list[str] = []
    assert cli.redrive(STAGE, account, lines.append) is False
    report = "\n".join(lines)
    assert f"{rd.TRIMMED} " in report and "TrimmedDataAccessException" in report
    assert f"{rd.UNREADABLE} " in report
    assert "0 of 2 failed batch(es) recovered" in lines[-1]
    assert _queue_depth(queue_url) == 2  # both kept, visible for the next look

    # the batch is still in moto's stream, but the table still refuses the writes
    account = _account()
    lines.clear()
    with Faults(runtime.dynamodb_client()) as faults, Faults(account.client("dynamodb")) as f2:
        for operation in WRITES:
            faults.always(operation, "unavailable")
            f2.always(operation, "unavailable")
        assert cli.redrive(STAGE, account, lines.append) is False
    assert any(line.strip().startswith(rd.FAILING) for line in lines), lines
    assert _queue_depth(queue_url) == 2


def test_redrive_without_a_deployed_stage_says_so_in_one_line(aws, capsys):
    assert cli.main(["redrive", "--stage", STAGE.name]) == 1
    assert capsys.readouterr().err.strip() == (
        f"redrive {STAGE.name}: error: no deployed stack {STAGE.stack_name} in us-east-1")
