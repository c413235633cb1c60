"""The local stack's pieces that need no processes: settings, handler discovery, moto's lock."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import app
from devstack.environment import StageError, moto_environment, stage_variables
from devstack.motoserver import SerialApp
from devstack.runner import stream_handlers
from devstack.supervisor import StackError, check_dependencies


def test_the_local_environment_points_every_aws_call_at_moto_with_dummy_keys() -> None:
    real = {"AWS_PROFILE": "prod-admin", "AWS_SESSION_TOKEN": "token", "PATH": "/bin",
            "CART_COOKIE_SECRET_PARAM": "/chalice-cart/dev/cookie-secret"}

    env = moto_environment(real, "http://127.0.0.1:8001")

    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert "CART_COOKIE_SECRET_PARAM" not in env
    assert env["PATH"] == "/bin"
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
                 "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"):
        assert env[name] == "http://127.0.0.1:8001"
    assert env["AWS_ACCESS_KEY_ID"] == "local"
    assert env["AWS_ACCOUNT_ID_ENDPOINT_MODE"] == "disabled"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == "/dev/null"


def test_the_local_stage_names_its_table() -> None:
    assert stage_variables("local")["TABLE_NAME"] == "chalice-cart-local"


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(StageError, match="stage 'nope' is not in"):
        stage_variables("nope")


def test_a_missing_dependency_is_named() -> None:
    with pytest.raises(StackError, match=r"missing dependency: no_such_module_xyz \(run"):
        check_dependencies(("json", "no_such_module_xyz"))


def test_the_runner_finds_every_stream_handler_on_the_app_with_its_settings() -> None:
    sources = {source.name: source for source in stream_handlers(app)}

    assert set(sources) == {"process_stream"}
    for name, source in sources.items():
        assert callable(getattr(app, name))
        assert source.batch_size == 100
        assert source.starting_position == "TRIM_HORIZON"


def test_moto_requests_are_handled_one_at_a_time() -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    def slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with guard:
            inside -= 1
        start_response("200 OK", [])
        return [b"ok"]

    serial = SerialApp(slow_app)
    threads = [threading.Thread(target=serial, args=({}, lambda *a: None)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert most == 1
