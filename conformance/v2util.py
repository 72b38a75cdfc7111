"""Helpers for the v2 HTTP API suites: requests as curl sends them, and body normalization
(indexes, expiration times and TTLs vary between runs and implementations)."""

from __future__ import annotations

import http.client
import json
import re
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

T = TypeVar("T")


class Reply:
    """One HTTP answer: status, lower-cased headers, raw body, body as JSON when it is."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def doc(self) -> Any:
        return json.loads(self.body)

    @property
    def etcd_index(self) -> int:
        return int(self.headers["x-etcd-index"])


def call(url: str, method: str, path: str, form: dict[str, str] | None = None,
         query: dict[str, str] | None = None, body: bytes | None = None,
         content_type: str | None = None, timeout: float = 15) -> Reply:
    """One request; `form` is sent urlencoded in the body as `curl -d` does."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    headers: dict[str, str] = {}
    if form is not None:
        body = urlencode(form).encode()
        content_type = "application/x-www-form-urlencoded"
    if content_type:
        headers["Content-Type"] = content_type
    target = path + ("?" + urlencode(query) if query else "")
    try:
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def norm(doc: Any) -> Any:
    """`doc` with index, time and TTL values replaced by placeholders."""
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            if k in ("modifiedIndex", "createdIndex", "index"):
                out[k] = "N"
            elif k == "expiration":
                out[k] = "T"
            elif k == "ttl":
                out[k] = "S"
            elif k == "key" and isinstance(v, str):
                out[k] = re.sub(r"/\d{20}$", "/QKEY", v)
            else:
                out[k] = norm(v)
        return out
    if isinstance(doc, list):
        return [norm(x) for x in doc]
    return doc
