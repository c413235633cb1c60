"""devstack/faults.py: the opt-in store stall the browser tests inject (no IO)."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

from devstack import faults


def call(app: faults.FaultApp, path: str = "/", method: str = "POST", body: bytes = b"",
         target: str | None = None) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method,
                               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    status: list[str] = []
    chunks = app(environ, lambda s, headers: status.append(s))
    return status[0], b"".join(chunks)


def backend(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"moto"]


def test_faults_are_off_unless_the_flag_says_so() -> None:
    assert not faults.enabled({})
    assert not faults.enabled({"DEVSTACK_FAULTS": "0"})
    assert faults.enabled({"DEVSTACK_FAULTS": "1"})
    assert faults.enabled({"DEVSTACK_FAULTS": "yes"})


def test_a_stalled_dynamodb_request_waits_then_runs_and_streams_do_not_wait() -> None:
    app = faults.FaultApp(backend)
    status, body = call(app, faults.STALL_PATH, body=b'{"seconds": 30}')
    assert status == "200 OK" and json.loads(body)["stalledFor"] > 29
    answered: list[float] = []
    started = time.monotonic()
    worker = threading.Thread(target=lambda: answered.append(
        (call(app, target="DynamoDB_20120810.GetItem"), time.monotonic())[1]))
    worker.start()
    # A Streams read is not held while the table's API is.
    assert call(app, target="DynamoDBStreams_20120810.GetRecords")[1] == b"moto"
    worker.join(timeout=0.2)
    assert worker.is_alive() and not answered
    call(app, faults.STALL_PATH, body=b'{"seconds": 0}')
    worker.join(timeout=5)
    assert answered and answered[0] - started < 5  # ran once the stall ended, not after 30 s


def test_a_stall_of_a_bad_length_is_refused() -> None:
    app = faults.FaultApp(backend)
    for body in (b"{}", b'{"seconds": -1}', b'{"seconds": 1e9}', b"nope"):
        status, _ = call(app, faults.STALL_PATH, body=body)
        assert status == "400 Bad Request", body
    assert app.stall.remaining() == 0


def test_a_stall_of_one_operation_holds_only_its_requests() -> None:
    app = faults.FaultApp(backend)
    call(app, faults.STALL_PATH, body=b'{"seconds": 30, "only": "TransactWriteItems"}')
    # The read answers at once while the transaction waits.
    assert call(app, target="DynamoDB_20120810.GetItem")[1] == b"moto"
    answered: list[bytes] = []
    worker = threading.Thread(target=lambda: answered.append(
        call(app, target="DynamoDB_20120810.TransactWriteItems")[1]))
    worker.start()
    worker.join(timeout=0.2)
    assert worker.is_alive() and not answered
    call(app, faults.STALL_PATH, body=b'{"seconds": 0}')
    worker.join(timeout=5)
    assert answered == [b"moto"]
    status, _ = call(app, faults.STALL_PATH, body=b'{"seconds": 1, "only": 7}')
    assert status == "400 Bad Request"
