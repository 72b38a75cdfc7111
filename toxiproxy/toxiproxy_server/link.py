"""A proxied TCP connection and its two links (one per direction).

A :class:`Link` copies bytes from a source socket to a destination socket
through its stages (the proxy's toxics for that direction, in chain order).
A reader task timestamps chunks into a queue; a pump task runs each chunk
through the stages and writes the result. Chunks leave in the order they came.

How links end (as in Toxiproxy):

* end of input: the stages see it (slow_close waits, reset_peer resets), then
  the destination is closed after all earlier data was written;
* a toxic closes the link (timeout fired, limit_data reached, a timeout toxic
  removed): the destination is closed; the other link then sees end of input;
* reset_peer: both sockets are closed with SO_LINGER 0, so both peers get RST;
* the proxy stops: both sockets are aborted at once.

A :class:`Connection` is finished when both its pumps have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

from .stage import BEHAVIOURS, Chunk, CloseLink, Stage, on_end_of_input
from .toxics import Direction, Toxic

log = logging.getLogger(__name__)

READ_SIZE = 32 * 1024
#: Chunks a link buffers between reading and writing (Toxiproxy's latency buffer).
QUEUE_CHUNKS = 1024


class Link:
    """One direction of a connection: source -> stages -> destination."""

    def __init__(
        self,
        connection: Connection,
        direction: Direction,
        source: asyncio.StreamReader,
        dest: asyncio.StreamWriter,
        toxics: list[Toxic],
    ) -> None:
        self.connection = connection
        self.direction = direction
        self._source = source
        self._dest = dest
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue(QUEUE_CHUNKS)
        self.stages: list[Stage] = []
        self._end_mode: str | None = None
        for toxic in toxics:
            self.attach(toxic)
        self._reader = asyncio.create_task(self._read())
        self.pump = asyncio.create_task(self._pump())

    # -- toxic chain changes -------------------------------------------------

    def attach(self, toxic: Toxic, state: dict[str, float] | None = None) -> None:
        """Add ``toxic`` at the end of this link's chain (toxicity rolled now)."""
        stage = Stage.attach(toxic, state)
        self.stages.append(stage)
        self._start_timer(stage)

    def reattach(self, toxic: Toxic) -> None:
        """Restart ``toxic`` after an update: new roll and timer, same state."""
        for index, stage in enumerate(self.stages):
            if stage.toxic is toxic:
                stage.detach()
                fresh = Stage.attach(toxic, stage.state)
                self.stages[index] = fresh
                self._start_timer(fresh)
                return

    def detach(self, toxic: Toxic) -> None:
        """Remove ``toxic`` from this link; removing an applied timeout closes the link."""
        for index, stage in enumerate(self.stages):
            if stage.toxic is toxic:
                stage.detach()
                del self.stages[index]
                if toxic.type == "timeout" and stage.applied:
                    self.end("close")
                return

    def _start_timer(self, stage: Stage) -> None:
        if stage.applied and stage.toxic.type == "timeout" and stage.toxic.attr("timeout") > 0:
            stage.timer = asyncio.create_task(self._timeout_fires(stage))

    async def _timeout_fires(self, stage: Stage) -> None:
        if await stage.wait(stage.toxic.attr("timeout") / 1000.0):
            stage.timer = None
            self.end("close")

    # -- data path -----------------------------------------------------------

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self._source.read(READ_SIZE)
                if not data:
                    break
                await self._queue.put(Chunk(data, loop.time()))
        except (ConnectionError, OSError):
            pass  # a broken source is the end of input, as for Toxiproxy's io.Copy
        if self._end_mode is None:
            # Cancelled here only by _finish, which sets _end_mode first.
            await self._queue.put(None)

    async def _through(self, chunk: Chunk, stages: list[Stage], index: int) -> None:
        while index < len(stages):
            stage = stages[index]
            if stage.applied and not stage.interrupted:
                behaviour = BEHAVIOURS[stage.toxic.type]
                nxt = index + 1

                async def emit(out: Chunk, nxt: int = nxt) -> None:
                    await self._through(out, stages, nxt)

                await behaviour(stage, chunk, emit)
                return
            index += 1
        await self._write(chunk.data)

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._dest.transport.is_closing():
            raise ConnectionResetError("destination closed")
        self._dest.write(data)
        await self._dest.drain()

    async def _pump(self) -> None:
        mode = "close"
        try:
            while True:
                chunk = await self._queue.get()
                if chunk is None:
                    for stage in list(self.stages):
                        await on_end_of_input(stage)
                    break
                await self._through(chunk, list(self.stages), 0)
        except CloseLink as signal:
            mode = "reset" if signal.reset else "close"
        except (ConnectionError, OSError):
            mode = "abort"
        except asyncio.CancelledError:
            mode = self._end_mode or "abort"
        finally:
            self._finish(mode)

    def end(self, mode: str) -> None:
        """Stop this link from outside its pump: ``close``, ``reset`` or ``abort``."""
        if self._end_mode is None:
            self._end_mode = mode
        if not self.pump.done():
            self.pump.cancel()

    def _finish(self, mode: str) -> None:
        self._end_mode = self._end_mode or mode
        for stage in self.stages:
            stage.detach()
        self._reader.cancel()
        if mode == "reset":
            self.connection.reset()
        elif mode == "abort":
            self._dest.transport.abort()
        else:
            self._dest.close()
        self.connection.link_finished()


def _set_linger_zero(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Connection:
    """A client connection and its upstream connection, joined by two links."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        chains: dict[Direction, list[Toxic]],
        on_finished: Callable[[Connection], None],
    ) -> None:
        self._client_writer = client[1]
        self._upstream_writer = upstream[1]
        self._on_finished = on_finished
        self._finished_links = 0
        self.links: dict[Direction, Link] = {
            Direction.UPSTREAM: Link(
                self, Direction.UPSTREAM, client[0], upstream[1], chains[Direction.UPSTREAM]
            ),
            Direction.DOWNSTREAM: Link(
                self, Direction.DOWNSTREAM, upstream[0], client[1], chains[Direction.DOWNSTREAM]
            ),
        }

    def reset(self) -> None:
        """Close both sockets with RST (SO_LINGER 0), dropping unsent data."""
        for writer in (self._client_writer, self._upstream_writer):
            _set_linger_zero(writer)
            writer.transport.abort()

    def abort(self) -> None:
        """Drop the connection at once (proxy stopped): abort both sockets, end both links."""
        for writer in (self._client_writer, self._upstream_writer):
            writer.transport.abort()
        for link in self.links.values():
            link.end("abort")

    def link_finished(self) -> None:
        """Called once by each link as it ends; the second call finishes the connection."""
        self._finished_links += 1
        if self._finished_links == 2:
            self._on_finished(self)
