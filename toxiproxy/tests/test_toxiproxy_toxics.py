"""What each toxic does to real TCP traffic through the proxy.

Timing checks assert lower bounds only. "No data arrives" checks wait a bounded
time for data and expect none.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import pytest
from tests.support.wait import wait_until
from toxiproxy_testlib import (
    EchoServer,
    can_connect,
    connect,
    listen_port,
    recv_exactly,
    recv_until_eof,
)


def round_trip(proxy: Any, payload: bytes = b"ping") -> float:
    """Seconds for one echo of ``payload`` through ``proxy`` on a new connection."""
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        return time.monotonic() - start


def assert_no_data(sock: socket.socket, window: float = 0.5) -> None:
    """Expect no bytes (and no close) on ``sock`` during ``window`` seconds."""
    sock.settimeout(window)
    with pytest.raises(TimeoutError):
        sock.recv(1)


def test_latency_downstream_and_upstream(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="lat")
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    assert round_trip(proxy) >= 0.29
    proxy.add_toxic(type="latency", stream="upstream", name="up", attributes={"latency": 200})
    assert round_trip(proxy) >= 0.49


def test_latency_added_to_live_connection(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="live")
    with connect(proxy) as sock:
        sock.sendall(b"a")
        assert recv_exactly(sock, 1) == b"a"
        proxy.add_toxic(type="latency", attributes={"latency": 250})
        start = time.monotonic()
        sock.sendall(b"b")
        assert recv_exactly(sock, 1) == b"b"
        assert time.monotonic() - start >= 0.24
        proxy.destroy_toxic("latency_downstream")
        sock.sendall(b"c")
        assert recv_exactly(sock, 1) == b"c"


def test_disabled_proxy_refuses_and_cuts(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="down")
    port = listen_port(proxy)
    sock = connect(proxy)
    sock.sendall(b"x")
    assert recv_exactly(sock, 1) == b"x"
    with proxy.down():
        # The live connection is dropped and new ones are refused.
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    sock.close()
    wait_until(lambda: can_connect(port), 5.0, "the proxy to listen again")
    assert round_trip(proxy) >= 0


def test_timeout_zero_drops_data_and_holds_connection(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="to0")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    with connect(proxy) as sock:
        sock.sendall(b"lost")
        # The upstream gets the data (the toxic is downstream) but the reply is dropped.
        wait_until(lambda: echo.total_received() == 4, 5.0, "upstream to receive")
        assert_no_data(sock)


def test_timeout_closes_after_delay(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="to")
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 300})
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(b"never arrives")
        data, _ = recv_until_eof(sock)
        assert data == b""
        assert time.monotonic() - start >= 0.29
    assert echo.total_received() == 0


def test_removing_timeout_closes_affected_connection(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="torm")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    with connect(proxy) as sock:
        sock.sendall(b"x")
        wait_until(lambda: echo.total_received() == 1, 5.0, "upstream to receive")
        proxy.destroy_toxic("timeout_downstream")
        data, _ = recv_until_eof(sock)
        assert data == b""
    assert round_trip(proxy) >= 0  # new connections are clean


def test_reset_peer_resets(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="rp")
    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            while sock.recv(1024):
                pass


def test_reset_peer_waits_timeout(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="rpt")
    proxy.add_toxic(type="reset_peer", stream="upstream", attributes={"timeout": 300})
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            while sock.recv(1024):
                pass
        assert time.monotonic() - start >= 0.29


def test_limit_data_downstream_closes_after_n_bytes(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="lim")
    proxy.add_toxic(type="limit_data", attributes={"bytes": 100})
    with connect(proxy) as sock:
        sock.sendall(b"z" * 1000)
        data, _ = recv_until_eof(sock)
    assert data == b"z" * 100


def test_limit_data_upstream(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="limup")
    proxy.add_toxic(type="limit_data", stream="upstream", attributes={"bytes": 10})
    with connect(proxy) as sock:
        sock.sendall(b"0123456789abcdef")
        # The proxy closes the upstream socket after 10 bytes, then the client's;
        # the echo of those bytes may or may not beat the close (as with Toxiproxy).
        data, _ = recv_until_eof(sock)
    assert b"0123456789".startswith(data)
    wait_until(lambda: echo.total_received() >= 10, 5.0, "upstream to receive")
    assert bytes(echo.received) == b"0123456789"


def test_bandwidth_limits_rate(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="bw")
    proxy.add_toxic(type="bandwidth", attributes={"rate": 50})  # 50 KB/s
    payload = bytes(range(256)) * 200  # 51200 bytes: about one second at 50 KB/s
    with connect(proxy, timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert time.monotonic() - start >= 0.8


def test_slicer_slices_and_delays(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="slice")
    proxy.add_toxic(
        type="slicer", attributes={"average_size": 10, "size_variation": 0, "delay": 20000}
    )
    payload = b"s" * 200
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        received = bytearray()
        reads = 0
        while len(received) < len(payload):
            chunk = sock.recv(4096)
            assert chunk, "closed early"
            reads += 1
            received.extend(chunk)
        elapsed = time.monotonic() - start
    assert bytes(received) == payload
    # 200 bytes halve down to 32 pieces of 6-7 bytes, 20 ms apart.
    assert elapsed >= 0.5
    assert reads >= 2


def test_slow_close_delays_close(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="sc")
    proxy.add_toxic(type="slow_close", attributes={"delay": 400})
    with connect(proxy) as sock:
        start = time.monotonic()
        sock.sendall(b"CLOSE")  # the echo server replies, then closes
        data, _ = recv_until_eof(sock)
        assert data == b"CLOSE"
        assert time.monotonic() - start >= 0.39


def test_toxicity_zero_never_applies(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="tz")
    proxy.add_toxic(type="timeout", toxicity=0.0, attributes={"timeout": 0})
    for _ in range(20):
        assert round_trip(proxy) >= 0


def test_toxicity_one_always_applies(client: Any, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="t1")
    proxy.add_toxic(type="limit_data", toxicity=1.0, attributes={"bytes": 0})
    for _ in range(10):
        with connect(proxy) as sock:
            sock.sendall(b"data")
            data, _ = recv_until_eof(sock)
            assert data == b""


def test_update_toxic_changes_live_behaviour(client: Any, echo: EchoServer, server: Any) -> None:
    import requests

    proxy = client.create(upstream=echo.address, name="updtox")
    proxy.add_toxic(type="timeout", toxicity=0.0, attributes={"timeout": 0})
    assert round_trip(proxy) >= 0
    response = requests.post(
        f"{server.url}/proxies/updtox/toxics/timeout_downstream",
        json={"toxicity": 1.0},
        timeout=10,
    )
    assert response.status_code == 200
    with connect(proxy) as sock:
        sock.sendall(b"x")
        wait_until(lambda: echo.total_received() >= 5, 5.0, "upstream to receive")
        assert_no_data(sock)


def test_large_transfer_is_intact_through_toxics(client: Any, echo: EchoServer) -> None:
    import hashlib
    import threading

    proxy = client.create(upstream=echo.address, name="bulk")
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 20, "jitter": 5})
    proxy.add_toxic(type="slicer", attributes={"average_size": 4096, "size_variation": 1024})
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB
    with connect(proxy, timeout=30) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        received = recv_exactly(sock, len(payload))
        sender.join(30)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
