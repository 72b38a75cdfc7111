"""Hostile bytes on the client port (issue 15, finding 5), where etcd's cmux and Go's net/http
answer before any handler runs:

- a connection whose first bytes are neither the HTTP/2 preface nor an HTTP/1.x request line
  is closed at once, without a reply (cmux matches no listener);
- a request head (request line, headers, blank line) of up to 1 MiB + 4096 bytes is served,
  however many headers it has; one byte more is 431;
- a request net/http cannot read gets its bare reply (no CORS headers) and the connection
  closes.

Measured against etcd 3.5.1 and 3.4.23 with raw sockets. etcd 3.4 (built with a newer Go)
answers a doubled Host header with a plain "400 Bad Request".
"""

from __future__ import annotations

import random
import selectors
import socket
import time
from urllib.parse import urlsplit

import pytest

from harness.cluster import Cluster

DEADLINE_S = 10.0
HEAD_LIMIT = (1 << 20) + 4096
GO_REPLY = ("HTTP/1.1 {0}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Connection: close\r\n\r\n{0}")


def _addr(cluster: Cluster) -> tuple[str, int]:
    parts = urlsplit(cluster.members[0].client_url)
    return parts.hostname or "127.0.0.1", parts.port or 2379


def _garbage(kind: str, rnd: random.Random) -> bytes:
    if kind == "random-line":
        # Random bytes, then a newline: cmux's HTTP/1 matcher reads the line and refuses it.
        body = bytes(rnd.randrange(256) for _ in range(64)).replace(b"\n", b"")
        return (b"\x00" if body[:1] == b"P" else b"") + body + b"\n"
    if kind == "long-line":
        return bytes(rnd.choice(b"abcdefgh") for _ in range(5000))  # no line in 4096 bytes
    if kind == "not-http1":
        return b"GARBAGE GARBAGE GARBAGE\r\n\r\n"
    return b"PRI * HTTP/2.0\r\nxx\r\n\r\n" * 2  # an HTTP/2 preface gone wrong


@pytest.mark.parametrize("kind", ["random-line", "long-line", "not-http1", "bad-preface"])
def test_garbage_connections_are_closed(cluster: Cluster, kind: str) -> None:
    rnd = random.Random(f"garbage-{kind}")
    sel = selectors.DefaultSelector()
    socks = []
    replies: dict[int, bytes] = {}
    try:
        for i in range(100):
            s = socket.create_connection(_addr(cluster), timeout=DEADLINE_S)
            s.sendall(_garbage(kind, rnd))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            socks.append(s)
        open_ = set(range(100))
        deadline = time.monotonic() + DEADLINE_S
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                conn = socks[key.data]
                try:
                    data = conn.recv(65536)
                except ConnectionResetError:
                    data = b""
                if data:
                    replies[key.data] = replies.get(key.data, b"") + data
                    continue
                sel.unregister(conn)
                open_.discard(key.data)
        assert not open_, f"{len(open_)} of 100 garbage connections still open after " \
                          f"{DEADLINE_S} s"
        assert replies == {}, "cmux closes without a reply"
    finally:
        for s in socks:
            s.close()
        sel.close()
    # The port still serves.
    status, _ = _exchange(cluster, b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200 ")


def _exchange(cluster: Cluster, raw: bytes) -> tuple[bytes, bytes]:
    """Send `raw`; return the status line and the whole answer (read to the end of the
    connection, or to the end of the first response's body if it has a length)."""
    with socket.create_connection(_addr(cluster), timeout=DEADLINE_S) as s:
        s.sendall(raw)
        data = b""
        while True:
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            data += d
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b"content-length:" in head.lower():
                n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= n:
                    break
    return data.split(b"\r\n", 1)[0], data


def _head_of(total: int) -> bytes:
    """A GET /version whose head is exactly `total` bytes (one big header)."""
    start = b"GET /version HTTP/1.1\r\nHost: x\r\nX-Big: "
    return start + b"a" * (total - len(start) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize("total", [1 << 20, HEAD_LIMIT])
def test_head_up_to_the_limit_is_served(cluster: Cluster, total: int) -> None:
    status, data = _exchange(cluster, _head_of(total))
    assert status == b"HTTP/1.1 200 OK" and b'"etcdserver"' in data


def test_head_over_the_limit_is_431(cluster: Cluster) -> None:
    _, data = _exchange(cluster, _head_of(HEAD_LIMIT + 1))
    assert data == GO_REPLY.format("431 Request Header Fields Too Large").encode()


def test_ten_thousand_headers(cluster: Cluster) -> None:
    raw = b"GET /version HTTP/1.1\r\nHost: x\r\n" + \
        b"".join(b"X-H%d: v\r\n" % i for i in range(10000)) + b"\r\n"
    status, _ = _exchange(cluster, raw)
    assert status == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize(("raw", "public", "public_34"), [
    (b"GET /version HTTP/1.1\r\nbadheader\r\n\r\n", "400 Bad Request", None),
    (b"GET /version HTTP/1.1\r\n\r\n", "400 Bad Request: missing required Host header", None),
    (b"GET /version HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
     "400 Bad Request: too many Host headers", "400 Bad Request"),
    (b"GET  HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", None),
    (b"G\x00T /version HTTP/1.1\r\nHost: x\r\n\r\n", "400 Bad Request", None),
    (b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
     "400 Bad Request", None),
], ids=["no-colon", "no-host", "two-hosts", "empty-uri", "bad-method", "bad-length"])
def test_unreadable_request_gets_net_http_reply(target: str, cluster: Cluster, raw: bytes,
                                                public: str, public_34: str | None) -> None:
    if target == "etcd-3.4" and public_34 is not None:
        public = public_34
    _, data = _exchange(cluster, raw)
    assert data == GO_REPLY.format(public).encode()
