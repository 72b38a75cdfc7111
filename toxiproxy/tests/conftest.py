"""Fixtures: a real toxiproxy_server subprocess, a toxiproxy-python client, echo servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.support.wait import wait_until
from toxiproxy_testlib import (
    HOST,
    PACKAGE_ROOT,
    EchoServer,
    ToxiproxyProcess,
    can_connect,
    free_port,
)

toxiproxy = pytest.importorskip("toxiproxy", reason="needs the toxiproxy-python client")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyProcess]:
    """Start ``python -m toxiproxy_server`` on a free port for the whole session.

    At the end the server must stop on SIGTERM with status 0 and must have
    logged no traceback (an unhandled error in a connection task or handler).
    """
    port = free_port()
    log_path = tmp_path_factory.mktemp("toxiproxy") / "server.log"
    log_file = log_path.open("wb")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT), LOG_LEVEL="info")
    # TOXIPROXY_SERVER runs the suite against another build (e.g. the installed
    # .cache/toxiproxy/bin/toxiproxy-server, or Shopify's toxiproxy-server).
    command = os.environ.get("TOXIPROXY_SERVER", "").split() or [
        sys.executable,
        "-m",
        "toxiproxy_server",
    ]
    process = subprocess.Popen(
        [*command, "-host", HOST, "-port", str(port)],
        cwd=PACKAGE_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    try:
        wait_until(
            lambda: process.poll() is not None or can_connect(port), 15.0, "the API to listen"
        )
        assert process.poll() is None, "toxiproxy_server exited at start"
        yield ToxiproxyProcess(process, port)
    finally:
        process.terminate()
        code: int | None
        try:
            code = process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            code = None
        log_file.close()
    log = log_path.read_text(errors="replace")
    assert code == 0, f"server did not stop cleanly ({code}); log:\n{log}"
    assert "Traceback" not in log and "never retrieved" not in log, log


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
