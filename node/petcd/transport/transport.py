"""PeerTransport: Raft message exchange between members over ``--listen-peer-urls``.

Usage (all methods except ``start``/``stop`` are synchronous and must be called on the event
loop thread that ran ``start``)::

    t = PeerTransport(local_id, cluster_id, cfg.listen_peer_urls, on_message, logger,
                      advertise_urls=cfg.initial_advertise_peer_urls,
                      report_unreachable=rawnode_report_unreachable,
                      report_snapshot=rawnode_report_snapshot,
                      members=lambda: [...], is_id_removed=membership.is_removed,
                      on_removed=stop_server)
    await t.start()                 # binds every listen URL (OSError if one cannot be bound)
    t.add_peer(peer_id, peer_urls)  # dials lazily, reconnects forever with backoff
    t.send(rd.messages)             # never blocks; drops + report_unreachable when it must
    await t.stop()

Inbound: every listener accepts Raft connections (see :mod:`petcd.transport.wire`) and
HTTP/1.1 requests (see :mod:`petcd.transport.http`) on the same port, told apart by the first
byte. A Raft handshake is refused (and logged) when the cluster ID differs
(``cluster ID mismatch``), the sender was removed (``removed member``) or it is addressed to
another member (``to field mismatch``). Messages on an accepted connection are decoded with
``petcd.raft.codec.decode_message`` and handed to ``on_message`` one by one, in order; a frame
that fails to decode, garbage bytes or a silent link (no frame for ``read_timeout``) close
that connection only -- the listener keeps serving.

TLS: ``https://`` listen URLs serve TLS with ``tls`` (a :class:`petcd.tlsutil.TLSInfo`, required
for them): Raft streams and ``/members`` alike; a handshaken connection whose certificate fails
etcd's checks (SAN vs remote address, allowed CN/hostname, CRL) is closed with a "rejected
connection" warning. ``https://`` peer URLs are dialed with ``tls.client_context()`` (end to end
through any TCP proxy in between: the proxy only forwards bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from petcd import errors
from petcd.ids import format_id
from petcd.logutil import Logger
from petcd.raft.codec import decode_message
from petcd.raft.types import Message, MessageType
from petcd.tlsutil import TLSInfo
from petcd.transport import http, wire
from petcd.transport.peer import PeerSender, SenderEnv
from petcd.version import CLUSTER_VERSION, SERVER_VERSION

__all__ = ["PeerTransport"]

FIRST_BYTE_TIMEOUT = 10.0
RECV_CHUNK = 256 * 1024
"""Most bytes one read of a Raft stream takes (frames past it wait for the next read)."""


def _noop_id(_: int) -> None:
    return None


def _deferred(fn: Callable[..., None]) -> Callable[..., None]:
    """Run ``fn`` on the next loop iteration, so callbacks never re-enter the caller of
    ``send()`` (e.g. a Raft driver in the middle of handling a Ready)."""

    def call(*args: Any) -> None:
        try:
            asyncio.get_running_loop().call_soon(fn, *args)
        except RuntimeError:  # no running loop (shutdown): report synchronously
            fn(*args)

    return call


def _noop_snap(_: int, __: bool) -> None:
    return None


class PeerTransport:
    """See the module docstring for the contract."""

    def __init__(
        self,
        local_id: int,
        cluster_id: int,
        listen_urls: Sequence[str],
        on_message: Callable[[Message], None],
        logger: Logger,
        *,
        advertise_urls: Sequence[str] = (),
        report_unreachable: Callable[[int], None] = _noop_id,
        report_snapshot: Callable[[int, bool], None] = _noop_snap,
        members: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
        is_id_removed: Callable[[int], bool] = lambda _id: False,
        on_removed: Callable[[int], None] = _noop_id,
        versions: Mapping[str, str] | None = None,
        dial_timeout: float = 1.0,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        tls: TLSInfo | None = None,
    ) -> None:
        """``report_unreachable(peer_id)`` / ``report_snapshot(peer_id, failure)`` feed Raft;
        ``members()`` serves ``GET /members``; ``on_removed(peer_id)`` fires when a peer tells
        us we were removed from the cluster (etcd then stops the member). These three are
        always called from the event loop via ``call_soon``, never from inside ``send()``."""
        self.local_id = local_id
        self.listen_urls = list(listen_urls)
        self._on_message = on_message
        self._log = logger
        self._members = members
        self._is_id_removed = is_id_removed
        self._versions = dict(
            versions or {"etcdserver": SERVER_VERSION, "etcdcluster": CLUSTER_VERSION}
        )
        self._read_timeout = read_timeout
        self._tls = tls if tls is not None and not tls.empty() else None
        self._env = SenderEnv(
            local_id=local_id,
            cluster_id=cluster_id,
            local_urls=tuple(advertise_urls),
            logger=logger,
            report_unreachable=_deferred(report_unreachable),
            report_snapshot=_deferred(report_snapshot),
            on_removed=_deferred(on_removed),
            server_version=self._versions.get("etcdserver", ""),
            dial_timeout=dial_timeout,
            write_timeout=write_timeout,
            keepalive=read_timeout / 3,
            client_ssl=self._tls.client_context() if self._tls is not None else None,
        )
        self._peers: dict[int, PeerSender] = {}
        self._servers: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def cluster_id(self) -> int:
        return self._env.cluster_id

    @property
    def bound_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket (useful with port 0)."""
        out: list[tuple[str, int]] = []
        for server in self._servers:
            for sock in server.sockets:
                name = sock.getsockname()
                out.append((str(name[0]), int(name[1])))
        return out

    async def start(self) -> None:
        """Bind all listen URLs and start dialing known peers."""
        try:
            for url in self.listen_urls:
                parts = urlsplit(url)
                ctx: ssl.SSLContext | None = None
                if parts.scheme == "https":
                    if self._tls is None:
                        raise ValueError(errors.PEER_LISTEN_NEEDS_TLS.format(url=url))
                    ctx = self._tls.server_context()
                elif parts.scheme != "http":
                    raise ValueError(errors.PEER_LISTEN_UNSUPPORTED.format(url=url))
                server = await asyncio.start_server(
                    self._accept, parts.hostname, parts.port, reuse_address=True, ssl=ctx
                )
                self._servers.append(server)
        except BaseException:
            await self._close_servers()
            raise
        self._started = True
        for peer in self._peers.values():
            peer.start()
        self._log.info(
            "started peer transport",
            **{
                "local-member-id": format_id(self.local_id),
                "listen-peer-urls": self.listen_urls,
            },
        )

    async def stop(self) -> None:
        """Close listeners, inbound connections and all peer senders."""
        self._started = False
        await self._close_servers()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        peers, self._peers = list(self._peers.values()), {}
        for peer in peers:
            await peer.stop()

    async def _close_servers(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    # -- peers ---------------------------------------------------------------------------------

    def add_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        """Start sending to ``peer_id`` at ``urls`` (idempotent: updates URLs if known)."""
        if peer_id == self.local_id:
            return
        existing = self._peers.get(peer_id)
        if existing is not None:
            existing.set_urls(list(urls))
            return
        peer = PeerSender(peer_id, list(urls), self._env)
        self._peers[peer_id] = peer
        if self._started:
            peer.start()

    def remove_peer(self, peer_id: int) -> None:
        """Stop sending to ``peer_id``; queued messages are discarded silently."""
        peer = self._peers.pop(peer_id, None)
        if peer is not None:
            task = asyncio.get_running_loop().create_task(peer.stop())
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)

    def update_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        """Change the URLs used to reach ``peer_id`` (adds it if unknown)."""
        self.add_peer(peer_id, urls)

    def set_cluster_id(self, cluster_id: int) -> None:
        """Use ``cluster_id`` in handshakes from now on; existing outbound links redial."""
        if cluster_id == self._env.cluster_id:
            return
        self._env.cluster_id = cluster_id
        for peer in self._peers.values():
            peer.reconnect()

    def peers(self) -> list[int]:
        return sorted(self._peers)

    def peer_active(self, peer_id: int) -> bool:
        """True while an accepted outbound connection to ``peer_id`` exists."""
        peer = self._peers.get(peer_id)
        return peer is not None and peer.active

    def send(self, msgs: Iterable[Message]) -> None:
        """Queue each message for its ``to`` peer and write each peer's batch at once when
        its link is idle (else its sender task does); never blocks or awaits.

        Messages to unknown peers (or to ourselves) are dropped silently, as etcd does; a
        MsgSnap among them is reported failed (Raft then probes that peer again).
        """
        touched: list[PeerSender] = []
        for msg in msgs:
            peer = self._peers.get(msg.to)
            if peer is not None:
                peer.enqueue(msg)
                if peer not in touched:
                    touched.append(peer)
            elif msg.type == MessageType.MsgSnap:
                self._env.report_snapshot(msg.to, True)
        for peer in touched:
            peer.flush()

    # -- inbound -------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            if self._tls is not None and not self._tls_accepted(writer):
                return
            await self._serve_conn(reader, writer)
        except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except wire.FrameError as exc:
            self._log.warning(
                "closed peer connection after bad bytes",
                error=str(exc),
                **{"remote-addr": str(writer.get_extra_info("peername"))},
            )
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()

    def _tls_accepted(self, writer: asyncio.StreamWriter) -> bool:
        """etcd's post-handshake checks on a TLS peer connection (True: go on)."""
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is None or self._tls is None:
            return True
        peer = writer.get_extra_info("peername")
        host = str(peer[0]) if peer else ""
        err = self._tls.check_peer(sslobj.getpeercert(binary_form=True), host, check_san=True)
        if err:
            self._log.warning(
                "rejected connection",
                **{"remote-addr": str(peer), "server-name": sslobj.server_hostname or "",
                   "error": err},
            )
        return not err

    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
            first = await reader.read(1)
        if not first:
            return
        if first != wire.MAGIC[:1]:
            await http.handle_http(
                first, reader, writer, self._env.cluster_id, self._members, self._versions
            )
            return
        async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
            rest = await reader.readexactly(len(wire.MAGIC) - 1)
            if first + rest != wire.MAGIC:
                raise wire.FrameError("bad peer protocol preamble")
            hello = wire.Hello.decode(await wire.read_frame(reader, wire.MAX_HANDSHAKE))
        refusal = self._check_hello(hello)
        writer.write(wire.frame(wire.Reply(refusal, self._env.cluster_id).encode()))
        await writer.drain()
        if refusal:
            return
        await self._receive(hello.frm, reader)

    def _check_hello(self, hello: wire.Hello) -> str:
        fields = {
            "local-member-id": format_id(self.local_id),
            "remote-peer-id": format_id(hello.frm),
        }
        if hello.cluster_id != self._env.cluster_id:
            self._log.warning(
                "request cluster ID mismatch",
                **fields,
                **{
                    "local-member-cluster-id": format_id(self._env.cluster_id),
                    "remote-peer-cluster-id": format_id(hello.cluster_id),
                    "remote-peer-server-version": hello.server_version,
                },
            )
            return errors.PEER_CLUSTER_ID_MISMATCH
        if self._is_id_removed(hello.frm):
            self._log.warning("rejected stream from remote peer because it was removed", **fields)
            return errors.PEER_REMOVED_MEMBER
        if hello.to != self.local_id:
            self._log.warning(
                "ignored streaming request; ID mismatch",
                **fields,
                **{"remote-peer-id-header": format_id(hello.to)},
            )
            return errors.PEER_TO_MISMATCH
        return ""

    async def _receive(self, frm: int, reader: asyncio.StreamReader) -> None:
        """Decode and deliver frames until EOF, garbage or `read_timeout` of silence.

        Reads whatever the socket has (up to RECV_CHUNK) and delivers every complete frame in
        it, so a burst of frames costs one await and one timeout scope, not two of each per
        frame (this loop was a third of a busy leader's CPU when it read frame by frame).
        """
        buf = b""
        unpack_len = wire.unpack_len
        while True:
            async with asyncio.timeout(self._read_timeout):
                chunk = await reader.read(RECV_CHUNK)
            if not chunk:
                raise asyncio.IncompleteReadError(buf, None)
            buf = buf + chunk if buf else chunk
            pos, end = 0, len(buf)
            while end - pos >= 4:
                size = unpack_len(buf, pos)
                if size > wire.MAX_FRAME:
                    raise wire.FrameError(f"frame of {size} bytes exceeds limit {wire.MAX_FRAME}")
                stop = pos + 4 + size
                if stop > end:
                    # Header known: read exactly the rest of this frame (one copy however
                    # large it is, e.g. a snapshot), under the same silence timeout.
                    async with asyncio.timeout(self._read_timeout):
                        rest = await reader.readexactly(stop - end)
                    buf = buf[pos:] + rest
                    pos, stop, end = 0, 4 + size, len(buf)
                if size:  # an empty frame is a keepalive
                    try:
                        msg = decode_message(buf[pos + 4 : stop])
                    except ValueError as exc:
                        raise wire.FrameError(
                            f"undecodable message from {format_id(frm)}: {exc}"
                        ) from None
                    self._on_message(msg)
                pos = stop
            if pos:
                buf = buf[pos:]
