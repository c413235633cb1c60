"""The local stack's pieces that need no processes: settings, handler discovery, moto's lock."""

from __future__ import annotations

import subprocess  # nosec B404: git and the project's own script
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import app
from chalicelib.followups import STREAM_FILTER_PATTERNS
from devstack.__main__ import _parser as parser
from devstack.__main__ import main as devstack_main
from devstack.browser import NoBrowser, debian_like, find_browser
from devstack.dispatch import Batch, BatchDispatcher, Parked
from devstack.environment import PROJECT_DIR, StageError, moto_environment, stage_variables
from devstack.filters import matches_any
from devstack.motoserver import SerialApp
from devstack.ports import flag, port_number
from devstack.runner import (
    Checkpoint,
    Feed,
    Runner,
    is_local_endpoint,
    remote_refusal,
    stream_handlers,
)
from devstack.streams import StreamReader
from devstack.supervisor import Child, Output, Stack, StackError, check_dependencies


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


# -- 9. ports and flags are validated --------------------------------------------

@pytest.mark.parametrize(("text", "why"), [
    ("0", "port 0 is refused"), ("70000", "port 70000 is out of range"),
    ("-1", "port -1 is out of range"), ("http", "port 'http' is not a number"),
])
def test_a_bad_port_is_refused_in_one_line_before_anything_starts(
        text: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        devstack_main(["run", "--port", text])

    assert exited.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert why in error and "use 1-65535" in error
    assert "Traceback" not in error and "OverflowError" not in error


def test_every_port_from_1_to_65535_is_taken() -> None:
    assert port_number("1") == 1 and port_number("65535") == 65535
    assert port_number(" 8000 ") == 8000


@pytest.mark.parametrize(("text", "value"), [
    ("1", True), ("true", True), ("yes", True), ("YES", True), ("on", True),
    ("0", False), ("false", False), ("no", False), ("off", False),
])
def test_reload_takes_the_usual_words_for_yes_and_no(text: str, value: bool) -> None:
    args = parser().parse_args(["run", "--reload", text, "--verbose", text])

    assert args.reload is value and args.verbose is value


def test_reload_refuses_a_word_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--reload", "maybe"])

    assert "'maybe' is not one of 1/true/yes/on or 0/false/no/off" in capsys.readouterr().err
    with pytest.raises(ValueError):
        flag("2")


def test_lint_checks_only_the_files_git_tracks(tmp_path: Path) -> None:
    def git(*argv: str) -> None:
        subprocess.run(["git", *argv], cwd=tmp_path, check=True,  # nosec B603, B607
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "kept.py").write_text("x = 1\n")
    (tmp_path / "gone.py").write_text("y = 2\n")
    git("add", "kept.py", "gone.py")
    (tmp_path / "gone.py").unlink()  # tracked, deleted, not yet committed
    (tmp_path / "scratch.py").write_text("import os\n")  # untracked: not the project's

    listed = subprocess.run([str(PROJECT_DIR / "scripts" / "tracked-python")],  # nosec B603
                            cwd=tmp_path, capture_output=True, text=True, check=True)

    assert listed.stdout.splitlines() == ["kept.py"]


# -- 11. the runner applies the mapping's filter patterns -----------------------

def record(pk: str, sk: str, event: str = "MODIFY") -> dict[str, Any]:
    return {"eventName": event, "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}}


@pytest.mark.parametrize(("event", "delivered"), [
    (record("CART#c1", "LINE#kettle", "INSERT"), True),
    (record("CART#c1", "LINE#kettle", "REMOVE"), True),
    (record("CART#c1", "ORDER#o1", "INSERT"), True),
    (record("CART#c1", "ORDER#o1", "MODIFY"), False),  # the confirmation's own write
    (record("CART#c1", "SUMMARY"), False),
    (record("CATALOG", "PRODUCT#kettle"), False),
    ({"eventName": "INSERT", "dynamodb": {}}, False),  # no keys: no match
])
def test_the_stream_filter_lets_through_what_the_deployed_mapping_does(
        event: dict[str, Any], delivered: bool) -> None:
    assert matches_any(event, STREAM_FILTER_PATTERNS) is delivered


def test_filter_operators_follow_lambdas_semantics() -> None:
    assert matches_any({"a": 1}, [])  # no FilterCriteria: every record
    assert matches_any({"a": {"b": 5}}, [{"a": {"b": [5]}}])
    assert not matches_any({"a": {"b": 5}}, [{"a": {"b": ["5"]}}])  # types differ
    assert matches_any({"a": "x"}, [{"a": [{"anything-but": ["y"]}]}])
    assert not matches_any({"a": "y"}, [{"a": [{"anything-but": ["y"]}]}])
    assert matches_any({"b": 1}, [{"a": [{"exists": False}]}])
    assert not matches_any({"a": 1}, [{"a": [{"exists": False}]}])
    assert matches_any({"a": "q"}, [{"a": ["z"]}, {"a": [{"prefix": "q"}]}])  # any pattern
    with pytest.raises(ValueError, match="not supported"):
        matches_any({"a": 1}, [{"a": [{"numeric": [">", 0]}]}])


# -- 11. shards in order, DescribeStream paged -----------------------------------

class FakeStreams:
    """A Streams API with split shards, paged DescribeStream and fixed records."""

    def __init__(self, shards: list[dict[str, Any]], records: dict[str, list[str]],
                 page_size: int = 1) -> None:
        self.shards = shards
        self.records = records
        self.page_size = page_size
        self.describe_calls: list[dict[str, Any]] = []

    def describe_stream(self, **request: Any) -> dict[str, Any]:
        self.describe_calls.append(request)
        ids = [shard["ShardId"] for shard in self.shards]
        start = ids.index(request["ExclusiveStartShardId"]) + 1 \
            if "ExclusiveStartShardId" in request else 0
        page = self.shards[start:start + self.page_size]
        more = start + self.page_size < len(self.shards)
        return {"StreamDescription": {"Shards": page, **(
            {"LastEvaluatedShardId": page[-1]["ShardId"]} if more else {})}}

    def get_shard_iterator(self, **request: Any) -> dict[str, Any]:
        return {"ShardIterator": request["ShardId"]}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        shard = ShardIterator.split("|")[0]
        if "|done" in ShardIterator:
            return {"Records": [], "NextShardIterator": None}  # a closed shard ends
        records = [{"eventID": seq, "eventName": "INSERT", "dynamodb": {
            "SequenceNumber": seq, "Keys": {}}} for seq in self.records.get(shard, [])]
        closed = shard != "child"
        return {"Records": records, "NextShardIterator": f"{shard}|done" if closed else None}


def test_the_reader_pages_describe_stream_and_reads_a_parent_before_its_child() -> None:
    shards = [{"ShardId": "child", "ParentShardId": "parent"}, {"ShardId": "parent"}]
    client = FakeStreams(shards, {"parent": ["1", "2"], "child": ["3"]}, page_size=1)
    reader = StreamReader(client, "arn:stream")

    first = [record["dynamodb"]["SequenceNumber"] for record in reader.read()]
    second = [record["dynamodb"]["SequenceNumber"] for record in reader.read()]

    assert [call.get("ExclusiveStartShardId") for call in client.describe_calls[:2]] == [
        None, "child"]  # the second page starts after the first page's last shard
    assert first == ["1", "2"]  # the child waits until its parent is read to the end
    assert second == ["3"]


# -- 10. a browser on a Mac or any Linux ------------------------------------------

def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_playwrights_own_chromium_is_found_where_a_user_installed_it(tmp_path: Path) -> None:
    own = _executable(tmp_path / ".cache/ms-playwright/chromium-1187/chrome-linux/chrome")
    system = _executable(tmp_path / "bin" / "chromium")

    found = find_browser({"PATH": str(system.parent)}, home=tmp_path, system="Linux")

    assert found == own


def test_an_installed_chrome_is_found_on_the_path_or_in_applications(tmp_path: Path) -> None:
    chrome = _executable(tmp_path / "bin" / "google-chrome")
    assert find_browser({"PATH": str(chrome.parent)}, home=tmp_path, system="Linux") == chrome

    mac = _executable(tmp_path / "Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
    assert find_browser({"PATH": ""}, home=tmp_path, system="Darwin") == mac
    assert find_browser({"PATH": ""}, home=tmp_path / "nobody", system="Darwin") is None \
        or Path("/Applications").exists()


def test_chrome_path_wins_and_a_wrong_one_is_named(tmp_path: Path) -> None:
    chosen = _executable(tmp_path / "my-chrome")
    assert find_browser({"CHROME_PATH": str(chosen)}, home=tmp_path, system="Linux") == chosen

    with pytest.raises(NoBrowser, match="CHROME_PATH=.*is not an executable file"):
        find_browser({"CHROME_PATH": str(tmp_path / "missing")}, home=tmp_path)


def test_apt_get_is_only_for_debian_and_ubuntu(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    for text, debian in (('ID=debian\n', True), ('ID=ubuntu\nID_LIKE=debian\n', True),
                         ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', True),
                         ('ID=fedora\n', False), ('ID=arch\n', False)):
        release.write_text(text)
        assert debian_like(release) is debian
    assert debian_like(tmp_path / "absent") is False  # a Mac has no /etc/os-release


# -- 7. one line per batch, and a warning when the stream lags ------------------------

def test_each_batch_reports_its_records_outcome_and_duration() -> None:
    batches: list[Batch] = []
    parked: list[Parked] = []
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "2"}]}, RuntimeError("boom"),
                    None, RuntimeError("boom"), RuntimeError("boom")])

    def handler(records: list[dict[str, Any]]) -> Any:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    dispatcher = BatchDispatcher("process_stream", handler, parked.append, batch_size=10,
                                 max_attempts=2, retry_delay=0.0, on_batch=batches.append)
    dispatcher.offer([{"dynamodb": {"SequenceNumber": seq}} for seq in ("1", "2", "3")])
    for _ in range(5):
        dispatcher.step()

    assert [(b.records, b.outcome.split(" (")[0]) for b in batches] == [
        (3, "failed at 2"), (2, "failed"), (1, "ok"), (1, "failed at 3"),
        (1, "parked 3 after 2 attempts")]
    assert "bisect to 1" in batches[1].outcome
    assert all(b.handler == "process_stream" and b.milliseconds >= 0 for b in batches)
    assert [p.record["dynamodb"]["SequenceNumber"] for p in parked] == ["3"]


