"""Peer-link proxy for local clusters: partitions and latency between processes on loopback.

Why this exists: on the local backend every member is a process on 127.0.0.1, so nothing in the
network can tell member A's peer traffic from member C's, and a member's advertised peer URL is
its identity (every member must dial it unchanged). So each member *advertises* a peer URL whose
port belongs to this proxy and *listens* on a private port behind it; the proxy forwards every
connection, and learns who dialed from the first bytes on the connection:

* etcd (rafthttp, HTTP/1.1): the request header ``X-Server-From: <member id hex>`` that etcd sets
  on every stream, pipeline and snapshot request;
* petcd (its own wire, see ``petcd.transport.wire``): the JSON ``Hello`` frame after the 8-byte
  magic, whose ``from`` field is the member id in hex.

A partition is a set of cut member pairs (symmetric: a connection between A and B carries
traffic both ways whichever side dialed). Cutting a pair closes its open connections at once and
closes new ones right after the dialer identified itself, so both sides see the link fail as an
unreachable peer (connection reset), much like a partition with TCP resets. Connections whose
dialer cannot be identified (plain HTTP probes such as ``/version``, ``/members``, etcd's lease
forwarding) are closed only when every pair into their target member is cut (the target is
fully isolated); with three members every partition is of that form. Latency delays every chunk
on a connection by ``delay ± jitter`` ms, order kept.

Control: one JSON object per line on stdin, one JSON reply per line on stdout::

    {"op": "listen", "name": "m1", "port": 20001, "upstream": 20002}   -> {"ok": true}
    {"op": "ids", "ids": {"8e9e05c52164694d": "m1", ...}}              -> {"ok": true}
    {"op": "cut", "pairs": [["m1", "m2"], ["m1", "m3"]]}              -> {"ok": true, "closed": n}
    {"op": "latency", "ms": 50, "jitter": 10}                         -> {"ok": true}
    {"op": "heal"}                                                    -> {"ok": true}
    {"op": "stats"}                                                   -> {"ok": true, ...}

EOF on stdin shuts the proxy down. Traffic is loopback only (listen and upstream on 127.0.0.1).
Run as ``python -m harness.linkproxy``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
PETCD_MAGIC = b"\x00petcd/1"
IDENTIFY_TIMEOUT = 5.0
MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024


@dataclass(eq=False)
class _Conn:
    target: str
    sender_id: str | None  # raw id (lower-case hex, no leading zeros) or None if unknown
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def close(self) -> None:
        for w in self.writers:
            w.transport.abort()  # idempotent: aborting a closed transport is a no-op


def _norm_id(raw: str) -> str | None:
    try:
        return format(int(raw.strip(), 16), "x")
    except ValueError:
        return None


def identify(head: bytes) -> str | None:
    """The dialer's member id in the first bytes of a peer connection, or None."""
    if head.startswith(PETCD_MAGIC):
        body = head[len(PETCD_MAGIC):]
        if len(body) < 4:
            return None
        size = int.from_bytes(body[:4], "big")
        try:
            hello = json.loads(body[4:4 + size])
        except (ValueError, UnicodeDecodeError):
            return None
        frm = hello.get("from") if isinstance(hello, dict) else None
        return _norm_id(frm) if isinstance(frm, str) else None
    end = head.find(b"\r\n\r\n")
    for line in head[: end if end >= 0 else len(head)].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-server-from":
            return _norm_id(value.decode("latin-1"))
    return None


def _head_complete(head: bytes) -> bool:
    if head.startswith(PETCD_MAGIC):
        body = head[len(PETCD_MAGIC):]
        return len(body) >= 4 and len(body) >= 4 + int.from_bytes(body[:4], "big")
    if head[:1] == b"\x00" and len(head) < len(PETCD_MAGIC):
        return False
    return b"\r\n\r\n" in head or len(head) >= MAX_HEAD


