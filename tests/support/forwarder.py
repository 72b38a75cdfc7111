"""A TCP forwarder between two loopback endpoints that a test can cut and restore: the
simplest link fault, in-process (no link proxy, no containers)."""

from __future__ import annotations

import asyncio

from harness.ports import free_port


class Forwarder:
    """A byte-for-byte TCP forwarder from its own port on 127.0.0.1 to `target_port` (TLS stays
    end to end): ``restore()`` starts listening (again), ``cut()`` stops listening and aborts
    every connection through it."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def restore(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            w.close()
            return
        self.writers.update({w, uw})
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))
