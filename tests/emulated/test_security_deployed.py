"""Issue 19's HTTP-level attacks against the deployed package on MiniStack.

tests/e2e/test_attacks_live.py's own tests, imported: `live_stack` is the
emulated stack here, so the cross-origin guard sees API Gateway's event (its
Host and X-Forwarded-Proto), and sign-out revokes with the emulator's Cognito.
"""

from __future__ import annotations

from tests.e2e.test_attacks_live import (  # noqa: F401 (collected here, run on the emulator)
    test_copies_of_the_cookies_are_refused_after_sign_out,
    test_head_a_duplicated_key_and_a_unicode_digit_cookie_answer_4xx_or_2xx_never_5xx,
    test_writes_from_another_origin_are_403_and_the_shops_own_still_work,
)
