"""A small HTTP/1.1 server for the client port: request parsing, keep-alive, routing.

Contract: `serve_connection(router)(reader, writer)` reads requests one after another on a
connection (keep-alive unless the client asks to close or speaks HTTP/1.0 without keep-alive),
dispatches each to the router's handler for its exact path, and writes the `Response`. A body
given as an async iterator is sent with chunked transfer encoding (streams: snapshot, watch).
Malformed requests get 400 and the connection is closed; nothing a client sends can raise out
of here. Every response carries etcd's CORS headers, as etcd's client handler adds them.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from petcd import errors

MAX_HEADER_BYTES = 1 << 20
"""Go's http.DefaultMaxHeaderBytes (etcd's client server sets no other)."""
HEAD_LIMIT_BYTES = MAX_HEADER_BYTES + 4096
"""How much of a request's head (request line, headers, blank line) Go's server reads before
answering 431: MaxHeaderBytes plus net/http's 4096 bytes of slack. The number of headers is
not limited."""
CORS_HEADERS = (
    ("Access-Control-Allow-Headers", "accept, content-type, authorization"),
    ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
    ("Access-Control-Allow-Origin", "*"),
)
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

_REASONS = {status.value: status.phrase for status in HTTPStatus}


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.x request we can serve. `public` is the
    status text Go's server answers with before closing ("400 Bad Request", "400 Bad Request:
    missing required Host header", "431 Request Header Fields Too Large"), from petcd.errors.
    `reason` is internal: it is only logged, never sent, so its literals stay here."""

    def __init__(self, reason: str, public: str = errors.HTTP_BAD_REQUEST) -> None:
        super().__init__(reason)
        self.public = public


def _go_error_reply(public: str) -> bytes:
    """net/http's own answer to a request it cannot read (no CORS headers: no handler ran)."""
    return (f"HTTP/1.1 {public}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Connection: close\r\n\r\n{public}").encode("latin-1")


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_TOO_LARGE = errors.HTTP_HEADER_TOO_LARGE


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    version: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Response:
    status: int
    body: bytes | AsyncIterator[bytes] = b""
    content_type: str | None = TEXT
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]


def text_error(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Response:
    """Go's http.Error: the text plus a newline, nosniff, text/plain."""
    return Response(
        status, (text + "\n").encode(), TEXT,
        [("X-Content-Type-Options", "nosniff"), *(extra or [])],
    )


class Router:
    """Exact-path routes; unknown paths get a 404 like Go's ServeMux."""

    def __init__(self, max_body_bytes: int) -> None:
        self.routes: dict[str, Handler] = {}
        self.prefix_routes: list[tuple[str, Handler]] = []
        self.max_body_bytes = max_body_bytes

    def add(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def add_prefix(self, prefix: str, handler: Handler) -> None:
        """Serve every path under `prefix` not matched exactly (e.g. the gateway's 404s)."""
        self.prefix_routes.append((prefix, handler))

    async def dispatch(self, req: Request) -> Response:
        h = self.routes.get(req.path)
        if h is None:
            for prefix, ph in self.prefix_routes:
                if req.path.startswith(prefix):
                    h = ph
                    break
        if h is None:
            return text_error(404, errors.HTTP_NOT_FOUND)
        return await h(req)


async def _read_request(reader: asyncio.StreamReader, max_body: int) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("incomplete request") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request header too large", _TOO_LARGE) from None
    if len(head) > HEAD_LIMIT_BYTES:
        raise BadRequest("request header too large", _TOO_LARGE)
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        raise BadRequest("malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest("unsupported HTTP version")
    if not _TOKEN.fullmatch(method):
        raise BadRequest("invalid method")
    if not target or not (target[0] == "/" or target == "*" or _SCHEME.match(target)):
        raise BadRequest("invalid request URI")
    headers: dict[str, str] = {}
    hosts = 0
    for ln in lines[1:]:
        if not ln:
            continue
        name, sep, value = ln.partition(":")
        if not sep:
            raise BadRequest("malformed header line")
        key = name.strip().lower()
        hosts += key == "host"
        headers[key] = value.strip()
    if version != "HTTP/1.0":
        # net/http (Go 1.16, etcd 3.5.1's) insists on exactly one Host header from HTTP/1.1.
        if hosts == 0:
            raise BadRequest("no host", errors.HTTP_MISSING_HOST)
        if hosts > 1:
            raise BadRequest("many hosts", errors.HTTP_TOO_MANY_HOSTS)
    parts = urlsplit(target)
    req = Request(method, parts.path or "/", parse_qs(parts.query, keep_blank_values=True), version, headers)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        req.body = await _read_chunked(reader, max_body)
    elif "content-length" in headers:
        try:
            n = int(headers["content-length"])
        except ValueError:
            raise BadRequest("bad content-length") from None
        if n < 0 or n > max_body:
            raise BadRequest("request body too large")
        try:
            req.body = await reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise BadRequest("truncated body") from None
    return req


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    out = bytearray()
    try:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return bytes(out)
            if len(out) + size > max_body:
                raise BadRequest("request body too large")
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        raise BadRequest("malformed chunked body") from None


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _write(
    writer: asyncio.StreamWriter,
    resp: Response,
    keep_alive: bool,
    head_only: bool,
    reader: asyncio.StreamReader | None = None,
) -> None:
    headers = list(CORS_HEADERS)
    if resp.content_type:
        headers.append(("Content-Type", resp.content_type))
    headers += resp.headers
    headers.append(("Date", email.utils.formatdate(usegmt=True)))
    if not keep_alive:
        headers.append(("Connection", "close"))
    if isinstance(resp.body, bytes):
        headers.append(("Content-Length", str(len(resp.body))))
        writer.write(_head(resp.status, headers) + (b"" if head_only else resp.body))
        await writer.drain()
        return
    headers.append(("Transfer-Encoding", "chunked"))
    if keep_alive:
        # A stream ends the connection: nothing pipelined behind it can be lost that way.
        headers.append(("Connection", "close"))
    writer.write(_head(resp.status, headers))
    body = resp.body

    async def pump() -> None:
        async for chunk in body:
            if chunk:
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    if reader is None:
        await pump()
        return
    # A quiet stream (a watch with no events) must still end when its client goes away, or the
    # gRPC stream behind it would live until the next write fails.
    pumping = asyncio.ensure_future(pump())
    gone = asyncio.ensure_future(_until_eof(reader))
    try:
        await asyncio.wait({pumping, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not pumping.done():
            pumping.cancel()
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()
        await asyncio.gather(pumping, gone, return_exceptions=True)
    if pumping.done() and not pumping.cancelled() and pumping.exception() is not None:
        raise pumping.exception()  # type: ignore[misc]


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


def serve_connection(
    router: Router,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """The per-connection coroutine for `ClientMux` (or asyncio.start_server)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    req = await _read_request(reader, router.max_body_bytes)
                except BadRequest as exc:
                    writer.write(_go_error_reply(exc.public))
                    await writer.drain()
                    return
                if req is None:
                    return
                conn = req.headers.get("connection", "").lower()
                keep = conn != "close" and (req.version == "HTTP/1.1" or conn == "keep-alive")
                try:
                    resp = await router.dispatch(req)
                except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the port
                    resp = text_error(500, f"internal error: {exc!r}")
                await _write(writer, resp, keep, req.method == "HEAD", reader)
                if not keep or not isinstance(resp.body, bytes):
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return serve