def test_a_runner_behind_by_more_than_five_seconds_warns_once_and_says_when_it_caught_up(
) -> None:
    warnings: list[str] = []
    dispatcher = BatchDispatcher("process_stream", lambda records: None, lambda p: None,
                                 batch_size=10, window_seconds=3600)  # holds its records
    feed = Feed(StreamReader(FakeStreams([], {}), "arn:stream"), [dispatcher])
    runner = Runner([feed], 0.01, checkpoint=None, warn=warnings.append)
    runner.doing = "waiting"
    created = time.time() - 6
    dispatcher.offer([{"dynamodb": {"SequenceNumber": "1",
                                    "ApproximateCreationDateTime": created}}])

    runner.check_lag()
    runner.check_lag()

    assert len(warnings) == 1
    assert warnings[0].startswith("devstack streams: warning: stream lag 6.")
    assert "process_stream has 1 records waiting" in warnings[0]
    dispatcher._window = 0  # the batch is due now
    dispatcher.step()
    runner.check_lag()
    assert warnings[1].startswith("devstack streams: caught up")


def test_a_runner_stuck_inside_a_call_is_reported_by_its_watchdog() -> None:
    warnings: list[str] = []
    runner = Runner([], 0.01, warn=warnings.append)
    runner.doing = "reading the stream"
    runner.heartbeat = time.monotonic() - 7

    runner.check_lag()

    assert "stuck reading the stream for 7." in warnings[0]


