"""Accounts without IO: the merge plan, the password policy, token checks, Cognito's answers.

Tokens are signed here with a key of the test's own, published as the
"pool's" JWKS through the verifier's fetch; Cognito's answers come from
botocore's Stubber on a real cognito-idp client.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import jwt
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib import accounts, cognito, sessions, tokens, user_pool
from chalicelib.accounts import Move, account_cart_id, plan_merge
from chalicelib.domain import CartLine, StoreUnavailable

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
CLIENT = "client-id"
NOW = 1_800_000_000


def line(product_id: str, quantity: int) -> CartLine:
    return CartLine(product_id, product_id.title(), 100, quantity, "2027-01-01T00:00:00.000Z")


# -- the merge plan ------------------------------------------------------------------

def test_quantities_add_and_a_line_over_99_reports_its_excess() -> None:
    plan = plan_merge([line("kettle", 50), line("tote", 2)], [line("kettle", 60)])
    assert plan.moved == (Move("kettle", 50, 60, 99, 11), Move("tote", 2, 0, 2, 0))
    assert plan.excess == {"kettle": 11} and plan.left_behind == ()


def test_a_product_new_to_a_full_account_cart_stays_behind() -> None:
    plan = plan_merge([line("a", 1), line("b", 1), line("c", 1)], [line("c", 1)], max_lines=2)
    assert [m.product_id for m in plan.moved] == ["a", "c"]
    assert plan.left_behind == ("b",)


def test_nothing_to_merge_moves_nothing() -> None:
    assert plan_merge([], [line("kettle", 1)]).moved == ()


# -- input and the password policy -------------------------------------------------------

@pytest.mark.parametrize(("password", "problem"), [
    ("Abcdefg1", None),
    ("Abcdef1", "the password needs at least 8 characters"),
    ("abcdefg1", "the password needs an uppercase letter"),
    ("ABCDEFG1", "the password needs a lowercase letter"),
    ("Abcdefgh", "the password needs a digit"),
])
def test_password_problems_name_the_missing_rule(password: str, problem: str | None) -> None:
    assert accounts.password_problem(password) == problem


@pytest.mark.parametrize("value", ["", "a", "a@b", "a b@c.de", "@c.de", 5, None,
                                   "x" * 250 + "@c.de"])
def test_what_is_not_an_email_is_refused(value: Any) -> None:
    with pytest.raises(accounts.InvalidInput):
        accounts.email(value)


def test_an_email_has_one_spelling() -> None:
    assert accounts.email(" Ada@Example.COM ") == "ada@example.com"


# -- token verification ---------------------------------------------------------------------

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(*keys: tuple[str, Any]) -> dict[str, Any]:
    published = []
    for kid, key in keys:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        published.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
    return {"keys": published}


def token(key: Any = KEY, kid: str = "k1", **overrides: Any) -> str:
    claims = {"iss": ISSUER, "aud": CLIENT, "token_use": "id", "sub": "sub-1",
              "email": "Ada@example.com", "iat": NOW - 60, "exp": NOW + 3600, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key,
                      algorithm="RS256", headers={"kid": kid})


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Fetch:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return self.document


def verifier(fetch: Fetch, clock: Clock | None = None) -> tokens.TokenVerifier:
    return tokens.TokenVerifier(ISSUER, CLIENT, fetch, clock or Clock())


def test_a_valid_id_token_names_its_subject_and_email_and_the_keys_are_fetched_once() -> None:
    fetch = Fetch(jwks(("k1", KEY)))
    check = verifier(fetch)
    assert check.verify(token()) == accounts.Identity("sub-1", "ada@example.com")
    assert check.verify(token(sub="sub-2")).subject == "sub-2"
    assert fetch.calls == 1


@pytest.mark.parametrize("bad", [
    token(OTHER_KEY),                                     # forged
    token(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"),
    token(aud="another-client"),
    token(token_use="access"),
    token(email=None),
    token(exp=None),
    token(kid="unknown"),
    "not-a-token",
    jwt.encode({"iss": ISSUER, "aud": CLIENT}, "k" * 32, algorithm="HS256"),
])
def test_anything_but_this_pools_id_token_for_this_client_is_invalid(bad: str) -> None:
    with pytest.raises(tokens.InvalidToken) as raised:
        verifier(Fetch(jwks(("k1", KEY)))).verify(bad)
    assert not isinstance(raised.value, tokens.ExpiredToken)


def test_an_expired_token_is_told_apart_with_its_identity() -> None:
    clock = Clock(NOW + 3600 + tokens.LEEWAY_SECONDS)
    with pytest.raises(tokens.ExpiredToken) as raised:
        verifier(Fetch(jwks(("k1", KEY))), clock).verify(token())
    assert raised.value.identity.subject == "sub-1"
    clock.now -= 1
    assert verifier(Fetch(jwks(("k1", KEY))), clock).verify(token()).subject == "sub-1"


def test_an_unknown_key_id_refetches_the_keys_at_most_every_five_minutes() -> None:
    fetch = Fetch(jwks(("k1", KEY)))
    clock = Clock()
    check = verifier(fetch, clock)
    check.verify(token())
    fetch.document = jwks(("k1", KEY), ("k2", OTHER_KEY))  # Cognito rotated its keys
    with pytest.raises(tokens.InvalidToken):
        check.verify(token(OTHER_KEY, kid="k2"))  # too soon: not fetched again
    clock.now += tokens.REFETCH_SECONDS
    assert check.verify(token(OTHER_KEY, kid="k2", exp=NOW + 7200)).subject == "sub-1"
    assert fetch.calls == 2


def test_keys_that_cannot_be_fetched_are_a_503_not_a_sign_out() -> None:
    def unreachable() -> dict[str, Any]:
        raise OSError("connection refused")

    with pytest.raises(StoreUnavailable):
        tokens.TokenVerifier(ISSUER, CLIENT, unreachable, Clock()).verify(token())


def test_keys_are_fetched_only_over_https_or_from_a_loopback_stand_in() -> None:
    with pytest.raises(ValueError):
        tokens.http_jwks("http://cognito.example.com/pool/.well-known/jwks.json")
    assert tokens.jwks_url("us-east-1", "us-east-1_p") == (
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_p/.well-known/jwks.json")
    assert tokens.jwks_url("us-east-1", "us-east-1_p", "http://127.0.0.1:8001/") == (
        "http://127.0.0.1:8001/us-east-1_p/.well-known/jwks.json")


# -- Cognito's answers --------------------------------------------------------------------------

@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("cognito-idp", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")  # nosec B106
    with Stubber(client) as stubber:
        yield cognito.CognitoAccounts(client, CLIENT), stubber
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(("operation", "code", "message", "raised"), [
    ("sign_up", "UsernameExistsException", "exists", accounts.EmailTaken),
    ("sign_up", "InvalidPasswordException",
     "Password did not conform with policy: Password must have symbol characters",
     accounts.WeakPassword),
    ("sign_up", "TooManyRequestsException", "slow down", accounts.TooManyAttempts),
    ("confirm_sign_up", "CodeMismatchException", "Invalid code", accounts.WrongCode),
    ("confirm_sign_up", "ExpiredCodeException", "expired", accounts.WrongCode),
    ("initiate_auth", "NotAuthorizedException", "Incorrect username or password.",
     accounts.BadCredentials),
    ("initiate_auth", "NotAuthorizedException", "Password attempts exceeded",
     accounts.TooManyAttempts),
    ("initiate_auth", "UserNotConfirmedException", "not confirmed", accounts.NotConfirmed),
    ("initiate_auth", "InternalErrorException", "oops", StoreUnavailable),
])
def test_cognito_errors_become_the_shops_outcomes(
        stubbed: Any, operation: str, code: str, message: str, raised: type) -> None:
    adapter, stubber = stubbed
    status = 500 if code == "InternalErrorException" else 400
    stubber.add_client_error(operation, code, message, http_status_code=status)
    call = {"sign_up": lambda: adapter.sign_up("a@example.com", "Abcdefg1"),
            "confirm_sign_up": lambda: adapter.confirm("a@example.com", "123"),
            "initiate_auth": lambda: adapter.sign_in("a@example.com", "Abcdefg1")}[operation]
    with pytest.raises(raised) as error:
        call()
    if raised is accounts.WeakPassword:
        assert str(error.value) == "Password must have symbol characters"


def test_confirming_an_already_confirmed_account_is_fine(stubbed: Any) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error("confirm_sign_up", "NotAuthorizedException",
                             "User cannot be confirmed. Current status is CONFIRMED")
    adapter.confirm("a@example.com", "123")


def test_a_refused_refresh_token_means_signed_out(stubbed: Any) -> None:
    adapter, stubber = stubbed
    stubber.add_client_error("initiate_auth", "NotAuthorizedException", "revoked")
    assert adapter.refresh("r" * 40) is None


# -- cookies and the pool's definition ------------------------------------------------

def test_the_account_cart_is_derived_from_the_subject_alone() -> None:
    assert account_cart_id("abc") == account_cart_id("abc") != account_cart_id("abd")
    assert len(account_cart_id("abc")) == 32


def test_sessions_cookie_parsing_ignores_junk() -> None:
    header = 'other=1; session=bad value; session="abc.def.ghi-0123456789"; refresh=r' + "x" * 20
    id_tokens, refresh = sessions.tokens_from_header(header)
    assert id_tokens == ["abc.def.ghi-0123456789"] and refresh == "r" + "x" * 20


def test_domain_password_rules_match_the_pool_policy() -> None:
    policy = user_pool.USER_POOL_SPEC["Policies"]["PasswordPolicy"]
    assert {k: policy[k] for k in accounts.PASSWORD_POLICY} == accounts.PASSWORD_POLICY
