"""(4) Deployment package: the zip the deploy uploads, its size and its files."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404: runs this venv's own chalice
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

from bench.common import Section, Table, verdict

ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = ROOT / "build" / "bench"
LIMIT_BYTES = 1024 * 1024
STAGE = "dev"


def build_with_deploy() -> tuple[Path, str]:
    """The deploy helper's own builder (`make package`), into build/bench/."""
    from deploy.build import build
    from deploy.settings import DeployError, load_stage

    try:
        built = build(load_stage(STAGE), "us-east-1", build_root=BUILD_ROOT)
    except DeployError as exc:
        # The builder refuses a package over its limits; measure what it wrote anyway.
        zip_path = BUILD_ROOT / STAGE / "out" / "deployment.zip"
        if zip_path.exists():
            return zip_path, f"deploy.build refused the package: {exc}"
        raise
    return built.zip_path, "built by deploy.build.build (what `make package` runs)"


def build_with_chalice() -> tuple[Path, str]:
    """Fallback: `chalice package` on a copy, templates/ and static/ through vendor/."""
    out = BUILD_ROOT / "chalice-package"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("app.py", "requirements.txt"):
            shutil.copy2(ROOT / name, src / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("chalicelib", ".chalice"):
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        for name in ("templates", "static"):
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, src / "vendor" / name, ignore=ignore)
        if out.exists():
            shutil.rmtree(out)
        chalice = Path(sys.executable).parent / "chalice"
        subprocess.run([str(chalice), "package", "--stage", STAGE, str(out)],  # nosec B603
                       cwd=src, check=True, capture_output=True)
    return out / "deployment.zip", "built by `chalice package` (fallback)"


def run(section: Section, _results: dict[str, Section] | None = None) -> None:
    start = time.perf_counter()
    try:
        zip_path, how = build_with_deploy()
    except Exception as exc:  # the deploy builder is not there or broke: fall back
        section.notes.append(f"deploy.build failed ({type(exc).__name__}: {exc}); "
                             "fell back to `chalice package`.")
        zip_path, how = build_with_chalice()
    took = time.perf_counter() - start
    size = zip_path.stat().st_size
    by_top: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    with zipfile.ZipFile(zip_path) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
    for info in infos:
        top = info.filename.split("/", 1)[0]
        by_top[top][0] += 1
        by_top[top][1] += info.compress_size
        by_top[top][2] += info.file_size
    files = len(infos)
    uncompressed = sum(info.file_size for info in infos)
    summary = Table(["zip", "bytes", "MiB", "files", "uncompressed bytes", "≤ 1 MiB"])
    summary.add(f"`{zip_path.relative_to(ROOT)}`", f"{size:,}", f"{size / 2**20:.3f}", files,
                f"{uncompressed:,}", verdict(size, LIMIT_BYTES))
    parts = Table(["top-level entry", "files", "compressed bytes", "uncompressed bytes"])
    for top, (count, packed, raw) in sorted(by_top.items(), key=lambda kv: -kv[1][1]):
        parts.add(f"`{top}`", count, f"{packed:,}", f"{raw:,}")
    section.tables += [summary, parts]
    section.data.update(bytes=size, files=files, uncompressed=uncompressed,
                        zip_path=str(zip_path))
    section.result = (f"{size:,} bytes ({size / 2**20:.3f} MiB), {files} files: "
                      f"{verdict(size, LIMIT_BYTES)} ({how}; {took:.1f} s).")
    section.notes.append(
        "boto3/botocore are not packaged: the Lambda Python runtime provides them. The only "
        "third-party code shipped is requirements.txt (jinja2 and its markupsafe).")
