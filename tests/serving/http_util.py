"""A tiny urllib helper for the REST tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def call(url: str, body=None, *, method: str | None = None, raw: bytes | None = None,
         timeout: float = 10.0):
    """Returns (status, parsed JSON or text) for a request to ``url``."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload, ctype = response.status, response.read(), response.headers.get(
                "Content-Type", "")
    except urllib.error.HTTPError as e:
        status, payload, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    if "json" in ctype:
        return status, json.loads(payload)
    return status, payload.decode()
