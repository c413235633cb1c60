"""`python -m bench`: run every benchmark, print each table, write docs/PERFORMANCE.md.

A section that fails prints its error and the others still run; the exit code is
non-zero only when a section crashed (a missed target is a result, not a crash).

    .venv/bin/python -m bench                 # everything (what `make bench` runs)
    .venv/bin/python -m bench --quick         # fewer rounds, shorter load: a smoke run
    .venv/bin/python -m bench --only cold_start,package --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import subprocess  # nosec B404: read-only git and nothing else
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Section, Table

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "PERFORMANCE.md"
CHANGES = Path(__file__).resolve().parent / "CHANGES.md"

TITLES = {
    "capacity": ("1. DynamoDB requests and request units per operation",
                 "every cart write one write request (one TransactWriteItems with its "
                 "request record); one request per cart operation where the design allows "
                 "(add reads its line before and after, set after, display the prices, "
                 "checkout its lines: see notes); a stream batch touching K carts writes "
                 "at most K summaries"),
    "overhead": ("2. Handler overhead",
                 "p50 and p95 of each API operation through chalice.test.Client ≤ 1.2x the "
                 "bare DynamoDB call(s) it makes (same moto backend, same run)"),
    "cold_start": ("3. Cold start",
                   "`python -c \"import app\"` ≤ 1.15x `python -c \"import boto3, "
                   "chalice.app\"` (median of ≥ 10 interleaved runs each)"),
    "package": ("4. Deployment package", "zip ≤ 1 MB"),
    "stream_lag": ("5. Stream lag on the local stack",
                   "write acknowledged → cart-status shows it: p95 ≤ 300 ms"),
    "load": ("6. Local server under load",
             "8 concurrent clients for 30 s: requests/s, p50/p99, 0 errors; the raw moto "
             "calls beside it"),
    "scale": ("7. Scale model",
              "at 10,000 requests/s of the declared mix: no partition key above 50% of "
              "either per-partition limit, ≤ 2 readers per stream shard, the first "
              "limit reached is an account quota (issue 11); the table within 75% of its "
              "default 40,000 RCU/WCU per second; every cache and call the code makes is "
              "in the model, which a run of the mix confirms within 10% (issue 20)"),
    "flash_sale": ("11. Flash sale model",
                   "one product at 5,000 checkouts/s: no stock item above 50% of 1,000 WCU/s "
                   "(issue 17)"),
    "cost": ("8. Cost model", "dollars per 1M API requests of the declared mix, everything "
             "it pulls in, on both front doors (REST, HTTP API) and beside the anchor peer; "
             "at most $4.00 on the cheaper door (issue 20)"),
    "hot_line": ("10. Keyed against unkeyed adds on one hot line",
                 "16 threads on one line: keyed ≤ 3x unkeyed, same run (issue 16)"),
    "emulated": ("9. The deployed package on MiniStack beside make run",
                 "cold first response of the deployed API function, and warm p50/p95 per "
                 "route over HTTP against `make run`'s, side by side (`make emulate`)"),
    "endurance": ("12. A laptop stack that lasts a day",
                  "after 10,000 mixed shopper operations on `make run` (keyed adds and "
                  "checkouts included): the local store's RSS < 400 MB, and the last 1,000 "
                  "operations' p95 ≤ 1.5x the first 1,000's (issue 18)"),
}
# The package is built before the cold start, which imports the app from it too;
# the cost model prices the scale model's footprint.
ORDER = ("capacity", "overhead", "package", "cold_start", "stream_lag", "load", "scale",
         "cost", "emulated", "hot_line", "flash_sale", "endurance")


class Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.overhead_rounds = 20 if quick else 120
        self.cold_runs = 10 if quick else 15
        self.lag_writes = 20 if quick else 200
        self.load_seconds = 6.0 if quick else 30.0
        self.emulated_rounds = 10 if quick else 60
        self.emulated_cold_runs = 3 if quick else 7
        self.endurance_operations = 2_000 if quick else 10_000


class SharedStack:
    """One `python -m devstack run` for sections 5, 6 and 9, started on first use."""

    def __init__(self) -> None:
        self._stack: Any = None
        self._error: BaseException | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def get(self) -> Any:
        if self._error is not None:
            raise RuntimeError("the local stack did not start") from self._error
        if self._stack is None:
            from devstack.background import start_stack

            self._tmp = tempfile.TemporaryDirectory(prefix="bench-stack-")
            try:
                self._stack = start_stack(Path(self._tmp.name))
            except BaseException as exc:
                self._error = exc
                raise
        return self._stack

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def _stream_lag(section: Section, stack: SharedStack, writes: int) -> None:
    from bench import stream_lag  # the local-runtime helper's measurement

    live = stack.get()
    stream_lag.measure(live, writes=10)  # warm up: first imports, first clients
    lag = stream_lag.measure(live, writes=writes)
    table = Table(["writes", "p50 ms", "p95 ms", "max ms", "mean ms",
                   "add-to-cart request p50 ms", "p95 ≤ 300 ms"])
    table.add(lag.writes, f"{lag.p50 * 1000:.1f}", f"{lag.p95 * 1000:.1f}",
              f"{lag.max * 1000:.1f}", f"{lag.mean * 1000:.1f}",
              f"{lag.write_p50 * 1000:.1f}", "holds" if lag.holds() else "misses")
    section.tables.append(table)
    section.data.update(p50=lag.p50, p95=lag.p95)
    section.result = (f"p95 {lag.p95 * 1000:.0f} ms, p50 {lag.p50 * 1000:.0f} ms over "
                      f"{lag.writes} writes: {'holds' if lag.holds() else 'misses'}.")
    section.notes.append(
        "Measured by bench/stream_lag.py (the local-runtime helper's): one add-to-cart at "
        "a time over HTTP, then cart-status polled until the summary the stream runner "
        "wrote shows it. The lag therefore includes at least one cart-status round trip.")


def _runners(settings: Settings, stack: SharedStack) -> dict[str, Callable[..., None]]:
    def capacity(section: Section, results: dict[str, Section]) -> None:
        from bench import capacity as mod

        mod.run(section, results)

    def overhead(section: Section, results: dict[str, Section]) -> None:
        from bench import overhead as mod

        mod.run(section, results, rounds=settings.overhead_rounds)

    def cold_start(section: Section, results: dict[str, Section]) -> None:
        from bench import cold_start as mod

        mod.run(section, results, runs=settings.cold_runs)

    def package(section: Section, results: dict[str, Section]) -> None:
        from bench import package_size as mod

        mod.run(section, results)

    def lag(section: Section, results: dict[str, Section]) -> None:
        _stream_lag(section, stack, settings.lag_writes)

    def load(section: Section, results: dict[str, Section]) -> None:
        from bench import load as mod

        mod.run(section, results, stack=stack.get(), duration=settings.load_seconds)

    def scale(section: Section, results: dict[str, Section]) -> None:
        from bench import scale as mod

        mod.run(section, results, quick=settings.quick)

    def cost(section: Section, results: dict[str, Section]) -> None:
        from bench import cost as mod

        mod.run(section, results)

    def hot_line(section: Section, results: dict[str, Section]) -> None:
        from bench import hot_line as mod

        mod.run(section, results, adds=40 if settings.quick else 80)

    def flash_sale(section: Section, results: dict[str, Section]) -> None:
        from bench import flash_sale as mod

        mod.run(section, results)

    def emulated(section: Section, results: dict[str, Section]) -> None:
        from bench import emulated as mod

        mod.run(section, results, stack=stack.get(), rounds=settings.emulated_rounds,
                cold_runs=settings.emulated_cold_runs)

    def endurance(section: Section, results: dict[str, Section]) -> None:
        from bench import endurance as mod
        from bench.load import local_stack

        with local_stack() as fresh:  # its own stack: the RSS it starts from is its own
            mod.run(section, results, stack=fresh, operations=settings.endurance_operations)

    return {"capacity": capacity, "overhead": overhead, "cold_start": cold_start,
            "package": package, "stream_lag": lag, "load": load, "scale": scale,
            "cost": cost, "emulated": emulated, "hot_line": hot_line,
            "flash_sale": flash_sale, "endurance": endurance}


def _git(*args: str) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True,  # nosec
                                text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip()


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 2**20:.0f} GiB RAM"
    load = ""
    with contextlib.suppress(OSError, AttributeError):
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain") else ""
    return [
        f"- Machine: {platform.system()} {platform.release()}, {cpu}, "
        f"{os.cpu_count()} CPUs{memory}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- Load average when the run started (1/5/15 min): {load or 'n/a'}",
        f"- Code: commit {commit or 'unknown'}{dirty}",
    ]


def render(sections: list[Section], started: datetime.datetime, seconds: float,
           command: str, header: list[str]) -> str:
    summary = Table(["section", "target", "result"])
    for section in sections:
        outcome = f"crashed: {section.error.strip().splitlines()[-1]}" if section.error \
            else section.result
        summary.add(section.title, section.target, outcome.replace("|", "/"))
    parts = [
        "# Performance",
        "",
        "Written by `make bench` (bench/); do not edit by hand — edit bench/CHANGES.md "
        "for the closing notes.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; the run took {seconds:.0f} s",
        f"- Command: `{command}`",
        *header,
        "",
        "Every figure below is a ratio measured side by side in this one run, with the raw "
        "figures beside it. None is an assertion in the test suite: a loaded machine moves "
        "them; compare within a run, not across runs.",
        "",
        summary.markdown(),
        "",
    ]
    parts += [section.markdown() + "\n" for section in sections]
    if CHANGES.exists():
        parts.append(CHANGES.read_text())
    return "\n".join(parts).rstrip() + "\n"


def _number(title: str) -> int | None:
    """A section's number ("10. Keyed ..." -> 10); None for anything else."""
    match = re.match(r"\s*(\d+)\.", title)
    return int(match.group(1)) if match else None


