"""PeerTransport between real sockets on 127.0.0.1, directly and through a TCP forwarder."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from petcd.logutil import Logger, new_logger
from petcd.raft.types import Entry, Message, MessageType
from petcd.transport import PeerTransport
from petcd.transport.peer import QUEUE_SIZE

from harness.ports import free_port
from tests.support.forwarder import Forwarder
from tests.support.timeouts import LOOPBACK
from tests.support.wait import async_wait_until

CID = 0x1234ABCD


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


async def keep_sending(
    t: PeerTransport, mk: Callable[[int], Message], cond: Callable[[], bool], what: str
) -> None:
    """Send fresh messages until ``cond`` holds (a link may need a redial first)."""
    sent = itertools.count()
    await async_wait_until(cond, LOOPBACK, what, interval=0.02,
                           on_miss=lambda: t.send([mk(next(sent))]))


@dataclass
class Node:
    id: int
    url: str
    transport: PeerTransport
    got: list[Message] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)
    snap_failures: list[int] = field(default_factory=list)
    snap_sent: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    logbuf: io.StringIO = field(default_factory=io.StringIO)

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.logbuf.getvalue().splitlines()]

    def logged(self, msg: str) -> bool:
        return any(r["msg"] == msg for r in self.logs())


def make_node(
    node_id: int,
    cluster_id: int = CID,
    removed: Callable[[int], bool] = lambda _i: False,
    members: list[dict[str, Any]] | None = None,
) -> Node:
    url = f"http://127.0.0.1:{free_port()}"
    buf = io.StringIO()
    log: Logger = new_logger("debug", stream=buf)
    holder: dict[str, Node] = {}
    t = PeerTransport(
        node_id,
        cluster_id,
        [url],
        lambda m: holder["n"].got.append(m),
        log,
        advertise_urls=[url],
        report_unreachable=lambda i: holder["n"].unreachable.append(i),
        report_snapshot=lambda i, failed: (
            holder["n"].snap_failures if failed else holder["n"].snap_sent
        ).append(i),
        is_id_removed=removed,
        on_removed=lambda i: holder["n"].removed.append(i),
        members=(lambda: members or []),
        read_timeout=2.0,
    )
    node = Node(node_id, url, t, logbuf=buf)
    holder["n"] = node
    return node


def hb(frm: int, to: int, i: int) -> Message:
    return Message(type=MessageType.MsgHeartbeat, to=to, frm=frm, term=1, commit=i)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def started(*nodes: Node) -> Callable[[], Awaitable[None]]:
    for n in nodes:
        await n.transport.start()

    async def stop() -> None:
        for n in nodes:
            await n.transport.stop()

    return stop


def test_three_members_exchange_messages_in_order() -> None:
    async def main() -> None:
        a, b, c = make_node(1), make_node(2), make_node(3)
        stop = await started(a, b, c)
        try:
            for n in (a, b, c):
                for m in (a, b, c):
                    n.transport.add_peer(m.id, [m.url])
            big = Message(
                type=MessageType.MsgApp,
                to=2,
                frm=1,
                term=3,
                log_term=2,
                index=7,
                commit=6,
                entries=[Entry(term=3, index=8, data=b"x" * 100_000)],
            )
            a.transport.send([hb(1, 2, i) for i in range(500)] + [big])
            b.transport.send([hb(2, 3, i) for i in range(10)])
            c.transport.send([hb(3, 1, i) for i in range(10)] + [hb(3, 99, 0), hb(3, 3, 0)])
            await async_wait_until(lambda: len(b.got) == 501, LOOPBACK, "b to receive 501")
            await async_wait_until(lambda: len(c.got) == 10 and len(a.got) == 10, LOOPBACK,
                                   "c and a to receive")
            assert [m.commit for m in b.got[:500]] == list(range(500))
            assert b.got[500] == big
            assert all(m.frm == 3 and m.to == 1 for m in a.got)
            assert not (a.unreachable or b.unreachable or c.unreachable)
            assert a.transport.peer_active(2) and a.transport.peers() == [2, 3]
        finally:
            await stop()

    run(main())


def test_through_forwarder_cut_reports_unreachable_and_reconnects() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2)
        fwd = Forwarder(port_of(b.url))
        await fwd.restore()
        stop = await started(a, b)
        try:
            a.transport.add_peer(2, [fwd.url])  # a only knows b by the forwarder's address
            b.transport.add_peer(1, [a.url])
            a.transport.send([hb(1, 2, i) for i in range(20)])
            await async_wait_until(lambda: len(b.got) == 20, LOOPBACK,
                                   "messages through the forwarder")
            assert fwd.accepted >= 1

            await fwd.cut()
            await keep_sending(
                a.transport,
                lambda i: hb(1, 2, 1000 + i),
                lambda: 2 in a.unreachable,
                "unreachable report",
            )
            assert not a.transport.peer_active(2)
            assert a.logged("peer became inactive (message send to peer failed)")

            await fwd.restore()
            before = len(b.got)
            await keep_sending(
                a.transport,
                lambda i: hb(1, 2, 5000 + i),
                lambda: len(b.got) > before,
                "delivery after restore",
            )
            assert a.transport.peer_active(2)
            assert b.got[-1].commit >= 5000
        finally:
            await stop()
            await fwd.cut()

    run(main())


def test_full_queue_drops_and_reports_unreachable() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2)
        stop = await started(a, b)
        try:
            a.transport.add_peer(2, [b.url])
            snap = Message(type=MessageType.MsgSnap, to=2, frm=1, term=1)
            # send() never awaits, so the sender task cannot drain the queue in between.
            a.transport.send([hb(1, 2, i) for i in range(QUEUE_SIZE + 10)] + [snap])
            assert a.unreachable == []  # reports are deferred, never re-entrant
            await async_wait_until(lambda: a.unreachable.count(2) == 11, LOOPBACK,
                                   "11 unreachable reports")
            assert a.snap_failures == [2]
            assert a.logged(
                "dropped internal Raft message since sending buffer is full (overloaded network)"
            )
            await async_wait_until(lambda: len(b.got) == QUEUE_SIZE, LOOPBACK, "queued messages to arrive")
            assert a.snap_sent == []  # the dropped snapshot is reported failed, only that
        finally:
            await stop()

    run(main())


def test_snapshot_status_reported_once_per_msgsnap() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2)
        stop = await started(a, b)
        try:
            a.transport.add_peer(2, [b.url])
            await keep_sending(a.transport, lambda i: hb(1, 2, i), lambda: bool(b.got), "link")
            snap = Message(type=MessageType.MsgSnap, to=2, frm=1, term=1)
            a.transport.send([snap, Message(type=MessageType.MsgSnap, to=99, frm=1, term=1)])
            await async_wait_until(lambda: any(m.type == MessageType.MsgSnap for m in b.got), LOOPBACK, "snapshot")
            await async_wait_until(lambda: a.snap_sent == [2] and a.snap_failures == [99], LOOPBACK, "reports")
            a.transport.send([hb(1, 2, 10_000)])  # a later batch reports nothing more
            await async_wait_until(lambda: b.got[-1].commit == 10_000, LOOPBACK, "the later batch")
            assert (a.snap_sent, a.snap_failures) == ([2], [99])
        finally:
            await stop()

    run(main())


def test_cluster_id_mismatch_is_refused_and_logged() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2, cluster_id=0xBEEF)
        stop = await started(a, b)
        try:
            a.transport.add_peer(2, [b.url])
            await keep_sending(
                a.transport,
                lambda i: hb(1, 2, i),
                lambda: 2 in a.unreachable,
                "mismatch to be reported",
            )
            await async_wait_until(lambda: b.logged("request cluster ID mismatch"), LOOPBACK,
                                   "listener log")
            rec = next(r for r in b.logs() if r["msg"] == "request cluster ID mismatch")
            assert rec["local-member-cluster-id"] == "beef"
            assert rec["remote-peer-cluster-id"] == "1234abcd"
            refused = [r for r in a.logs() if "cluster ID mismatch" in r["msg"]]
            assert refused and refused[0]["error"] == "cluster ID mismatch"
            assert b.got == []

            b.transport.set_cluster_id(CID)  # now they agree: traffic flows
            await keep_sending(
                a.transport,
                lambda i: hb(1, 2, i),
                lambda: len(b.got) > 0,
                "delivery after set_cluster_id",
            )
        finally:
            await stop()

    run(main())


def test_removed_member_is_told_so() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2, removed=lambda i: i == 1)
        stop = await started(a, b)
        try:
            a.transport.add_peer(2, [b.url])
            a.transport.send([hb(1, 2, 0)])
            await async_wait_until(lambda: a.removed == [2], LOOPBACK, "removal notice")
            assert a.logged("the member has been permanently removed from the cluster")
            assert b.logged("rejected stream from remote peer because it was removed")
            assert b.got == []
        finally:
            await stop()

    run(main())


def test_wrong_recipient_is_refused() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2)
        stop = await started(a, b)
        try:
            a.transport.add_peer(3, [b.url])  # b's address, but a believes it is member 3
            await keep_sending(
                a.transport, lambda i: hb(1, 3, i), lambda: 3 in a.unreachable, "to-mismatch report"
            )
            assert b.logged("ignored streaming request; ID mismatch")
            assert b.got == []
        finally:
            await stop()

    run(main())


def test_garbage_does_not_break_the_listener() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2)
        stop = await started(a, b)
        try:
            port = port_of(b.url)
            payloads = [
                b"\x00" * 64,  # looks like our preamble, is not
                b"\x00petcd/1\xff\xff\xff\xff",  # good preamble, absurd handshake length
                b"\x00petcd/1\x00\x00\x00\x05{bad}",  # good preamble, bad handshake JSON
                bytes(range(1, 256)) * 10,
                b"GET\r\n\r\n",
                b"",
            ]
            for data in payloads:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(data)
                await w.drain()
                w.write_eof()
                await asyncio.wait_for(r.read(-1), 10)
                w.close()
            # a valid handshake followed by an undecodable message frame
            from petcd.transport import wire

            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(wire.MAGIC + wire.frame(wire.Hello(CID, 1, 2).encode()))
            w.write(wire.frame(b"\xc1 not msgpack"))
            await w.drain()
            assert await asyncio.wait_for(r.read(-1), 10) != b""  # reply, then closed
            w.close()
            await async_wait_until(lambda: b.logged("closed peer connection after bad bytes"),
                                   LOOPBACK, "log")

            a.transport.add_peer(2, [b.url])
            a.transport.send([hb(1, 2, 7)])
            await async_wait_until(lambda: [m.commit for m in b.got] == [7], LOOPBACK,
                                   "delivery after garbage")
        finally:
            await stop()

    run(main())


def test_idle_link_stays_up_with_keepalives() -> None:
    async def main() -> None:
        a, b = make_node(1), make_node(2)
        stop = await started(a, b)
        try:
            a.transport.add_peer(2, [b.url])
            a.transport.send([hb(1, 2, 1)])
            await async_wait_until(lambda: len(b.got) == 1, LOOPBACK, "first message")
            await asyncio.sleep(3.0)  # longer than the 2 s read timeout: only keepalives flow
            assert a.transport.peer_active(2)
            a.transport.send([hb(1, 2, 2)])
            await async_wait_until(lambda: len(b.got) == 2, LOOPBACK, "second message")
            assert a.unreachable == []
        finally:
            await stop()

    run(main())


def test_start_fails_cleanly_on_a_busy_port() -> None:
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            t = PeerTransport(
                1,
                CID,
                [f"http://127.0.0.1:{port}"],
                lambda m: None,
                new_logger(stream=io.StringIO()),
            )
            try:
                await t.start()
            except OSError:
                pass
            else:
                raise AssertionError("start() bound a port already in use")
            await t.stop()

    run(main())
