"""A stream batch the deployed function fails: MiniStack's mapping, the dead-letter queue, redrive.

MiniStack ignores a DynamoDB stream function's partial-batch response and
applies neither MaximumRetryAttempts nor bisection (deploy/emulator.py
EMULATOR_GAPS): only a batch whose function fails outright is retried, about
once a second, until its oldest record is MaximumRecordAgeInSeconds old (60 s
on the emulated stage); then the mapping's on-failure destination gets
Lambda's record for it. So the failure here is a broken deploy of the stream
function (a handler that does not exist), and the test takes a minute. It runs
last (file order): the stream waits behind the failing batch meanwhile.
"""

from __future__ import annotations

import json
import subprocess  # nosec B404: runs `make redrive`'s command as a user does
import sys
from typing import Any

import requests

from deploy.settings import ROOT, load_stage
from devstack.emulator import aws_environment
from tests.e2e.helpers import wait_until
from tests.emulated.conftest import EmulatedStack
from tests.factories import JSON, add_body

# One front door is enough: the stream, its mapping and the dead-letter queue are
# the same behind either (tests/emulated/conftest.py).
ONE_FRONT_DOOR = True

STREAM_FUNCTION = load_stage("emulated").function_name("process_stream")
GIVE_UP_SECONDS = 60  # deploy/emulator.py EMULATED_RECORD_AGE_SECONDS


def dead_letters(stack: EmulatedStack) -> list[dict[str, Any]]:
    """The queue's messages, left in it (visible again at once)."""
    answer = stack.client("sqs").receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return list(answer.get("Messages", []))


def item_count(shopper: requests.Session, stack: EmulatedStack) -> int:
    return int(shopper.get(f"{stack.url}/api/cart/status", timeout=10).json()["itemCount"])


def redrive(stack: EmulatedStack) -> subprocess.CompletedProcess[str]:
    """`make redrive STAGE=emulated` against this session's MiniStack."""
    return subprocess.run(  # nosec B603: fixed argv
        [sys.executable, "-m", "deploy", "redrive", "--stage", "emulated"], cwd=ROOT,
        env=aws_environment(stack.endpoint), capture_output=True, text=True, timeout=120,
        check=False)


def test_a_failed_batch_reaches_the_dead_letter_queue_and_redrive_replays_it_once(
        emulated_stack: EmulatedStack) -> None:
    functions, shopper = emulated_stack.client("lambda"), requests.Session()
    assert dead_letters(emulated_stack) == []
    functions.update_function_configuration(FunctionName=STREAM_FUNCTION,
                                             Handler="app.no_such_handler")
    try:
        added = shopper.post(f"{emulated_stack.url}/api/cart/items", headers=JSON,
                             data=add_body("grinder", 2), timeout=10)
        assert added.status_code == 201, added.text
        [message] = wait_until(lambda: dead_letters(emulated_stack),
                               timeout=GIVE_UP_SECONDS + 30, interval=1)
    finally:
        functions.update_function_configuration(FunctionName=STREAM_FUNCTION,
                                                Handler="app.process_stream")
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "MaxRecordAgeExceeded"
    assert record["requestContext"]["functionArn"].endswith(f":function:{STREAM_FUNCTION}")
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert item_count(shopper, emulated_stack) == 0  # the summary never ran

    first = redrive(emulated_stack)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 of 1 failed batch(es) recovered and deleted (1 records)" in first.stdout
    assert item_count(shopper, emulated_stack) == 2
    assert dead_letters(emulated_stack) == []
    again = redrive(emulated_stack)
    assert again.returncode == 0 and "0 of 0" in again.stdout, again.stdout + again.stderr
    assert item_count(shopper, emulated_stack) == 2

    # The mapping moved past the batch: the mended function follows new writes again.
    shopper.post(f"{emulated_stack.url}/api/cart/items", headers=JSON,
                 data=add_body("filters", 1), timeout=10)
    wait_until(lambda: item_count(shopper, emulated_stack) == 3, timeout=15)
