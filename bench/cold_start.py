"""(3) Cold start: `import app` against `import boto3, chalice.app`, fresh interpreters."""

from __future__ import annotations

import os
import re
import subprocess  # nosec B404: runs this venv's own interpreter
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.common import Section, Table, median, ms, percentile, verdict
from deploy.build import MAX_ZIP_BYTES

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


def _once(code: str, cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, env=_env(),  # nosec B603
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def from_zip(zip_path: Path, runs: int) -> dict[str, list[float]]:
    """Both imports from the extracted deployment zip, compiled from source every time.

    That is a cold Lambda: /var/task holds the zip's sources (no bytecode, and no
    place to write any); boto3 comes from the runtime (here: this venv, precompiled).
    """
    samples: dict[str, list[float]] = {"app": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="bench-zip-") as tmp:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tmp)  # nosec B202: our own build output
        for name in samples:
            _once(COMMANDS[name], Path(tmp))
        for _ in range(runs):
            for name in samples:
                samples[name].append(_once(COMMANDS[name], Path(tmp)))
    return samples


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


def run(section: Section, results: dict[str, Section] | None = None,
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
    package = (results or {}).get("package")
    zip_path = package.data.get("zip_path") if package else None
    if zip_path:
        zipped = from_zip(Path(zip_path), runs)
        z_app, z_base = median(zipped["app"]), median(zipped["baseline"])
        for name in ("app", "baseline"):
            values = zipped[name]
            table.add(f"`python -c \"{COMMANDS[name]}\"` in the extracted deployment zip, "
                      "no bytecode", ms(median(values)), ms(percentile(values, 90)),
                      ms(median(values) - bare))
        section.data.update(zip_ratio=z_app / z_base)
        section.notes.append(
            f"From the deployment zip, compiled from source as in a cold Lambda: "
            f"{z_app / z_base:.2f}x ({ms(z_app)} ms against {ms(z_base)} ms; chalice.app "
            "is the zip's copy in both).")
    else:
        section.notes.append("The deployment zip was not built in this run (section 4), so "
                             "the import from it was not measured.")
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
    metrics_libraries(section, runs)
    section.notes.append(
        f"`import app` does not load: {', '.join(f'`{n}`' for n in lazy) or 'nothing of note'}"
        " (built on first use by chalicelib.runtime / chalicelib.web); it does load: "
        f"{', '.join(f'`{n}`' for n in eager) or 'none of them'}. botocore.exceptions "
        "comes in through chalicelib.repository.")


# The metrics choice (docs/OPERATIONS.md, "Metrics"): this project's EMF writer
# against Powertools for AWS Lambda, each imported after `import boto3, chalice.app`.
METRICS_IMPORTS = {
    "chalicelib.metrics (this project's EMF writer)": "import chalicelib.metrics",
    "Powertools Metrics": "from aws_lambda_powertools import Metrics",
    "Powertools Logger + Metrics": "from aws_lambda_powertools import Logger, Metrics",
}


def _zipped_size(package: str) -> int | None:
    """What the installed package would add to the deployment zip, compressed."""
    import importlib.util
    import io

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(root.parent).as_posix())
    return len(buffer.getvalue())


def _import_seconds(statement: str) -> float:
    """What `statement` alone adds, by -X importtime: the cumulative time of the
    top-level imports it starts after the baseline's. Process start-up and the
    baseline's own imports, the noisy part of a wall-clock run, are left out."""
    code = f"{COMMANDS['baseline']}; import sys; sys.stderr.write('--mark--\\n'); {statement}"
    result = subprocess.run(  # nosec B603
        [sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=_env(),
        check=True, capture_output=True, text=True)
    after = result.stderr.split("--mark--", 1)[1]
    total = 0
    for line in after.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match and len(match.group(2)) == 1:  # top level: one space
            total += int(match.group(1))
    return total / 1_000_000


def metrics_libraries(section: Section, runs: int) -> None:
    """Import cost of each way to write metrics, interleaved, plus its package weight."""
    try:
        for statement in METRICS_IMPORTS.values():
            _import_seconds(statement)
    except subprocess.CalledProcessError:
        section.notes.append("aws-lambda-powertools is not installed (requirements-dev.txt), "
                             "so the metrics libraries were not compared.")
        return
    samples: dict[str, list[float]] = {name: [] for name in METRICS_IMPORTS}
    for _ in range(runs):
        for name, statement in METRICS_IMPORTS.items():
            samples[name].append(_import_seconds(statement))
    table = Table(["metrics library, imported after `import boto3, chalice.app`",
                   "import ms median", "p90 ms", "ratio to chalicelib.metrics"])
    own = median(samples["chalicelib.metrics (this project's EMF writer)"])
    for name, values in samples.items():
        table.add(name, ms(median(values)), ms(percentile(values, 90)),
                  f"{median(values) / own:.1f}x" if own else "n/a")
    section.tables.append(table)
    powertools = median(samples["Powertools Metrics"])
    both = median(samples["Powertools Logger + Metrics"])
    weight = _zipped_size("aws_lambda_powertools")
    section.data.update(metrics_own_ms=own * 1000, metrics_powertools_ms=powertools * 1000,
                        powertools_zip_bytes=weight)
    section.notes.append(
        f"Metrics: importing this project's EMF writer takes {ms(own)} ms; Powertools "
        f"Metrics {ms(powertools)} ms, Logger + Metrics {ms(both)} ms (-X importtime, "
        f"cumulative, median of {runs} interleaved runs, cached bytecode: a cold Lambda "
        "compiles Powertools' sources from the zip, and pays more)."
        + (f" Powertools would add {weight:,} bytes to the deployment zip (its limit: "
           f"{MAX_ZIP_BYTES:,}, deploy/build.py)." if weight else ""))
