"""A small HTTP/1.1 server on asyncio streams, enough for Toxiproxy's JSON API.

Supports keep-alive, ``Content-Length`` and chunked request bodies and
``Expect: 100-continue``. Each request is answered by one awaitable handler.
Limits: request line and header lines 64 KiB, 100 headers, 16 MiB bodies;
idle keep-alive connections are closed after 60 s (as Toxiproxy's IdleTimeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

LINE_LIMIT = 64 * 1024
MAX_HEADERS = 100
MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT = 60.0
READ_TIMEOUT = 15.0


@dataclass
class Request:
    """A parsed request: header names are lower-case; ``path`` is percent-decoded."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    """A response to send; ``body`` is omitted on the wire for 204."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.x; answered 400 and closed."""


async def _read_line(reader: asyncio.StreamReader, timeout: float) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise BadRequest("truncated line") from exc
        return b""
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("line too long") from exc


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await _read_line(reader, READ_TIMEOUT)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise BadRequest("bad chunk size") from exc
            if size == 0:
                while (await _read_line(reader, READ_TIMEOUT)).strip():
                    pass  # trailers are ignored
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise BadRequest("body too large")
            parts.append(await asyncio.wait_for(reader.readexactly(size), READ_TIMEOUT))
            await _read_line(reader, READ_TIMEOUT)
    length_text = headers.get("content-length", "0").strip() or "0"
    if not length_text.isdigit():
        raise BadRequest("bad content-length")
    length = int(length_text)
    if length > MAX_BODY:
        raise BadRequest("body too large")
    if length == 0:
        return b""
    return await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[Request, bool] | None:
    """Read one request; return it and whether to keep the connection, or None at EOF."""
    line = await _read_line(reader, IDLE_TIMEOUT)
    while line in (b"\r\n", b"\n"):
        line = await _read_line(reader, IDLE_TIMEOUT)
    if not line:
        return None
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        header_line = await _read_line(reader, READ_TIMEOUT)
        if not header_line:
            raise BadRequest("truncated headers")
        text = header_line.decode("latin-1").rstrip("\r\n")
        if not text:
            break
        name, sep, value = text.partition(":")
        if not sep:
            raise BadRequest("malformed header")
        headers[name.strip().lower()] = value.strip()
    else:
        raise BadRequest("too many headers")
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    path = unquote(urlsplit(target).path)
    return Request(method.upper(), path, headers, body), keep


def _encode(response: Response, keep: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {formatdate(usegmt=True)}"]
    if response.content_type is not None:
        lines.append(f"Content-Type: {response.content_type}")
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    body = b"" if response.status == HTTPStatus.NO_CONTENT else response.body
    if response.status != HTTPStatus.NO_CONTENT:
        lines.append(f"Content-Length: {len(body)}")
    if not keep:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _serve_connection(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                parsed = await _read_request(reader, writer)
            except (BadRequest, asyncio.IncompleteReadError) as exc:
                log.debug("bad request: %s", exc)
                writer.write(_encode(Response(400, b"400 Bad Request"), keep=False))
                await writer.drain()
                return
            if parsed is None:
                return
            request, keep = parsed
            try:
                response = await handler(request)
            except Exception:  # a handler bug must not kill the server
                log.exception("handler failed for %s %s", request.method, request.path)
                response = Response(500, b"internal error\n", "text/plain; charset=utf-8")
            writer.write(_encode(response, keep))
            await writer.drain()
            if not keep:
                return
    except (ConnectionError, TimeoutError, OSError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


class HttpServer:
    """A running API server; :meth:`close` ends it and every client connection."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._writers: set[asyncio.StreamWriter] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.server: asyncio.Server | None = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self._idle.clear()
        try:
            await _serve_connection(self._handler, reader, writer)
        except asyncio.CancelledError:
            # Returning (not re-raising) keeps asyncio's stream callback from
            # logging the cancellation of a connection task at shutdown.
            pass
        finally:
            self._writers.discard(writer)
            if not self._writers:
                self._idle.set()

    async def close(self) -> None:
        """Stop listening, drop client connections, wait (bounded) for their tasks."""
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), 5.0)


async def serve(host: str, port: int, handler: Handler) -> HttpServer:
    """Start serving ``handler`` on ``host:port``; return the running server."""
    http = HttpServer(handler)
    http.server = await asyncio.start_server(http._on_client, host, port, limit=LINE_LIMIT)
    return http
