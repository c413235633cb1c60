"""The local stack's end-to-end HTTP tests, run against the deployed package.

Each test here is tests/e2e's own, imported: `live_stack` is the emulated
stack (tests/emulated/conftest.py), so the same assertions hold for the
package on MiniStack's Lambda, API Gateway, stream mapping and Cognito.
"""

from __future__ import annotations

from tests.e2e.test_accounts_live import (  # noqa: F401 (collected here, run on the emulator)
    test_a_cart_follows_the_shopper_from_one_browser_to_another,
    test_a_forged_session_cookie_is_signed_out_not_an_error,
    test_wrong_password_unconfirmed_and_duplicate_over_http,
)
from tests.e2e.test_local_stack import (  # noqa: F401
    test_a_checked_out_order_becomes_confirmed,
    test_cart_status_reflects_an_add_within_two_seconds,
)
