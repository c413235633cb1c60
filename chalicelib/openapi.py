"""The API's OpenAPI 3 document, kept as chalicelib/openapi.json so it deploys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).resolve().parent / "openapi.json"
_cache: dict[str, Any] = {}


def document(base: str) -> dict[str, Any]:
    """The document, with a server URL for the prefix this request came in under."""
    if "document" not in _cache:
        _cache["document"] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    # A shallow copy: only the top-level servers entry differs per request.
    return {**_cache["document"], "servers": [{"url": base or "/"}]}