def test_polling_backs_off_when_idle_and_is_fast_again_after_a_record() -> None:
    delivered: list[str] = []
    dispatcher = BatchDispatcher("h", lambda records: delivered.append("x"), lambda p: None,
                                 batch_size=10)
    reader = StreamReader(FakeStreams([{"ShardId": "s"}], {}), "arn:stream")
    runner = Runner([Feed(reader, [dispatcher])], 0.025, 0.5)
    intervals = []
    for _ in range(8):
        runner._last_read.clear()
        runner.run_once()
        intervals.append(runner.interval)

    assert intervals[0] == 0.05 and intervals[-1] == 0.5  # doubling, bounded
    dispatcher.offer([{"dynamodb": {"SequenceNumber": "9"}}])
    runner.run_once()
    assert runner.interval == 0.025 and delivered == ["x"]


# -- 6. the stream position survives a restarted runner -----------------------

def test_a_checkpoint_resumes_each_handler_after_its_last_record(tmp_path: Path) -> None:
    path = tmp_path / "position.json"
    saved = Checkpoint(path, "arn:1")
    saved.start = {"s": "10"}
    saved.advance("a", "s", "15")
    saved.save()

    again = Checkpoint(path, "arn:1")
    assert again.start_after(["a"]) == {"s": "15"}
    assert again.start_after(["a", "b"]) == {"s": "10"}  # b starts where the restore ended
    assert again.already_done("b", "s", "10") and not again.already_done("b", "s", "11")
    assert Checkpoint(path, "arn:other").start_after(["a"]) is None  # a re-created table


