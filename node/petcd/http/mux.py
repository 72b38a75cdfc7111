"""The client-port front: one listener serving gRPC (HTTP/2) and HTTP/1.1 on the same port.

etcd serves both on --listen-client-urls (cmux). grpc-python cannot share its socket, so the
gRPC server listens on a private address (an abstract unix socket) and this front owns the
public port. Per accepted connection it looks at the first bytes:

- the HTTP/2 client preface ("PRI * HTTP/2.0...", which every gRPC client sends first): the
  connection is spliced to the gRPC server byte for byte;
- a first line that is an HTTP/1.x request line: the connection is handed to the HTTP/1.1
  server (`http1.serve_connection`);
- anything else (garbage): the connection is closed at once, as etcd's cmux does (`sniff`).

TLS (https:// client URLs): `listen(..., tls=ctx)` terminates TLS here, so gRPC and HTTP/1.1
share one TLS port as in etcd; the private gRPC hop stays plaintext. `ClientMux.tls_check`
(if set) sees each handshaken connection's transport and returns an error string to refuse it
(etcd's post-handshake certificate checks); refused connections are closed at once.

The splice is two asyncio Protocols writing each other's transports: no per-byte Python work,
no copies beyond the kernel's, and back-pressure by pausing the reading side when the other
side's write buffer passes its high-water mark.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, cast

from petcd.http.http1 import HEAD_LIMIT_BYTES

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
"""The HTTP/2 client preface, which every gRPC client sends first."""
SNIFF_LINE_BYTES = 4096
"""How much of the first line cmux's HTTP1 matcher reads (its maxHTTPRead)."""
_GO_INT = re.compile(rb"[+-]?[0-9]+")


def _is_http1(proto: bytes) -> bool:
    """net/http's ParseHTTPVersion(proto) succeeds with major version 1."""
    if not proto.startswith(b"HTTP/") or b"." not in proto:
        return False
    major, _, minor = proto[5:].partition(b".")
    if not (_GO_INT.fullmatch(major) and _GO_INT.fullmatch(minor)):
        return False
    return int(major) == 1 and 0 <= int(minor) <= 1_000_000
WRITE_HIGH_WATER = 4 * 1024 * 1024
WRITE_LOW_WATER = 1024 * 1024

TlsCheck = Callable[[asyncio.BaseTransport], str]
"""Post-handshake check of a TLS connection: '' accepts it, anything else refuses it."""

HttpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
"""Serves one HTTP/1.x connection until it is closed."""


def sniff(data: bytes | bytearray) -> str:
    """What etcd's cmux makes of a connection that began with `data`: "grpc" (the full HTTP/2
    preface), "http" (a first line `METHOD URI HTTP/1.x`), "close" (neither: cmux matches no
    listener and closes the connection without a word) or "" (undecided: more bytes needed;
    like cmux, nothing times out the wait)."""
    n = min(len(data), len(PREFACE))
    if data[:n] == PREFACE[:n]:
        return "grpc" if n == len(PREFACE) else ""
    end = data.find(b"\n", 0, SNIFF_LINE_BYTES)
    if end < 0:
        return "close" if len(data) >= SNIFF_LINE_BYTES else ""
    line = bytes(data[:end]).removesuffix(b"\r")
    # net/http's parseRequestLine: the protocol is what follows the second space.
    s1 = line.find(b" ")
    s2 = line.find(b" ", s1 + 1) if s1 >= 0 else -1
    if s2 < 0:
        return "close"
    return "http" if _is_http1(line[s2 + 1:]) else "close"