class LinkProxy:
    """The proxy state and its listeners (one asyncio loop)."""

    def __init__(self, seed: int = 0) -> None:
        self.ids: dict[str, str] = {}  # member id hex -> name
        self.names: list[str] = []
        self.cut: set[frozenset[str]] = set()
        self.delay_ms = 0.0
        self.jitter_ms = 0.0
        self.conns: set[_Conn] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.rng = random.Random(seed)
        self.refused = 0
        self.accepted = 0

    def sender(self, c: _Conn) -> str | None:
        return None if c.sender_id is None else self.ids.get(c.sender_id)

    def blocked(self, c: _Conn) -> bool:
        frm = self.sender(c)
        if frm is not None:
            return frozenset((frm, c.target)) in self.cut
        others = [n for n in self.names if n != c.target]
        return bool(others) and all(frozenset((o, c.target)) in self.cut for o in others)

    def apply_cut(self, pairs: list[list[str]]) -> int:
        self.cut = {frozenset(p) for p in pairs if len(p) == 2 and p[0] != p[1]}
        closed = 0
        for c in list(self.conns):
            if self.blocked(c):
                c.close()
                self.conns.discard(c)
                closed += 1
        return closed

    async def listen(self, name: str, port: int, upstream: int) -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self._serve(name, upstream, r, w)

        self.names.append(name)
        self.servers.append(await asyncio.start_server(handle, HOST, port, reuse_address=True))

    async def _serve(
        self, target: str, upstream: int, r: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        head = b""
        try:
            async with asyncio.timeout(IDENTIFY_TIMEOUT):
                while not _head_complete(head):
                    chunk = await r.read(CHUNK)
                    if not chunk:
                        break
                    head += chunk
        except TimeoutError:
            pass
        conn = _Conn(target, identify(head), [w])
        if not head or self.blocked(conn):
            self.refused += 1
            conn.close()
            return
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(HOST, upstream), 2.0)
        except (OSError, TimeoutError):
            conn.close()
            return
        conn.writers.append(uw)
        self.conns.add(conn)
        self.accepted += 1
        try:
            uw.write(head)
            await asyncio.gather(self._pump(r, uw, conn), self._pump(ur, w, conn))
        finally:
            self.conns.discard(conn)
            conn.close()

    async def _pump(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, c: _Conn) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                w.write(data)
                await w.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await r.read(CHUNK)
                if not data:
                    break
                d = self.delay_ms
                if d > 0 and self.jitter_ms > 0:
                    d = max(0.0, d + self.rng.uniform(-self.jitter_ms, self.jitter_ms))
                queue.put_nowait((time.monotonic() + d / 1000.0, data))
            queue.put_nowait((0.0, b""))
            await sender
        except (OSError, ConnectionError):
            pass
        finally:
            sender.cancel()
            c.close()

    async def command(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "listen":
            await self.listen(str(msg["name"]), int(msg["port"]), int(msg["upstream"]))
            return {"ok": True}
        if op == "ids":
            for raw, name in dict(msg["ids"]).items():
                norm = _norm_id(str(raw))
                if norm is not None:
                    self.ids[norm] = str(name)
            closed = self.apply_cut([sorted(p) for p in self.cut])
            return {"ok": True, "closed": closed}
        if op == "cut":
            return {"ok": True, "closed": self.apply_cut(list(msg["pairs"]))}
        if op == "latency":
            self.delay_ms = float(msg.get("ms", 0))
            self.jitter_ms = float(msg.get("jitter", 0))
            return {"ok": True}
        if op == "heal":
            self.cut = set()
            self.delay_ms = self.jitter_ms = 0.0
            return {"ok": True}
        if op == "stats":
            unknown = sum(1 for c in self.conns if self.sender(c) is None)
            return {"ok": True, "open": len(self.conns), "unidentified": unknown,
                    "accepted": self.accepted, "refused": self.refused,
                    "cut": sorted(sorted(p) for p in self.cut)}
        return {"ok": False, "error": f"unknown op {op!r}"}


async def _main() -> None:
    proxy = LinkProxy()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            reply = await proxy.command(json.loads(line))
        except Exception as exc:  # noqa: BLE001 -- a bad command is answered, never fatal
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for s in proxy.servers:
        s.close()
    for c in list(proxy.conns):
        c.close()


if __name__ == "__main__":
    asyncio.run(_main())