def _place(numbers: list[int | None], title: str, default: int) -> int:
    """Where a new section goes: before the first numbered one with a higher number."""
    mine = _number(title)
    if mine is None:
        return default
    return next((i for i, n in enumerate(numbers) if n is not None and n > mine), default)


def _without_rerun(line: str, names: list[str]) -> str | None:
    """A header's "- Sections 7, 8 re-run ..." line with these sections taken out (they
    are re-run now); None when none is left."""
    match = re.match(r"- Sections (.+?) re-run", line)
    if not match:
        return line
    left = [n for n in match.group(1).split(", ") if n not in names]
    if not left:
        return None
    return f"- Sections {', '.join(left)} re-run" + line[match.end():]


def update(existing: str, sections: list[Section], started: datetime.datetime,
           command: str, header: list[str]) -> str:
    """The report with only these sections replaced (and their summary rows): a partial
    run (`--only`) keeps every other section as the last full run wrote it. A section
    the report lacks goes in its place by number (10 after 9, before 12)."""
    blocks = existing.split("\n## ")
    titles = {section.title: section for section in sections}
    kept = [blocks[0]]
    for block in blocks[1:]:
        title = block.split("\n", 1)[0].strip()
        if title in titles:
            kept.append(titles.pop(title).markdown().removeprefix("## ") + "\n")
        elif not block.startswith("Closing notes"):
            kept.append(block)
    for section in titles.values():
        numbers = [None, *(_number(block) for block in kept[1:])]
        kept.insert(_place(numbers, section.title, len(kept)),
                    section.markdown().removeprefix("## ") + "\n")
    head = kept[0].splitlines()
    rows = {section.title: section for section in sections}

    def row(section: Section) -> str:
        outcome = f"crashed: {section.error.strip().splitlines()[-1]}" if section.error \
            else section.result
        return f"| {section.title} | {section.target} | {outcome.replace('|', '/')} |"

    last_row = None
    for index, line in enumerate(head):
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|"):
            last_row = index
        if line.startswith("|") and cells and cells[0] in rows:
            head[index] = row(rows.pop(cells[0]))
    if last_row is not None:  # a section the last full run did not have, in its place
        for section in rows.values():
            numbers = [_number(line.strip("|").split("|")[0]) if line.startswith("|")
                       else None for line in head[:last_row + 1]]
            head.insert(_place(numbers, section.title, last_row + 1), row(section))
            last_row += 1
    numbers_run = sorted((s.title.split(".")[0] for s in sections),
                         key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0))
    names = ", ".join(numbers_run)
    head = [kept_line for kept_line in (_without_rerun(line, numbers_run) for line in head)
            if kept_line is not None]
    at = next((i for i, line in enumerate(head) if line.startswith("- Code:")), len(head) - 1)
    head.insert(at + 1, f"- Sections {names} re-run on {started:%Y-%m-%d %H:%M} UTC with "
                        f"`{command}`; " + header[-1].removeprefix("- ").lower())
    body = "\n## ".join(["\n".join(head), *kept[1:]]).rstrip() + "\n"
    if CHANGES.exists():
        body += "\n" + CHANGES.read_text()
    return body.rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter load")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(ORDER)}")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--command", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chosen = ORDER if not args.only else tuple(k for k in ORDER if k in args.only.split(","))
    unknown = [name for name in (args.only or "").split(",") if name and name not in TITLES]
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")

    started = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    header = machine()
    settings = Settings(args.quick)
    stack = SharedStack()
    runners = _runners(settings, stack)
    results: dict[str, Section] = {}
    try:
        for key in chosen:
            title, target = TITLES[key]
            section = Section(key, title, target)
            print(f"\n==> {title}", flush=True)
            begin = time.perf_counter()
            try:
                runners[key](section, results)
            except Exception:  # one section's crash must not stop the others
                section.error = traceback.format_exc()
            section.seconds = time.perf_counter() - begin
            results[key] = section
            print(section.markdown(), flush=True)
    finally:
        stack.stop()
    seconds = time.perf_counter() - clock
    command = args.command or "python -m bench " + " ".join(argv or sys.argv[1:])
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        # By section number (TITLES lists some out of it: 11 before 8).
        in_order = sorted((results[key] for key in TITLES if key in results),
                          key=lambda s: (_number(s.title) is None, _number(s.title) or 0))
        if args.only and args.output.exists():
            args.output.write_text(update(args.output.read_text(), in_order, started,
                                          command.strip(), header))
        else:
            args.output.write_text(render(in_order, started, seconds,
                                          command.strip(), header))
        print(f"\n==> wrote {args.output} ({seconds:.0f} s)", flush=True)
    crashed = [s.key for s in results.values() if s.error]
    if crashed:
        print(f"==> crashed: {', '.join(crashed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
