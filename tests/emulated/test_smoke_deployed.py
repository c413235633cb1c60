"""The smoke suite as `make smoke BASE_URL=<Shop URL>` runs it, against the deployed package."""

from __future__ import annotations

from tests.e2e.test_smoke import STEPS, smoke
from tests.emulated.conftest import EmulatedStack


def test_the_smoke_suite_passes_against_the_deployed_package(
        emulated_stack: EmulatedStack) -> None:
    result = smoke(emulated_stack.deployed.api)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in STEPS:
        assert f"ok    {step} " in result.stdout, (step, result.stdout)
