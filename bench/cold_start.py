"""(3) Cold start: `import app` against `import boto3, chalice.app`, fresh interpreters."""

from __future__ import annotations

import os
import re
import subprocess  # nosec B404: runs this venv's own interpreter
import sys
import time
from pathlib import Path

from bench.common import Section, Table, median, ms, percentile, verdict

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
LIMIT = 1.15
COMMANDS = {
    "app": "import app",
    "baseline": "import boto3, chalice.app",
    "interpreter": "pass",
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never write .pyc into the tree
    return env


def _once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(),  # nosec B603
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def own_imports(limit: int = 8) -> tuple[list[tuple[str, int]], set[str]]:
    """Modules `import app` loads that `import boto3, chalice.app` does not (by self
    time), and every module `import app` loads."""
    def importtime(code: str) -> dict[str, tuple[int, int]]:
        result = subprocess.run(  # nosec B603
            [sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=_env(),
            check=True, capture_output=True, text=True)
        times: dict[str, tuple[int, int]] = {}
        for line in result.stderr.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
            if match:
                times[match.group(4)] = (int(match.group(1)), int(match.group(2)))
        return times

    app_times, base_times = importtime(COMMANDS["app"]), importtime(COMMANDS["baseline"])
    extra = [(name, own) for name, (own, _) in app_times.items() if name not in base_times]
    return sorted(extra, key=lambda pair: -pair[1])[:limit], set(app_times)


def run(section: Section, _results: dict[str, Section] | None = None,
        runs: int = RUNS) -> None:
    for code in COMMANDS.values():  # warm the page cache and .pyc files once
        _once(code)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved, so drift hits every command alike
        for name, code in COMMANDS.items():
            samples[name].append(_once(code))
    app, base, bare = (median(samples[n]) for n in ("app", "baseline", "interpreter"))
    table = Table(["command", "median ms", "p90 ms", "minus interpreter start ms"])
    for name, code in COMMANDS.items():
        values = samples[name]
        table.add(f"`python -c \"{code}\"`", ms(median(values)), ms(percentile(values, 90)),
                  ms(median(values) - bare) if name != "interpreter" else "-")
    section.tables.append(table)
    imports = Table(["module only `import app` loads", "self time µs"])
    extra, loaded = own_imports()
    for name, micros in extra:
        imports.add(f"`{name}`", micros)
    section.tables.append(imports)
    value = app / base
    section.data.update(app=app, baseline=base, interpreter=bare, ratio=value)
    section.result = (f"{value:.2f}x of the baseline ({ms(app)} ms against {ms(base)} ms, "
                      f"median of {runs} interleaved runs each): {verdict(value, LIMIT)}.")
    lazy = [name for name in ("boto3", "jinja2", "botocore.session") if name not in loaded]
    eager = [name for name in ("boto3", "jinja2", "botocore.session") if name in loaded]
    section.notes.append(
        "The ratio is of whole process wall times (what a cold Lambda pays for its import "
        "phase); the last column subtracts a bare interpreter start.")
    section.notes.append(
        f"`import app` does not load: {', '.join(f'`{n}`' for n in lazy) or 'nothing of note'}"
        " (built on first use by chalicelib.runtime / chalicelib.web); it does load: "
        f"{', '.join(f'`{n}`' for n in eager) or 'none of them'}. botocore.exceptions "
        "comes in through chalicelib.repository.")
