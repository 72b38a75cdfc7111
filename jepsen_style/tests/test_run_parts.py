"""The run machinery's pieces without a cluster: seeded generation, recording invariants,
peer-link sender identification and the link proxy's cut/heal protocol over real sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness import ports
from harness.linkproxy import PETCD_MAGIC, identify
from jepsen_style.generator import Generator, GeneratorOptions
from jepsen_style.history import pair, read_jsonl
from jepsen_style.recorder import Recorder

REPO = Path(__file__).resolve().parents[2]


def _draws(seed: int) -> list[tuple[int, int, float]]:
    gen = Generator(GeneratorOptions(seed=seed, concurrency=4, keys_active=3, ops_per_key=10))
    out = []
    for _ in range(30):
        for s in gen.slots:
            s.ops += 1
            out.append((s.index, gen.key_index(s), s.rng.random()))
    return out


def test_generator_is_deterministic_per_seed_and_rotates_keys() -> None:
    assert _draws(7) == _draws(7)
    assert _draws(7) != _draws(8)
    keys = [k for _, k, _ in _draws(7)]
    assert max(keys) >= 6  # moved past the first two groups of 3 keys
    assert min(keys[-8:]) >= 3  # and left the first group behind


def test_recorder_enforces_one_request_in_flight_and_retires(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "h.jsonl", first_free_process=2)
    rec.invoke(0, "write", "r1", 5)
    with pytest.raises(RuntimeError):
        rec.invoke(0, "read", "r1", None)
    rec.invoke(1, "read", "r1", None)
    rec.complete(1, "ok", 5)
    rec.complete(0, "info", 5)
    new = rec.retire(0)
    assert new == 2
    with pytest.raises(RuntimeError):
        rec.invoke(0, "read", "r1", None)
    rec.invoke(new, "read", "r1", None)
    rec.complete(new, "ok", 5)
    rec.close()
    events = read_jsonl(tmp_path / "h.jsonl")
    assert [e.type for e in events] == ["invoke", "invoke", "ok", "info", "invoke", "ok"]
    ops = pair(events)
    assert [o.open for o in ops] == [True, False, False]


def test_identify_senders() -> None:
    hello = json.dumps({"from": "8e9e05c52164694d", "to": "1"}).encode()
    petcd = PETCD_MAGIC + len(hello).to_bytes(4, "big") + hello
    assert identify(petcd) == "8e9e05c52164694d"
    etcd = (b"GET /raft/stream/msgappv2/8e9e05c52164694d HTTP/1.1\r\nHost: x\r\n"
            b"X-Server-From: 08e9e05c52164694d\r\nX-Raft-To: 1\r\n\r\n")
    assert identify(etcd) == "8e9e05c52164694d"
    assert identify(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n") is None
    assert identify(PETCD_MAGIC + b"\x00\x00\x00\x05{bad") is None


def _echo_server() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def loop() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return

            def serve(c: socket.socket = c) -> None:
                with c:
                    while data := c.recv(4096):
                        c.sendall(data)

            threading.Thread(target=serve, daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv, srv.getsockname()[1]


def _dial(port: int, sender: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(f"POST /raft HTTP/1.1\r\nX-Server-From: {sender}\r\n\r\n".encode())
    return s


def _alive(s: socket.socket) -> bool:
    try:
        s.sendall(b"ping")
        return s.recv(100) != b""
    except OSError:
        return False


def test_linkproxy_cuts_and_heals_identified_links() -> None:
    srv, upstream = _echo_server()
    port = ports.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness.linkproxy"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def call(**msg: object) -> dict[str, object]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        reply: dict[str, object] = json.loads(proc.stdout.readline())
        return reply

    try:
        assert call(op="listen", name="b", port=port, upstream=upstream)["ok"]
        assert call(op="listen", name="c", port=ports.free_port(), upstream=upstream)["ok"]
        assert call(op="ids", ids={"a1": "a", "c1": "c"})["ok"]
        from_a, from_c = _dial(port, "a1"), _dial(port, "c1")
        assert from_a.recv(100).startswith(b"POST /raft")  # head forwarded, echoed back
        from_c.recv(100)
        assert _alive(from_a) and _alive(from_c)
        reply = call(op="cut", pairs=[["a", "b"]])
        assert reply["closed"] == 1
        assert not _alive(from_a)
        assert _alive(from_c)
        again = _dial(port, "a1")
        assert again.recv(100) == b""  # refused while cut
        assert call(op="heal")["ok"]
        healed = _dial(port, "a1")
        assert healed.recv(100).startswith(b"POST /raft")
        assert call(op="nonsense")["ok"] is False
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
        srv.close()
        ports.release(port)
