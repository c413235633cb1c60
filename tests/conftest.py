"""Settings every test shares: no real AWS, ever."""

from __future__ import annotations

import os

from tests.factories import COOKIE_SECRET, TABLE_NAME

for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
              "CART_COOKIE_SECRET_PARAM"):
    os.environ.pop(_name, None)
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "TABLE_NAME": TABLE_NAME,
    "CART_COOKIE_SECRET": COOKIE_SECRET,
})
