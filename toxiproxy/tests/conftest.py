"""Fixtures: a real toxiproxy_server subprocess, a toxiproxy-python client, echo servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from toxiproxy_testlib import HOST, EchoServer, can_connect, free_port, wait_until

toxiproxy = pytest.importorskip("toxiproxy", reason="needs the toxiproxy-python client")

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ToxiproxyProcess:
    """A running server subprocess and its API address."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@pytest.fixture(scope="session")
def server() -> Iterator[ToxiproxyProcess]:
    """Start ``python -m toxiproxy_server`` on a free port for the whole session."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT), LOG_LEVEL="warn")
    process = subprocess.Popen(
        [sys.executable, "-m", "toxiproxy_server", "--host", HOST, "--port", str(port)],
        cwd=PACKAGE_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or can_connect(port), 15.0, "the API to listen"
        )
        assert process.poll() is None, "toxiproxy_server exited at start"
        yield ToxiproxyProcess(process, port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def client(server: ToxiproxyProcess) -> Iterator[Any]:
    """A toxiproxy-python client bound to the test server, with no proxies at start."""
    tp = toxiproxy.Toxiproxy()
    tp.update_api_consumer(HOST, server.port)
    tp.destroy_all()
    yield tp
    tp.destroy_all()


@pytest.fixture
def echo_factory() -> Iterator[Callable[[], EchoServer]]:
    """Make echo servers; all are closed at the end of the test."""
    servers: list[EchoServer] = []

    def make() -> EchoServer:
        sock = socket.socket()
        sock.bind((HOST, 0))
        sock.listen(64)
        echo = EchoServer(sock)
        threading.Thread(target=echo.serve, daemon=True).start()
        servers.append(echo)
        return echo

    yield make
    for echo in servers:
        echo.close()


@pytest.fixture
def echo(echo_factory: Callable[[], EchoServer]) -> EchoServer:
    """One echo server."""
    return echo_factory()
