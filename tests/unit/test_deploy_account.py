"""Which endpoint the deploy talks to: AWS, or a stand-in such as moto."""

from __future__ import annotations

import boto3
import pytest

from deploy.account import Account


def account() -> Account:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    return Account(session, "eu-west-1", "123456789012")


def test_aws_endpoints_are_not_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)
    assert account().stand_in is None


def test_a_vpc_endpoint_of_aws_is_not_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    vpce = "https://vpce-0abc-xyz.cloudformation.eu-west-1.vpce.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", vpce)
    assert account().stand_in is None


def test_an_endpoint_url_outside_aws_is_a_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    assert account().stand_in == "http://127.0.0.1:5000"
