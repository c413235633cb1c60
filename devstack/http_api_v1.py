"""An API Gateway HTTP API's side of payload format 1.0, for a stand-in.

What an HTTP API does between a browser and a Lambda integration with
`PayloadFormatVersion: 1.0`, as AWS documents it ("Create AWS Lambda proxy
integrations for HTTP APIs", "Routing API requests") and as events captured
from real HTTP APIs show it: `select_route` picks the route (a full match
for method and path, explicit method before ANY, more literal segments
first; then a greedy {proxy+}), `event` builds the request event (the stage
leads `path` and `requestContext.path`; `resource` and
`requestContext.resourcePath` are the route's path; `resourceId` its key),
and `response` turns the function's answer into the HTTP response, with
`headers` and `multiValueHeaders` merged (two Set-Cookie lines stay two).

Used by the handler-level tests (tests/functional/test_http_api.py) and by the
emulator, whose HTTP API sends payload format 2.0 whatever the integration says.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

ANY = "ANY"
# Content types an HTTP API passes as text; any other body arrives base64-encoded.
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
              "application/x-www-form-urlencoded", "+json", "+xml")


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _full_match(route: str, path: str) -> dict[str, str] | None:
    wanted, given = _segments(route), _segments(path)
    if len(wanted) != len(given):
        return None
    params: dict[str, str] = {}
    for part, value in zip(wanted, given, strict=True):
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = value
        elif part != value:
            return None
    return params


def _greedy_match(route: str, path: str) -> dict[str, str] | None:
    wanted, given = _segments(route), _segments(path)
    if not wanted or not (wanted[-1].startswith("{") and wanted[-1].endswith("+}")):
        return None
    head = wanted[:-1]
    if len(given) <= len(head):
        return None  # a greedy variable takes one segment at least: never the root
    params = _full_match("/".join(head), "/".join(given[: len(head)]))
    if params is None:
        return None
    params[wanted[-1][1:-2]] = "/".join(given[len(head):])
    return params


def select_route(route_keys: Iterable[str], method: str, path: str
                 ) -> tuple[str, dict[str, str]] | None:
    """(route key, path parameters) of the route an HTTP API picks; None: its 404."""
    full: list[tuple[tuple[int, int], str, dict[str, str]]] = []
    greedy: list[tuple[tuple[int, int], str, dict[str, str]]] = []
    for key in route_keys:
        route_method, _, route_path = key.partition(" ")
        if route_method not in (ANY, method):
            continue
        explicit = int(route_method != ANY)
        params = _full_match(route_path, path)
        if params is not None:
            literals = sum(1 for s in _segments(route_path) if not s.startswith("{"))
            full.append(((literals, explicit), key, params))
            continue
        params = _greedy_match(route_path, path)
        if params is not None:
            greedy.append(((len(_segments(route_path)), explicit), key, params))
    for found in (full, greedy):
        if found:
            _, key, params = max(found, key=lambda f: f[0])
            return key, params
    return None


def _is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(marker in lowered for marker in TEXT_TYPES)


def event(
    method: str,
    path: str,
    route_key: str,
    path_parameters: Mapping[str, str] | None,
    *,
    stage: str,
    headers: Iterable[tuple[str, str]] = (),
    query: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    api_id: str = "httpapi01",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The payload format 1.0 event an HTTP API sends for one request.

    `path` is the request's path after the stage; `headers` and `query` are
    (name, value) pairs as the client sent them, repeats included.
    """
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    content_type = next((v[-1] for k, v in multi_headers.items()
                         if k.lower() == "content-type"), "")
    encoded = bool(body) and not _is_text(content_type)
    now = time.time()
    full_path = f"/{stage}{path}" if stage != "$default" else path
    route_path = route_key.partition(" ")[2]
    user_agent = next((v[-1] for k, v in multi_headers.items() if k.lower() == "user-agent"), "")
    request_id = uuid.uuid4().hex[:16] + "="
    return {
        "version": "1.0",
        "resource": route_path,
        "path": full_path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": ({n: v[-1] for n, v in multi_query.items()}
                                  if multi_query else None),
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": api_id,
            "domainName": f"{api_id}.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": api_id,
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": None, "accountId": None, "caller": None, "cognitoAmr": None,
                "cognitoAuthenticationProvider": None, "cognitoAuthenticationType": None,
                "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
                "principalOrgId": None, "sourceIp": source_ip, "user": None,
                "userAgent": user_agent, "userArn": None,
            },
            "path": full_path,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": route_key,
            "resourcePath": route_path,
            "stage": stage,
        },
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "body": (base64.b64encode(body).decode() if encoded else body.decode("utf-8"))
        if body else None,
        "isBase64Encoded": encoded,
    }


def response(result: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, header lines, body) an HTTP API sends for a format 1.0 answer.

    `headers` and `multiValueHeaders` are merged; where both name a header,
    the multi-value list wins (AWS: "only the values from multiValueHeaders").
    """
    multi = {k: list(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    lowered = {k.lower() for k in multi}
    lines = [(k, str(v)) for k, v in (result.get("headers") or {}).items()
             if k.lower() not in lowered]
    lines += [(k, str(v)) for k, values in multi.items() for v in values]
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result.get("statusCode", 200)), lines, raw
