"""A client of gofail's HTTP endpoint (etcd's GOFAIL_HTTP, petcd's PETCD_FAILPOINTS_HTTP).

Contract: `arm(addr, name, terms)` PUTs the terms (gofail answers 204), `disarm` DELETEs (204),
`listing` GETs ``/`` as ``{name: terms}`` (terms empty when disarmed), `count` GETs
``/<name>/count``. A refused or dropped connection raises OSError; any other status raises
`GofailError` with the endpoint's text. Every call is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import http.client

ENV = "PETCD_FAILPOINTS_HTTP"
"""petcd's variable for the endpoint's ``host:port`` (etcd's is GOFAIL_HTTP)."""
TIMEOUT = 5.0


class GofailError(RuntimeError):
    """The endpoint answered with an unexpected status."""


def _request(addr: str, method: str, path: str, body: str | None = None,
             timeout: float = TIMEOUT) -> tuple[int, str]:
    host, _, port = addr.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else body.encode())
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def _expect(got: tuple[int, str], status: int) -> str:
    if got[0] != status:
        raise GofailError(f"gofail: status {got[0]}: {got[1].strip()}")
    return got[1]


def arm(addr: str, name: str, terms: str, timeout: float = TIMEOUT) -> None:
    _expect(_request(addr, "PUT", f"/{name}", terms, timeout), 204)


def disarm(addr: str, name: str, timeout: float = TIMEOUT) -> None:
    _expect(_request(addr, "DELETE", f"/{name}", None, timeout), 204)


def listing(addr: str, timeout: float = TIMEOUT) -> dict[str, str]:
    text = _expect(_request(addr, "GET", "/", None, timeout), 200)
    return dict(line.partition("=")[::2] for line in text.splitlines() if line)


def count(addr: str, name: str, timeout: float = TIMEOUT) -> int:
    return int(_expect(_request(addr, "GET", f"/{name}/count", None, timeout), 200))


def request(addr: str, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    """The raw (status, text) of one request (for tests of the endpoint itself)."""
    return _request(addr, method, path, body)
