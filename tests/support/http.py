"""Plain HTTP/1.1 requests to a member's client URL (etcd's JSON gateway, /health, /metrics),
one connection per request so nothing is shared between tests."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from tests.support.timeouts import REQUEST

JSON_HEADERS = {"Content-Type": "application/json"}


def request(
    url: str, method: str, path: str, body: str | None = None,
    headers: dict[str, str] | None = None, timeout: float = REQUEST,
) -> tuple[int, dict[str, str], bytes]:
    """`method path` on the server at `url` with exactly `headers`: (status, lower-cased
    response headers, raw body)."""
    p = urlsplit(url)
    conn = http.client.HTTPConnection(p.hostname or "127.0.0.1", p.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post_json(url: str, path: str, doc: dict[str, Any], token: str = "") -> tuple[int, Any]:
    """POST `doc` as JSON (with `token` as the Authorization header if given): (status,
    decoded JSON answer)."""
    headers = {**JSON_HEADERS, **({"Authorization": token} if token else {})}
    status, _, body = request(url, "POST", path, json.dumps(doc), headers)
    return status, json.loads(body)
