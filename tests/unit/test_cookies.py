"""The cart cookie: signed, expiring, and never someone else's cart."""

from __future__ import annotations

from chalicelib import cookies
from chalicelib.domain import CART_TTL_SECONDS

SECRET = b"unit-test-secret-0123456789"
CART = "0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000


def test_a_signed_cookie_reads_back_as_its_cart():
    value = cookies.sign(SECRET, CART, NOW)
    assert cookies.verify(SECRET, value, NOW + 10) == CART
    header = f"other=1; {cookies.COOKIE_NAME}={value}; theme=dark"
    assert cookies.cart_id_from_header(SECRET, header, NOW) == CART


def test_a_tampered_cookie_reads_as_no_cart():
    value = cookies.sign(SECRET, CART, NOW)
    other = "f" + CART[1:]
    assert cookies.verify(SECRET, value.replace(CART, other), NOW) is None
    assert cookies.verify(SECRET, value[:-2] + "AA", NOW) is None
    assert cookies.verify(SECRET, value.replace(str(NOW), str(NOW + 1)), NOW) is None


def test_a_cookie_signed_with_another_secret_reads_as_no_cart():
    value = cookies.sign(b"someone-elses-secret-123456", CART, NOW)
    assert cookies.verify(SECRET, value, NOW) is None


def test_an_expired_or_future_cookie_reads_as_no_cart():
    value = cookies.sign(SECRET, CART, NOW)
    assert cookies.verify(SECRET, value, NOW + CART_TTL_SECONDS) is None
    assert cookies.verify(SECRET, value, NOW - 3600) is None


def test_garbage_reads_as_no_cart():
    for header in (None, "", "cart=", "cart=a.b.c", "cart=....", '=";;";', "cart=\x00"):
        assert cookies.cart_id_from_header(SECRET, header, NOW) is None


def test_set_cookie_is_httponly_lax_and_secure_over_https():
    plain = cookies.set_cookie_header(SECRET, CART, NOW, secure=False)
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    assert f"Max-Age={CART_TTL_SECONDS}" in plain
    assert cookies.set_cookie_header(SECRET, CART, NOW, secure=True).endswith("; Secure")


def test_new_cart_ids_are_random_and_well_formed():
    ids = {cookies.new_cart_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(cookies.verify(SECRET, cookies.sign(SECRET, i, NOW), NOW) == i for i in ids)


def test_an_issued_time_in_other_digits_reads_as_no_cart():
    # '²'.isdigit() is true and int('²') raises; int('١٢٣') reads 123.
    for issued in ("²", "١٢٣", "１２３", "1²", "+1", " 1", "1_0", "9" * 13):
        value = f"{CART}.{issued}.{cookies.sign(SECRET, CART, NOW).rsplit('.', 1)[1]}"
        assert cookies.verify(SECRET, value, NOW) is None, issued
        assert cookies.cart_id_from_header(SECRET, f"cart={value}", NOW) is None


def test_a_cart_id_with_a_trailing_newline_reads_as_no_cart():
    value = cookies.sign(SECRET, CART + "\n", NOW)
    assert cookies.verify(SECRET, value, NOW) is None


def test_a_signature_with_non_ascii_characters_reads_as_no_cart():
    # hmac.compare_digest raises TypeError on non-ASCII str: found by the fuzz test.
    for signature in ("é" * 43, "A" * 42 + "é", "", "A" * 44):
        assert cookies.verify(SECRET, f"{CART}.{NOW}.{signature}", NOW) is None
