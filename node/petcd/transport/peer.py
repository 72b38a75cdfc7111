"""Outbound half of the peer transport: one sender task per remote member.

A :class:`PeerSender` owns a bounded queue of Raft messages for one peer and a task that keeps
one TCP connection to the peer's advertised URL (through any proxies in between), introduces
itself with a :class:`~petcd.transport.wire.Hello`, and then writes queued messages in batches
(many length-prefixed frames per ``write``).

Invariants and behaviour:

* :meth:`enqueue` never blocks or awaits. When the queue is full, or the peer is known to be
  down (the last connection attempt failed), the message is dropped and the owner's
  ``report_unreachable`` (and ``report_snapshot(failure=True)`` for MsgSnap) is called --
  etcd's behaviour when its stream buffer is full or the peer is inactive.
* Every MsgSnap's outcome is reported exactly once: ``report_snapshot(peer, False)`` when its
  frame was written to the connection, ``report_snapshot(peer, True)`` when it was dropped.
* A failed dial, refused handshake, write error/timeout or EOF from the listener ends the
  connection: queued messages are dropped with ``report_unreachable`` and the task redials
  after an exponential backoff with jitter (``BACKOFF_MIN`` doubling to ``BACKOFF_MAX``), trying
  the peer's URLs round-robin.
* An idle link carries an empty keepalive frame every ``keepalive`` seconds so the listener's
  read timeout only fires on dead links.
* A ``removed member`` refusal is reported once through ``on_removed``.
* ``https://`` URLs are dialed over TLS with ``SenderEnv.client_ssl`` (a default verifying
  context when it is None), the URL's host as the server name.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from petcd import errors
from petcd.ids import format_id
from petcd.logutil import Logger
from petcd.raft.codec import encode_message
from petcd.raft.types import Message, MessageType
from petcd.transport import wire

__all__ = ["BACKOFF_MAX", "BACKOFF_MIN", "QUEUE_SIZE", "PeerSender", "SenderEnv"]

QUEUE_SIZE = 4096  # etcd's streamBufSize
BACKOFF_MIN = 0.05
BACKOFF_MAX = 1.0
MAX_BATCH_BYTES = 4 << 20


@dataclass(slots=True)
class SenderEnv:
    """What a sender needs from its transport (shared, mutable: cluster_id may change)."""

    local_id: int
    cluster_id: int
    local_urls: tuple[str, ...]
    logger: Logger
    report_unreachable: Callable[[int], None]
    report_snapshot: Callable[[int, bool], None]
    on_removed: Callable[[int], None]
    server_version: str
    dial_timeout: float = 1.0
    write_timeout: float = 5.0
    keepalive: float = 1.0
    client_ssl: ssl.SSLContext | None = None


class PeerSender:
    """Queue + connection task for one remote member (see module docstring)."""

    def __init__(self, peer_id: int, urls: list[str], env: SenderEnv) -> None:
        self.peer_id = peer_id
        self.urls = list(urls)
        self._env = env
        self._queue: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Future[bool] | None = None
        """While the stream is idle: resolved True by new work (or EOF), False by keepalive."""
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._url_index = 0
        self.active = False
        #: True after a failed attempt until the next successful handshake.
        self.down = False
        self._log = env.logger.with_(
            **{"local-member-id": format_id(env.local_id), "remote-peer-id": format_id(peer_id)}
        )

    # -- owner API (all non-blocking) ---------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"peer-sender-{format_id(self.peer_id)}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._queue.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._close()

    def enqueue(self, msg: Message) -> None:
        """Queue ``msg`` or drop it with an unreachable report (never blocks)."""
        if self.down or len(self._queue) >= QUEUE_SIZE:
            if not self.down:
                self._log.warning(
                    "dropped internal Raft message since sending buffer is full "
                    "(overloaded network)",
                    **{"message-type": msg.type.name, "remote-peer-active": self.active},
                )
            self._report_drop(msg)
            return
        self._queue.append(msg)

    def flush(self) -> None:
        """Put what `enqueue` queued on the wire now, or wake the sender task to do it.

        Called once per `PeerTransport.send`. When the stream is idle and the kernel took
        the previous writes, the batch is written right here: the messages leave before the
        caller's next blocking step (a leader's log fsync) and no task wakes up per batch.
        """
        w = self._waiter
        if w is None or w.done() or not self._queue:
            return
        writer = self._writer
        if writer is not None and not writer.transport.is_closing():
            self._write_queued(writer)
            t = writer.transport
            if not self._queue and not t.get_write_buffer_size():
                return
        w.set_result(True)  # left-overs, back-pressure or a dying link: the task handles it

    def _write_queued(self, writer: asyncio.StreamWriter) -> None:
        """Encode and write queued messages, up to MAX_BATCH_BYTES, in one write."""
        chunks: list[bytes] = []
        size = 0
        queue = self._queue
        snaps = 0
        while queue and size < MAX_BATCH_BYTES:
            msg = queue.popleft()
            snaps += msg.type == MessageType.MsgSnap
            data = encode_message(msg)
            chunks.append(wire.frame(data))
            size += len(data) + 4
        if chunks:
            writer.write(b"".join(chunks) if len(chunks) > 1 else chunks[0])
        for _ in range(snaps):
            self._env.report_snapshot(self.peer_id, False)

    def set_urls(self, urls: list[str]) -> None:
        """Replace the peer's URLs; reconnect if the current one is gone."""
        current = self.urls[self._url_index % len(self.urls)] if self.urls else None
        self.urls = list(urls)
        self._url_index = 0
        if current not in self.urls:
            self.reconnect()

    def reconnect(self) -> None:
        """Drop the current connection (if any); the task redials."""
        self._close()

    # -- internals -----------------------------------------------------------------------------

    def _report_drop(self, msg: Message) -> None:
        self._env.report_unreachable(self.peer_id)
        if msg.type == MessageType.MsgSnap:
            self._env.report_snapshot(self.peer_id, True)

    def _fail_queue(self) -> None:
        queued = list(self._queue)
        self._queue.clear()
        if queued:
            self._env.report_unreachable(self.peer_id)
            for m in queued:
                if m.type == MessageType.MsgSnap:
                    self._env.report_snapshot(self.peer_id, True)

    def _close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _mark_inactive(self, err: str) -> None:
        if self.active:
            self._log.warning("peer became inactive (message send to peer failed)", error=err)
        self.active = False
        self.down = True
        self._fail_queue()

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while True:
            url = self.urls[self._url_index % len(self.urls)] if self.urls else ""
            err = await self._connect_and_stream(url)
            if err == errors.PEER_REMOVED_MEMBER:
                return
            if self.active:  # the link worked before failing: start backing off afresh
                delay = BACKOFF_MIN
            self._close()
            self._mark_inactive(err)
            self._url_index += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connect_and_stream(self, url: str) -> str:
        """One connection's life; returns why it ended (an error string)."""
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or parts.hostname is None
            or parts.port is None
        ):
            return f"unsupported peer URL {url!r}"
        env = self._env
        ctx: ssl.SSLContext | None = None
        if parts.scheme == "https":
            ctx = env.client_ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(env.dial_timeout):
                reader, writer = await asyncio.open_connection(
                    parts.hostname, parts.port, ssl=ctx,
                    server_hostname=parts.hostname if ctx is not None else None,
                )
                # No slack below the high-water mark: the protocol pauses as soon as the
                # kernel refuses a byte, so `drain()` waits until our buffer is empty. With
                # asyncio's default limits drain() returned at once for a buffer of 1..64 KiB
                # (a peer or proxy that stopped reading), and `_stream`'s loop spun on it
                # without ever yielding: the whole event loop froze (no heartbeats, no reads).
                writer.transport.set_write_buffer_limits(high=0)
                self._writer = writer
                hello = wire.Hello(
                    cluster_id=env.cluster_id,
                    frm=env.local_id,
                    to=self.peer_id,
                    peer_urls=env.local_urls,
                    server_version=env.server_version,
                )
                writer.write(wire.MAGIC + wire.frame(hello.encode()))
                await writer.drain()
                reply = wire.Reply.decode(await wire.read_frame(reader, wire.MAX_HANDSHAKE))
        except (OSError, TimeoutError, EOFError, asyncio.IncompleteReadError) as exc:
            return f"dial {url}: {exc or type(exc).__name__}"
        except wire.FrameError as exc:
            return f"handshake with {url}: {exc}"
        if not reply.ok:
            return self._refused(url, reply)
        self.active = True
        self.down = False
        self._log.info("peer became active", **{"peer-url": url})
        return await self._stream(reader, writer)

    def _refused(self, url: str, reply: wire.Reply) -> str:
        env = self._env
        if reply.error == errors.PEER_REMOVED_MEMBER:
            self._log.error(
                errors.MEMBER_REMOVED_EXIT,
                **{"peer-url": url},
            )
            self.active = False
            self.down = True
            self._fail_queue()
            env.on_removed(self.peer_id)
            return reply.error
        if reply.error == errors.PEER_CLUSTER_ID_MISMATCH:
            self._log.warning(
                "request sent was ignored by remote peer due to cluster ID mismatch",
                **{
                    "remote-peer-cluster-id": format_id(reply.cluster_id),
                    "local-member-cluster-id": format_id(env.cluster_id),
                    "error": reply.error,
                },
            )
        else:
            self._log.warning("request sent was refused by remote peer", error=reply.error)
        return reply.error

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Write queued messages until the link fails; returns why it ended.

        While idle the task waits on one plain future (woken by `flush`, the remote's EOF or
        the keepalive timer; an asyncio.wait over two tasks per batch used to cost more than
        encoding the messages); `flush` writes directly while the task idles. `drain()` is
        awaited only when the kernel did not take a write at once.
        """
        env = self._env
        loop = asyncio.get_running_loop()
        eof = asyncio.ensure_future(reader.read(1))
        eof.add_done_callback(lambda _: self._poke(True))
        transport = writer.transport
        try:
            while True:
                if not self._queue and not transport.get_write_buffer_size():
                    waiter: asyncio.Future[bool] = loop.create_future()
                    self._waiter = waiter
                    timer = loop.call_later(env.keepalive, _resolve, waiter, False)
                    try:
                        woken = await waiter
                    finally:
                        timer.cancel()
                        self._waiter = None
                    if eof.done():
                        return "connection closed by remote peer"
                    if not woken and self._writer is writer and not self._queue:
                        writer.write(wire.frame(b""))  # keepalive
                if self._writer is not writer:
                    return "connection reset locally"
                self._write_queued(writer)
                if transport.is_closing() or transport.get_write_buffer_size():
                    # drain raises once the link is gone, and waits (the limits set at dial
                    # pause the protocol on any unsent byte) until the buffer is empty.
                    async with asyncio.timeout(env.write_timeout):
                        await writer.drain()
                elif self._queue:
                    await asyncio.sleep(0)  # a batch hit MAX_BATCH_BYTES: let others run
        except (OSError, TimeoutError) as exc:
            return f"write to peer failed: {exc or type(exc).__name__}"
        finally:
            eof.cancel()

    def _poke(self, value: bool) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(value)


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)
