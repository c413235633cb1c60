"""The running local stack, once per session: `live_stack` (see helpers.LiveStack).

Tests under tests/e2e/ are marked `e2e` and drive it over HTTP (requests) or
in a browser; `wait_until` in tests/e2e/helpers.py waits for the stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack import faults
from tests.e2e.helpers import LiveStack, start_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """`python -m devstack run` on free ports; stopped by SIGTERM at the end.

    Its moto server takes test faults (devstack/faults.py): `store_stall`.
    """
    with pytest.MonkeyPatch.context() as env:
        env.setenv(faults.ENV_FLAG, "1")
        # Catalog changes (make catalog) reach the shop page in 2 s, not 60.
        env.setenv("CATALOG_CACHE_SECONDS", "2")
        stack = start_stack(tmp_path_factory.mktemp("live-stack"))
    yield stack
    stack.stop()
