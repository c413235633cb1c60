"""Links are built from the request: '' under chalice local, '/api' deployed."""

from __future__ import annotations

from chalicelib.presenters import base_path


def test_chalice_local_serves_at_the_root():
    context = {"path": "/api/orders/abc", "resourcePath": "/api/orders/{order_id}"}
    assert base_path(context, {"order_id": "abc"}) == ""


def test_api_gateway_adds_the_stage_prefix():
    context = {"path": "/api/api/orders/abc", "resourcePath": "/api/orders/{order_id}"}
    assert base_path(context, {"order_id": "abc"}) == "/api"
    assert base_path({"path": "/api/", "resourcePath": "/"}, None) == "/api"


def test_a_missing_context_means_the_root():
    assert base_path({}, None) == ""


def test_the_stage_root_without_a_trailing_slash_keeps_its_prefix():
    assert base_path({"path": "/api", "resourcePath": "/"}, None) == "/api"
    assert base_path({"path": "/", "resourcePath": "/"}, None) == ""
