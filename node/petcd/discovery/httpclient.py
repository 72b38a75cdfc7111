"""A minimal asyncio HTTP/1.1 client for the bootstrap-time v2 requests (discovery).

One request per connection (`Connection: close`); the body is read until the server closes it
(chunked transfer encoding is decoded). Any transport failure, timeout or malformed answer is
an `HttpError`, never anything else.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class HttpError(Exception):
    """The server could not be reached or answered with something that is not HTTP."""


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise HttpError("truncated chunked body")
        size = int(data[pos:eol].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += data[eol + 2: eol + 2 + size]
        pos = eol + 2 + size + 2


async def _exchange(method: str, url: str, body: str | None) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise HttpError(f"unsupported URL {url!r} (only http:// is supported)")
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
    try:
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        data = (body or "").encode()
        head = [f"{method} {target} HTTP/1.1", f"Host: {u.netloc}", "Connection: close",
                "User-Agent: petcd-discovery"]
        if body is not None:
            head += ["Content-Type: application/x-www-form-urlencoded",
                     f"Content-Length: {len(data)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        raw = await reader.read(MAX_RESPONSE_BYTES)
        while chunk := await reader.read(MAX_RESPONSE_BYTES):
            raw += chunk
    finally:
        writer.close()
    header_end = raw.find(b"\r\n\r\n")
    if header_end < 0:
        raise HttpError("malformed HTTP response")
    lines = raw[:header_end].decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        raise HttpError(f"malformed status line {lines[0]!r}") from None
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    payload = raw[header_end + 4:]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        try:
            payload = _dechunk(payload)
        except ValueError:
            raise HttpError("malformed chunked body") from None
    return status, headers, payload


async def request(method: str, url: str, body: str | None = None, timeout: float | None = 5.0
                  ) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one request; HttpError on any failure."""
    try:
        return await asyncio.wait_for(_exchange(method, url, body), timeout)
    except TimeoutError:
        raise HttpError(f"{method} {url}: timed out") from None
    except OSError as exc:
        raise HttpError(f"{method} {url}: {exc}") from None
