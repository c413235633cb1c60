"""The lock files `make install` installs from: complete, hashed, and in step with their inputs.

Each requirements-<name>.lock is `make lock`'s output for requirements-<name>.txt. A pin
changed in the .txt without `make lock` would install the old version silently (the
Makefile installs from the lock): these fail first, naming what to run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = sorted(ROOT.glob("requirements-*.lock"))
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def input_pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` in a requirements file, -r followed."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins.update(input_pins(path.parent / line[3:].strip()))
        elif match := _PIN.match(line):
            pins[canonical(match.group(1))] = match.group(3)
    return pins


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of each package a lock file pins."""
    packages: dict[str, tuple[str, int]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if match := _PIN.match(line):
            current = canonical(match.group(1))
            packages[current] = (match.group(3), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = packages[current]
            packages[current] = (version, hashes + 1)
    return packages


def test_every_venv_the_makefile_installs_has_a_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert {lock.name for lock in LOCKS} >= {"requirements-dev.lock",
                                            "requirements-checkov.lock",
                                            "requirements-tools.lock"}
    for lock in LOCKS:
        assert (ROOT / lock.name.replace(".lock", ".txt")).exists(), lock.name
        assert lock.name in makefile, f"{lock.name} is installed by no Makefile target"


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_a_lock_pins_every_package_with_hashes_and_matches_its_input(lock: Path) -> None:
    packages = locked(lock)
    assert packages, f"{lock.name} pins nothing"
    unhashed = sorted(name for name, (_, hashes) in packages.items() if hashes == 0)
    assert unhashed == [], f"{lock.name}: no hash for {unhashed}"
    stale = {name: (version, packages.get(name, ("missing", 0))[0])
             for name, version in input_pins(lock.with_suffix(".txt")).items()
             if packages.get(name, ("", 0))[0] != version}
    assert stale == {}, f"{lock.name} is behind its .txt (pin, lock): {stale}; run make lock"


def test_the_lambda_package_requirements_stay_plain_pins_for_chalice() -> None:
    # `chalice package` reads requirements.txt itself: top-level pins, no hashes.
    text = (ROOT / "requirements.txt").read_text()
    assert "--hash" not in text
    assert set(input_pins(ROOT / "requirements.txt")) <= set(
        locked(ROOT / "requirements-dev.lock"))
