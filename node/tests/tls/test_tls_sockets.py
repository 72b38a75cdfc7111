"""TLS over real sockets on 127.0.0.1: the peer transport (direct and through a TCP forwarder,
with peer client-cert auth), /members over https, and gRPC through the TLS client-port front
with an auto-TLS certificate pinned on first use."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from petcd import tlsutil
from petcd.http.mux import ClientMux, private_grpc_address
from petcd.logutil import new_logger
from petcd.raft.types import Message, MessageType
from petcd.transport import PeerTransport, fetch_members

from harness.ports import free_port
from harness.tlscerts import Pki, make_pki
from tests.support.forwarder import Forwarder
from tests.support.timeouts import LOOPBACK
from tests.support.wait import async_wait_until

CID = 0xC1D


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def peer_info(pki: Pki, cert: str = "peer") -> tlsutil.TLSInfo:
    pair = getattr(pki, cert)
    return tlsutil.TLSInfo(
        cert_file=str(pair.cert), key_file=str(pair.key), trusted_ca_file=str(pki.ca),
        client_cert_auth=True,
    )


class Side:
    """One PeerTransport on an https:// URL with what it received and logged."""

    def __init__(self, node_id: int, tls: tlsutil.TLSInfo) -> None:
        self.url = f"https://127.0.0.1:{free_port()}"
        self.got: list[Message] = []
        self.logbuf = io.StringIO()
        self.t = PeerTransport(
            node_id, CID, [self.url], self.got.append, new_logger("debug", stream=self.logbuf),
            advertise_urls=[self.url], tls=tls, read_timeout=2.0,
            members=lambda: [{"id": node_id, "name": f"n{node_id}", "peerURLs": [self.url]}],
        )

    def logged(self, msg: str) -> bool:
        return any(json.loads(ln)["msg"] == msg for ln in self.logbuf.getvalue().splitlines())


def hb(frm: int, to: int, i: int) -> Message:
    return Message(type=MessageType.MsgHeartbeat, to=to, frm=frm, term=1, commit=i)


async def send_until(side: Side, to: int, cond: Callable[[], bool], what: str) -> None:
    """Send fresh heartbeats from `side` to `to` until `cond` holds (a link may need a redial)."""
    sent = itertools.count()
    await async_wait_until(cond, LOOPBACK, what, interval=0.02,
                           on_miss=lambda: side.t.send([hb(side.t.local_id, to, next(sent))]))


def test_peer_transport_over_tls_direct_and_through_forwarder(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")

    async def main() -> None:
        a, b = Side(1, peer_info(pki)), Side(2, peer_info(pki))
        await a.t.start()
        await b.t.start()
        port_b = int(b.url.rsplit(":", 1)[1])
        fwd = Forwarder(port_b)
        await fwd.restore()
        try:
            a.t.add_peer(2, [f"https://127.0.0.1:{fwd.port}"])  # a reaches b via the proxy
            b.t.add_peer(1, [a.url])
            await send_until(a, 2, lambda: len(b.got) >= 5, "a -> b through the forwarder")
            await send_until(b, 1, lambda: len(a.got) >= 5, "b -> a direct")
            assert all(m.type == MessageType.MsgHeartbeat for m in a.got + b.got)
            # /members on the TLS peer port, as a joining member asks it.
            cid, members = await fetch_members(
                [b.url], tls=peer_info(pki, "client").client_context()
            )
            assert cid == CID and members[0]["peerURLs"] == [b.url]
        finally:
            await fwd.cut()
            await a.t.stop()
            await b.t.stop()

    run(main())


def test_peer_with_foreign_certificate_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")

    async def main() -> None:
        good = Side(1, peer_info(pki))
        rogue_info = tlsutil.TLSInfo(
            cert_file=str(pki.rogue.cert), key_file=str(pki.rogue.key),
            trusted_ca_file=str(pki.ca),
        )
        rogue = Side(2, rogue_info)
        honest = Side(3, peer_info(pki))
        picky = Side(4, tlsutil.TLSInfo(**{**_fields(peer_info(pki)), "allowed_cn": "nobody"}))
        for s in (good, rogue, honest, picky):
            await s.t.start()
        try:
            rogue.t.add_peer(1, [good.url])
            honest.t.add_peer(4, [picky.url])
            for i in range(20):
                rogue.t.send([hb(2, 1, i)])
                honest.t.send([hb(3, 4, i)])
                await asyncio.sleep(0.05)
            await async_wait_until(lambda: picky.logged("rejected connection"), LOOPBACK,
                                   "allowed-CN rejection")
            assert good.got == [] and picky.got == []
            assert not rogue.t.peer_active(1) and not honest.t.peer_active(4)
        finally:
            for s in (good, rogue, honest, picky):
                await s.t.stop()

    run(main())


def _fields(info: tlsutil.TLSInfo) -> dict[str, Any]:
    return {f: getattr(info, f) for f in info.__dataclass_fields__}


def test_grpc_through_tls_front_with_pinned_auto_tls_cert(tmp_path: Path) -> None:
    cert, key = tlsutil.self_cert(tmp_path / "fixtures" / "client", ["127.0.0.1:0"], 1)
    info = tlsutil.TLSInfo(cert_file=cert, key_file=key, self_cert=True)

    async def no_http(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    async def main() -> None:
        gs = grpc.aio.server()
        health = HealthServicer()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health, gs)
        private = private_grpc_address(f"tls-test-{free_port()}")
        gs.add_insecure_port(private)
        await gs.start()
        mux = ClientMux(private, no_http)
        port = free_port()
        await mux.listen("127.0.0.1", port, tls=info.server_context(tlsutil.ALPN_CLIENT_PORT))
        url = f"https://127.0.0.1:{port}"
        client = tlsutil.GrpcClientTLS(info)
        try:
            assert not client.pinned(url)
            await client.prepare(url)
            assert client.pinned(url)
            async with client.channel(url) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                resp = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert resp.status == health_pb2.HealthCheckResponse.SERVING
            # Without the pin (plain verification against system roots) the call fails.
            async with tlsutil.GrpcClientTLS(tlsutil.TLSInfo()).channel(url) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                try:
                    await stub.Check(health_pb2.HealthCheckRequest(), timeout=3)
                except grpc.aio.AioRpcError as err:
                    assert err.code() == grpc.StatusCode.UNAVAILABLE
                else:
                    raise AssertionError("an unverifiable self-signed server was trusted")
        finally:
            await mux.close()
            await gs.stop(None)

    run(main())
