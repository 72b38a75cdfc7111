"""The client-port front on a real petcd member: HTTP/1.1 and gRPC on one port, keep-alive and
pipelining, malformed requests, and --listen-metrics-urls (HTTP only)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from harness import ports
from harness.local import LocalCluster
from tests.support.timeouts import CLUSTER_UP


@pytest.fixture(scope="module")
def metrics_cluster() -> Iterator[tuple[LocalCluster, int]]:
    """3 members, m1 with --listen-metrics-urls: (cluster, metrics port)."""
    mport = ports.free_port()
    c = LocalCluster("petcd", size=3,
                     extra_args=(f"--listen-metrics-urls=http://127.0.0.1:{mport}",))
    # One extra flag for all members would collide on the port; give it to m1 only.
    c.extra_args = ()
    try:
        c.start_member(c.members[1])
        c.start_member(c.members[2])
        c.extra_args = (f"--listen-metrics-urls=http://127.0.0.1:{mport}",)
        c.start_member(c.members[0])
        c.wait_healthy(timeout=CLUSTER_UP)
        yield c, mport
    finally:
        c.stop()
        ports.release(mport)


def _addr(url: str) -> tuple[str, int]:
    p = urlsplit(url)
    assert p.hostname is not None and p.port is not None
    return p.hostname, p.port


def _recv_responses(sock: socket.socket, n: int) -> list[tuple[str, bytes]]:
    """Read `n` Content-Length-framed responses: (status line, body)."""
    buf = b""
    out: list[tuple[str, bytes]] = []
    sock.settimeout(15)
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        length = next(int(ln.split(":")[1]) for ln in lines
                      if ln.lower().startswith("content-length:"))
        while len(buf) < length:
            buf += sock.recv(65536)
        out.append((lines[0], buf[:length]))
        buf = buf[length:]
    return out


def test_keep_alive_and_pipelining(metrics_cluster: tuple[LocalCluster, int]) -> None:
    c, _ = metrics_cluster
    with socket.create_connection(_addr(c.members[0].client_url)) as s:
        body = b'{"key":"cGlwZQ==","value":"MQ=="}'
        s.sendall(
            b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%b"
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" % (len(body), body)
        )
        got = _recv_responses(s, 3)
    assert [g[0] for g in got] == ["HTTP/1.1 200 OK"] * 3
    assert json.loads(got[0][1]) == {"etcdserver": "3.5.1", "etcdcluster": "3.5.0"}
    assert "header" in json.loads(got[1][1])
    assert got[2][1] == b'{"health":"true","reason":""}'


def test_malformed_request_gets_400_and_port_keeps_serving(
    metrics_cluster: tuple[LocalCluster, int],
) -> None:
    c, _ = metrics_cluster
    addr = _addr(c.members[0].client_url)
    # Not an HTTP/1.x request line: closed without a reply, as etcd's cmux does.
    with socket.create_connection(addr) as s:
        s.settimeout(15)
        s.sendall(b"NONSENSE\r\n\r\n")
        assert s.recv(65536) == b""
    with socket.create_connection(addr) as s:
        s.sendall(b"POST /v3/kv/range HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{bad}")
        (status, body), = _recv_responses(s, 1)
    assert status == "HTTP/1.1 400 Bad Request" and json.loads(body)["code"] == 3
    # A client that sends part of the HTTP/2 preface and hangs up harms nothing.
    with socket.create_connection(addr) as s:
        s.sendall(b"PRI * HTT")
    ctl = c.ctl(c.members[:1])
    ctl("put", "after", "garbage").check()
    assert ctl("get", "after", "--print-value-only").check().stdout == "garbage\n"


def test_metrics_listener_serves_http_only(metrics_cluster: tuple[LocalCluster, int]) -> None:
    _, mport = metrics_cluster
    with socket.create_connection(("127.0.0.1", mport)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /v3/kv/range HTTP/1.1\r\nHost: x\r\n\r\n")
        got = _recv_responses(s, 2)
    assert got[0][0] == "HTTP/1.1 200 OK" and b"etcd_server_has_leader 1.0" in got[0][1]
    assert got[1][0] == "HTTP/1.1 404 Not Found"


def test_sniff_follows_cmux() -> None:
    from petcd.http.mux import PREFACE, sniff

    assert sniff(PREFACE[:10]) == "" and sniff(PREFACE) == "grpc"
    assert sniff(b"GET / HTTP/1.1") == ""  # no line yet: cmux waits
    assert sniff(b"GET / HTTP/1.1\r\n") == "http" and sniff(b"X Y HTTP/1.0\n") == "http"
    assert sniff(b"GET / HTTP/2.0\r\n") == "close" and sniff(b"PRI * HTTP/2.0\r\nxx") == "close"
    assert sniff(b"hello\n") == "close" and sniff(b"GET /\r\n") == "close"
    assert sniff(b"x" * 4095) == "" and sniff(b"x" * 4096) == "close"
