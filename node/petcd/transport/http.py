"""The HTTP/1.1 side of the peer listener, and a client for it.

Served (one request per connection, then close), as etcd's peer handler does:

* ``GET /members`` -- JSON array of members in etcd's shape
  (``{"id": <uint64>, "peerURLs": [...], "name": ..., "clientURLs": [...]}``, ``isLearner``
  only when true) with header ``X-Etcd-Cluster-Id: <hex>``; a member joining with
  ``--initial-cluster-state existing`` uses it to learn the cluster (works against real etcd);
* ``GET /version`` -- ``{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}``;
* ``GET /health`` -- ``{"health":"true","reason":""}`` (petcd addition; etcd's peer port 404s);
* anything else -- ``404 page not found``; a non-GET on a known path -- ``405``.

:func:`fetch_members` is the client: it asks each peer URL in turn and returns the first
answer as ``(cluster_id, members)``; ``https://`` URLs are asked over TLS with its ``ssl``
context (a default verifying one when None).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from petcd import errors
from petcd.ids import format_id, parse_id

__all__ = [
    "MemberInfo",
    "MembersError",
    "fetch_members",
    "handle_http",
]

#: A member as etcd's peer ``/members`` endpoint renders it.
MemberInfo = dict[str, Any]

MAX_HEADER = 16 * 1024
HEADER_TIMEOUT = 10.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class MembersError(Exception):
    """No peer URL answered ``GET /members`` usefully (etcd's wording)."""


def _response(
    status: int, body: bytes, content_type: str, extra: Mapping[str, str] | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", f"Content-Type: {content_type}"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    lines += [
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


def _text(status: int, text: str, extra: Mapping[str, str] | None = None) -> bytes:
    return _response(
        status,
        (text + "\n").encode(),
        "text/plain; charset=utf-8",
        {"X-Content-Type-Options": "nosniff", **(extra or {})},
    )


def _json_body(value: object) -> bytes:
    return (json.dumps(value, separators=(",", ":")) + "\n").encode()


def member_json(m: Mapping[str, Any]) -> MemberInfo:
    """Normalise a member mapping to etcd's field order and omissions."""
    out: MemberInfo = {
        "id": int(m["id"]),
        "peerURLs": list(m.get("peerURLs", [])),
    }
    if m.get("name"):
        out["name"] = m["name"]
    if m.get("clientURLs"):
        out["clientURLs"] = list(m["clientURLs"])
    if m.get("isLearner"):
        out["isLearner"] = True
    return out


def route(
    method: str,
    path: str,
    cluster_id: int,
    members: Callable[[], Iterable[Mapping[str, Any]]] | None,
    versions: Mapping[str, str],
) -> bytes:
    """The full HTTP response for one request."""
    path = path.split("?", 1)[0]
    known = ("/members", "/version", "/health")
    if path not in known:
        return _text(404, "404 page not found")
    if method not in ("GET", "HEAD"):
        return _text(405, "Method Not Allowed", {"Allow": "GET"})
    if path == "/members":
        ms = [member_json(m) for m in members()] if members is not None else []
        return _response(
            200,
            _json_body(ms),
            "application/json",
            {"X-Etcd-Cluster-Id": format_id(cluster_id)},
        )
    if path == "/version":
        # etcd writes this one without a trailing newline (its Content-Length is 44).
        body = json.dumps(dict(versions), separators=(",", ":")).encode()
        return _response(200, body, "application/json")
    return _response(200, _json_body({"health": "true", "reason": ""}), "application/json")


async def handle_http(
    first: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    cluster_id: int,
    members: Callable[[], Iterable[Mapping[str, Any]]] | None,
    versions: Mapping[str, str],
) -> None:
    """Serve one HTTP request whose first bytes (already read) are ``first``; then close."""
    buf = bytearray(first)
    try:
        async with asyncio.timeout(HEADER_TIMEOUT):
            while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
                if len(buf) > MAX_HEADER:
                    break
                chunk = await reader.read(4096)
                if not chunk:
                    break
                buf += chunk
    except TimeoutError:
        pass
    request_line = bytes(buf).split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        writer.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\n\r\n400 Bad Request"
        )
    else:
        writer.write(route(parts[0], parts[1], cluster_id, members, versions))
    try:
        await writer.drain()
    except (ConnectionError, OSError):
        pass


async def _http_get(
    url: str, path: str, timeout: float, tls: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Minimal HTTP/1.1 GET. Reads exactly Content-Length bytes (etcd's peer port answers
    ``Connection: close`` but may keep the socket open), else chunked, else to EOF."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None or parts.port is None:
        raise MembersError(f"unsupported peer URL {url!r} (only http(s)://host:port)")
    ctx = None
    if parts.scheme == "https":
        ctx = tls or ssl.create_default_context()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            parts.hostname, parts.port, ssl=ctx,
            server_hostname=parts.hostname if ctx is not None else None,
        )
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: application/json\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            status_parts = lines[0].split(" ", 2)
            if len(status_parts) < 2 or not status_parts[1].isdigit():
                raise MembersError(f"malformed HTTP status line from {url}: {lines[0]!r}")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(reader)
            else:
                body = await reader.read(-1)
        finally:
            writer.close()
    return int(status_parts[1]), headers, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def fetch_members(
    peer_urls: Sequence[str], timeout: float = 2.0, tls: ssl.SSLContext | None = None
) -> tuple[int, list[MemberInfo]]:
    """Ask each of ``peer_urls`` for ``GET /members``; first good answer wins.

    Returns (cluster ID, members as etcd renders them: ``id`` int, ``peerURLs``, ``name``,
    ``clientURLs``, ``isLearner``). Raises MembersError with etcd's message
    ("could not retrieve cluster information from the given URLs") if none answers.
    """
    for url in peer_urls:
        try:
            status, headers, body = await _http_get(url, "/members", timeout, tls)
            if status != 200:
                continue
            cid = parse_id(headers.get("x-etcd-cluster-id", ""))
            doc = json.loads(body)
        except (
            OSError,
            TimeoutError,
            ValueError,
            MembersError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            continue
        if not isinstance(doc, list) or not all(isinstance(m, dict) and "id" in m for m in doc):
            continue
        return cid, [member_json(m) for m in doc]
    raise MembersError(errors.JOIN_NO_CLUSTER_INFO)