def test_a_child_is_restarted_at_most_three_times_a_minute(tmp_path: Path) -> None:
    started: list[str] = []

    class Recorded(Stack):
        def _start_streams(self) -> None:
            started.append("stream runner")

    stack = Recorded(8000, 8001, "local", tmp_path, output=Output(tmp_path / "log"))
    finished = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])  # nosec
    finished.wait()
    child = Child("stream runner", finished)
    stack.children.append(child)

    for second in range(3):
        stack.revive(child, now=100.0 + second)
    with pytest.raises(StackError, match="exited with code 3, 4 times in 60 s"):
        stack.revive(child, now=104.0)
    stack.revive(child, now=200.0)  # a minute later it may die again

    assert started == ["stream runner"] * 4
    log = (tmp_path / "log").read_text().splitlines()
    assert log[0] == "devstack: the stream runner exited with code 3; restarting it (1/3)"


def test_the_runner_refuses_a_table_that_is_not_the_local_one() -> None:
    aws = "https://streams.dynamodb.eu-west-1.amazonaws.com"

    refusal = remote_refusal("chalice-cart-dev", aws, tail_remote=False)

    assert refusal is not None and "refusing to tail table 'chalice-cart-dev'" in refusal
    assert "--tail-remote" in refusal
    assert remote_refusal("chalice-cart-dev", None, tail_remote=False) is not None
    assert remote_refusal("chalice-cart-dev", aws, tail_remote=True) is None
    assert remote_refusal("chalice-cart-local", "http://127.0.0.1:8001", False) is None
    assert is_local_endpoint("http://localhost:1") and not is_local_endpoint("https://10.0.0.1")


def test_the_stack_refuses_to_tail_a_real_table_unless_told_to(tmp_path: Path) -> None:
    stack = Stack(8000, 8001, "dev", tmp_path, use_moto=False, table="chalice-cart-dev")

    with pytest.raises(StackError, match="add --no-streams .* or --tail-remote"):
        stack.start()
