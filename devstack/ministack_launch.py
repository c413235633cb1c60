"""MiniStack, with its HTTP API honouring an integration's payload format 1.0.

Run by MiniStack's own interpreter in place of `python -m ministack`
(devstack/emulator.py). MiniStack 1.5.33's HTTP API sends every Lambda
integration a payload format 2.0 event, whatever `PayloadFormatVersion`
says, and reads the answer as 2.0 (no `multiValueHeaders`); Chalice's
handler needs 1.0 (docs/OPERATIONS.md, "Front door"). Here an integration
whose `payloadFormatVersion` is "1.0" gets the event an HTTP API sends
with 1.0 and its answer is read as 1.0, both as devstack/http_api_v1.py
builds them from AWS's documentation; MiniStack still selects the route,
extracts the path parameters and runs the function. Every other
integration goes to MiniStack's own code unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import runpy
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAYLOAD_FORMAT_VERSION = "1.0"


def _http_api_v1() -> Any:
    """devstack/http_api_v1.py by its path: nothing of this project joins sys.path."""
    spec = importlib.util.spec_from_file_location("http_api_v1", HERE / "http_api_v1.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE / 'http_api_v1.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def install() -> None:
    """Wrap MiniStack's Lambda proxy for HTTP APIs (ministack.services.apigateway)."""
    v1 = _http_api_v1()
    apigw = importlib.import_module("ministack.services.apigateway")
    lambda_svc = importlib.import_module("ministack.services.lambda_svc")
    original = apigw._invoke_lambda_proxy

    async def invoke(integration: dict[str, Any], api_id: str, stage: str, path: str,
                     method: str, headers: dict[str, str], body: bytes | None,
                     query_params: dict[str, list[str]] | None, route_key: str = "$default",
                     path_params: dict[str, str] | None = None, **kwargs: Any) -> Any:
        if str(integration.get("payloadFormatVersion")) != PAYLOAD_FORMAT_VERSION:
            return await original(integration, api_id, stage, path, method, headers, body,
                                  query_params, route_key, path_params, **kwargs)
        ref = apigw._extract_lambda_ref_from_integration_uri(
            integration.get("integrationUri", ""))
        func_data, func_config, func_name = lambda_svc._get_func_record_for_ref_in_scope(
            ref, account_id=kwargs.get("owner_account_id"), region=kwargs.get("owner_region"))
        if func_data is None or func_config is None:
            return 502, {"Content-Type": "application/json"}, (
                b'{"message":"Internal Server Error"}')
        query = [(name, value) for name, values in (query_params or {}).items()
                 for value in (values if isinstance(values, list) else [values])]
        event = v1.event(method, path, route_key, path_params, stage=stage,
                         headers=list(headers.items()), query=query, body=body or b"",
                         api_id=api_id)
        record = lambda_svc._execution_record_for_config(func_data, func_config)
        result = await apigw.run_reentrant(
            lambda_svc._execute_function_with_config_scope, record, event,
            thread_name="ministack-apigw-invoke")
        answer, _ = lambda_svc.lambda_execute_result_to_api_proxy_response(result)
        status, lines, raw = v1.response(answer)
        sent: dict[str, Any] = {}
        for name, value in lines:
            if name in sent:  # MiniStack sends a list as one line per value
                before = sent[name]
                sent[name] = [*before, value] if isinstance(before, list) else [before, value]
            else:
                sent[name] = value
        if not any(k.lower() == "content-type" for k in sent):
            sent["Content-Type"] = "application/json"
        return status, sent, raw

    setattr(apigw, "_invoke_lambda_proxy", invoke)  # noqa: B010 (a module of MiniStack's venv)


if __name__ == "__main__":
    # This file's directory is no place to import MiniStack's modules from.
    if sys.path and Path(sys.path[0]).resolve() == HERE:
        del sys.path[0]
    install()
    runpy.run_module("ministack", run_name="__main__", alter_sys=True)
