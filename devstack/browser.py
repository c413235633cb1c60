"""Which Chrome or Chromium the browser tests drive, on a Mac or any Linux.

`find_browser()` is the one lookup: `make browser` runs it (and installs
Debian's chromium only where apt-get is the system's own package manager),
and tests/e2e calls it too, so `pytest tests/e2e` alone finds the same
browser. Playwright never downloads one here.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess  # nosec B404: apt-get, on Debian/Ubuntu only
import sys
from collections.abc import Mapping
from pathlib import Path

ENV = "CHROME_PATH"  # an explicit choice wins
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
MAC_APPS = ("Google Chrome.app/Contents/MacOS/Google Chrome",
            "Chromium.app/Contents/MacOS/Chromium",
            "Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing")
PLAYWRIGHT_GLOBS = ("chromium-*/chrome-linux*/chrome",
                    "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium",
                    "chromium-*/chrome-mac*/Google Chrome for Testing.app/Contents/MacOS/"
                    "Google Chrome for Testing")


class NoBrowser(RuntimeError):
    """No Chrome or Chromium can be had: the one-line reason."""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def playwright_dirs(env: Mapping[str, str], home: Path, system: str) -> list[Path]:
    """Where `playwright install` puts its browsers on this system."""
    if env.get("PLAYWRIGHT_BROWSERS_PATH") not in (None, "", "0"):
        return [Path(env["PLAYWRIGHT_BROWSERS_PATH"])]
    if system == "Darwin":
        return [home / "Library" / "Caches" / "ms-playwright"]
    return [home / ".cache" / "ms-playwright"]


def candidates(env: Mapping[str, str] | None = None, home: Path | None = None,
               system: str | None = None) -> list[Path]:
    """Every place a browser may be, best first."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    system = platform.system() if system is None else system
    found: list[Path] = []
    for directory in playwright_dirs(env, home, system):
        for pattern in PLAYWRIGHT_GLOBS:
            found.extend(sorted(directory.glob(pattern), reverse=True))  # newest build first
    for name in NAMES:
        where = shutil.which(name, path=env.get("PATH"))
        if where:
            found.append(Path(where))
    if system == "Darwin":
        for applications in (Path("/Applications"), home / "Applications"):
            found.extend(applications / app for app in MAC_APPS)
    return found


def find_browser(env: Mapping[str, str] | None = None, home: Path | None = None,
                 system: str | None = None) -> Path | None:
    env = os.environ if env is None else env
    if env.get(ENV):
        chosen = Path(env[ENV])
        if not _executable(chosen):
            raise NoBrowser(f"{ENV}={chosen} is not an executable file")
        return chosen
    return next((path for path in candidates(env, home, system) if _executable(path)), None)


def debian_like(os_release: Path = Path("/etc/os-release")) -> bool:
    try:
        text = os_release.read_text()
    except OSError:
        return False
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    names = " ".join(fields.get(key, "").strip('"') for key in ("ID", "ID_LIKE")).split()
    return any(name in ("debian", "ubuntu") for name in names)


def install_with_apt() -> None:
    """Debian's chromium, never a downloaded build."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        subprocess.run([*sudo, *argv], check=True, env=env,  # nosec B603: fixed argv
                       stdout=subprocess.DEVNULL)


HOW_TO = ("install Google Chrome or Chromium (macOS: brew install --cask google-chrome; "
          "Linux: your package manager), or set CHROME_PATH=/path/to/chrome")


def ensure_browser(install: bool = True) -> Path:
    """The browser to test with; apt-get installs one on Debian/Ubuntu only."""
    found = find_browser()
    if found is not None:
        return found
    if install and debian_like() and shutil.which("apt-get"):
        try:
            install_with_apt()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise NoBrowser(f"no Chrome or Chromium found and apt-get could not install "
                            f"chromium ({exc}): {HOW_TO}") from exc
        found = find_browser()
        if found is not None:
            return found
    raise NoBrowser(f"no Chrome or Chromium found for the browser tests: {HOW_TO}")


def main(install: bool = True) -> int:
    try:
        print(ensure_browser(install))
    except NoBrowser as exc:
        print(f"make browser: {exc}", file=sys.stderr)
        return 1
    return 0
