"""The shop in Chromium against the deployed package: tests/e2e's browser journeys, imported.

The browser opens the Shop URL `make emulate` prints: the API's own host name
under localhost, which Chromium resolves to this machine, with the stage as
the path's first segment as on AWS, so the pages' links (/api/...) are the
deployed ones. (The e2e 404 test is left out: it also calls the API through
Playwright's Node client, which does not resolve *.localhost; test_api_deployed
covers both 404s over HTTP.)
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.e2e.test_browser import (  # noqa: F401 (fixtures and tests, run on the emulator)
    browser_type_launch_args,
    shop,
    test_a_visitor_shops_checks_out_and_sees_the_order_confirmed,
    test_the_first_load_of_the_shop_is_small_and_same_origin,
    visitor,
)
from tests.e2e.test_browser_accounts import (  # noqa: F401
    test_the_cart_survives_sign_up_and_sign_in_and_the_order_follows_the_account,
)
from tests.emulated.conftest import EmulatedStack


@dataclass
class InTheBrowser:
    """The emulated stack as the browser tests address it: `url` is the Shop URL."""

    stack: EmulatedStack

    @property
    def url(self) -> str:
        return self.stack.shop_url

    def confirmation_code(self, address: str) -> str:
        return self.stack.confirmation_code(address)


@pytest.fixture
def live_stack(emulated_stack: EmulatedStack) -> InTheBrowser:
    return InTheBrowser(emulated_stack)
