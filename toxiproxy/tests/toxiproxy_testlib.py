"""Helpers for the toxiproxy_server tests: polling, sockets, a threaded echo server.

Everything listens on and connects to 127.0.0.1 only. Waiting is done by
polling conditions with deadlines (`tests.support.wait`), never by fixed sleeps.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ToxiproxyProcess:
    """A running server subprocess and its API address."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def can_connect(port: int) -> bool:
    """True if a TCP connection to 127.0.0.1:port is accepted."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass
class EchoServer:
    """A threaded TCP server on 127.0.0.1 that echoes what it receives.

    It records every byte received (``received``), closes a connection when the
    data it receives ends with ``b"CLOSE"``, and counts accepted connections.
    """

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    conns: list[socket.socket] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.received.extend(data)
                try:
                    conn.sendall(data)
                except OSError:
                    return
                if data.endswith(b"CLOSE"):
                    return

    def total_received(self) -> int:
        with self.lock:
            return len(self.received)

    def close(self) -> None:
        self.sock.close()
        with self.lock:
            for conn in self.conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def listen_port(proxy: Any) -> int:
    """The port a toxiproxy-python Proxy object listens on."""
    return int(str(proxy.listen).rsplit(":", 1)[1])


def connect(proxy: Any, timeout: float = 5.0) -> socket.socket:
    """Connect to a proxy's listen address; every recv is bounded by ``timeout``."""
    sock = socket.create_connection((HOST, listen_port(proxy)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes (each recv bounded by the socket timeout)."""
    buf = bytearray()
    while len(buf) < size:
        data = sock.recv(size - len(buf))
        if not data:
            raise EOFError(f"connection closed after {len(buf)} of {size} bytes")
        buf.extend(data)
    return bytes(buf)


def recv_until_eof(sock: socket.socket, limit: int = 10 * 1024 * 1024) -> tuple[bytes, int]:
    """Read until the peer closes; return the data and the number of recv calls."""
    buf = bytearray()
    reads = 0
    while len(buf) <= limit:
        data = sock.recv(65536)
        if not data:
            return bytes(buf), reads
        reads += 1
        buf.extend(data)
    raise AssertionError("peer sent more than the limit")