class _Backend(asyncio.Protocol):
    """The gRPC server side of one spliced connection."""

    def __init__(self, front: _Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not an asyncio.Transport instance under uvloop (its own class).
        self.transport = t = cast(asyncio.Transport, transport)
        t.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    def data_received(self, data: bytes) -> None:
        ft = self.front.transport
        if ft is not None and not ft.is_closing():
            ft.write(data)

    def eof_received(self) -> bool:
        ft = self.front.transport
        if ft is not None and ft.can_write_eof() and not ft.is_closing():
            ft.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        ft = self.front.transport
        if ft is not None:
            ft.close()

    def pause_writing(self) -> None:
        if self.front.transport is not None:
            self.front.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.front.transport is not None:
            self.front.transport.resume_reading()


class _Front(asyncio.Protocol):
    """One accepted client connection, until its kind is known and then while spliced."""

    def __init__(self, mux: ClientMux) -> None:
        self.mux = mux
        self.transport: asyncio.Transport | None = None
        self.backend: _Backend | None = None
        self._pending = bytearray()
        self._mode = ""  # "", "grpc"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(asyncio.Transport, transport)  # see _Backend
        t.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        check = self.mux.tls_check
        tls = t.get_extra_info("ssl_object") is not None
        if check is not None and tls and check(t):
            t.abort()

    def data_received(self, data: bytes) -> None:
        if self._mode == "grpc":
            b = self.backend
            if b is not None and b.transport is not None:
                b.transport.write(data)
            else:
                self._pending += data
            return
        self._pending += data
        if self._mode == "http-only":
            self._to_http()
            return
        kind = sniff(self._pending)
        if kind == "":
            return  # not decided yet: wait for more bytes (as cmux's matchers do)
        assert self.transport is not None
        if kind == "grpc":
            self._mode = "grpc"
            self.transport.pause_reading()
            self.mux.spawn(self._connect_backend())
        elif kind == "http":
            self._to_http()
        else:
            self._pending.clear()
            self.transport.close()

    async def _connect_backend(self) -> None:
        try:
            _, backend = await self.mux.connect_grpc(lambda: _Backend(self))
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        self.backend = backend
        if self.transport is None or self.transport.is_closing():
            if backend.transport is not None:
                backend.transport.close()
            return
        if self._pending and backend.transport is not None:
            backend.transport.write(bytes(self._pending))
        self._pending.clear()
        self.transport.resume_reading()

    def _to_http(self) -> None:
        """Hand the connection to a StreamReader/StreamWriter pair and the HTTP/1.1 server."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.mux.line_limit, loop=loop)
        proto = asyncio.StreamReaderProtocol(reader, loop=loop)
        self.transport.set_protocol(proto)
        proto.connection_made(self.transport)
        writer = asyncio.StreamWriter(self.transport, proto, reader, loop)
        data = bytes(self._pending)
        self._pending.clear()
        self._mode = "http"
        proto.data_received(data)
        self.mux.spawn(self.mux.serve_http(reader, writer))

    def eof_received(self) -> bool:
        b = self.backend
        if b is not None and b.transport is not None and b.transport.can_write_eof():
            b.transport.write_eof()
            # A TLS transport cannot stay half-open (asyncio warns); it closes instead.
            return self.transport is not None and self.transport.can_write_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.close()
        self.transport = None

    def pause_writing(self) -> None:
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.pause_reading()

    def resume_writing(self) -> None:
        b = self.backend
        if b is not None and b.transport is not None:
            b.transport.resume_reading()


class ClientMux:
    """Listens on the client URLs; splices gRPC to `grpc_target`, serves HTTP/1.1 itself.

    `grpc_target` is "unix-abstract:NAME", "unix:PATH" or "HOST:PORT" (grpc's address syntax).
    """

    def __init__(self, grpc_target: str, serve_http: HttpHandler,
                 line_limit: int = HEAD_LIMIT_BYTES) -> None:
        self.grpc_target = grpc_target
        self.serve_http = serve_http
        self.line_limit = line_limit
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.tls_check: TlsCheck | None = None

    def spawn(self, coro: Awaitable[Any]) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def connect_grpc(
        self, factory: Callable[[], _Backend]
    ) -> tuple[asyncio.BaseTransport, _Backend]:
        loop = asyncio.get_running_loop()
        t = self.grpc_target
        if t.startswith("unix-abstract:"):
            # Connected here, not by path: uvloop (libuv) cannot dial an abstract address.
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, "\0" + t[len("unix-abstract:"):])
            except BaseException:
                sock.close()
                raise
            return await loop.create_unix_connection(factory, sock=sock)
        if t.startswith("unix:"):
            return await loop.create_unix_connection(factory, t[len("unix:"):])
        host, _, port = t.rpartition(":")
        return await loop.create_connection(factory, host.strip("[]"), int(port))

    async def listen(
        self, host: str, port: int, grpc_enabled: bool = True, tls: ssl.SSLContext | None = None
    ) -> None:
        """Accept on host:port ('' or 0.0.0.0: all interfaces). Without gRPC: HTTP only.
        With `tls`, connections are TLS (terminated here)."""
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.Protocol:
            f = _Front(self)
            if not grpc_enabled:
                f._mode = "http-only"
            return f

        srv = await loop.create_server(
            factory, host or None, port, reuse_address=True, backlog=1024, ssl=tls,
            family=socket.AF_INET6 if ":" in host else socket.AF_UNSPEC,
        )
        self._servers.append(srv)

    async def close(self) -> None:
        for s in self._servers:
            s.close()
        for t in list(self._tasks):
            t.cancel()
        for s in self._servers:
            try:
                await asyncio.wait_for(s.wait_closed(), 1.0)
            except TimeoutError:
                pass
        self._servers.clear()


def private_grpc_address(tag: str) -> str:
    """A per-process abstract unix socket name for the internal gRPC server."""
    return f"unix-abstract:petcd-grpc-{os.getpid()}-{tag}"
