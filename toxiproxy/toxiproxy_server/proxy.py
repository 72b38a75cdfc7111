"""One proxy: a listener that joins each client to a new upstream connection.

Invariants (as Toxiproxy's Proxy):

* ``enabled`` is True exactly while the listener is open;
* while enabled, ``listen`` is the bound address (port 0 replaced by the real
  port); while disabled it is whatever was last given or bound;
* stopping closes the listener and drops every live connection at once;
* toxics belong to the proxy and survive disabling and re-enabling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from . import addresses
from .addresses import AddressError
from .chain import ToxicChain
from .errors import MISSING_FIELD, internal
from .link import Connection, Link
from .toxics import Direction

log = logging.getLogger(__name__)

#: How long a new client waits for the upstream connection before it is dropped.
DIAL_TIMEOUT = 30.0


class Proxy:
    """A named TCP proxy from ``listen`` to ``upstream`` with a chain of toxics."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicChain(self._links)
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._dialing: set[asyncio.StreamWriter] = set()

    def to_json(self) -> dict[str, Any]:
        """Return Toxiproxy's JSON form: proxy fields plus its toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics.all()],
        }

    def _links(self, direction: Direction) -> list[Link]:
        return [conn.links[direction] for conn in self._connections]

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Open the listener; raise a 500 ApiError (Go's text) if it cannot bind."""
        if self.enabled:
            return
        try:
            endpoint = addresses.resolve(self.listen)
        except AddressError as exc:
            raise internal(f"listen tcp: {exc}") from exc
        try:
            sock = addresses.bind_listener(endpoint)
        except OSError as exc:
            raise internal(f"listen tcp {endpoint}: bind: {addresses.os_error_text(exc)}") from exc
        self._server = await asyncio.start_server(self._accept, sock=sock)
        self.listen = addresses.bound_address(sock)
        self.enabled = True
        log.info("started proxy %s on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Close the listener and drop all connections; no-op when disabled."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._dialing):
            writer.transport.abort()
        for conn in list(self._connections):
            conn.abort()
        self._connections.clear()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5.0)
        log.info("stopped proxy %s", self.name)

    def differs(self, listen: str, upstream: str) -> bool:
        """True when ``listen``/``upstream`` name a different proxy than this one.

        Raises a 500 ApiError when ``listen`` cannot be resolved (Go's ResolveTCPAddr).
        """
        try:
            same = addresses.same_listen(self.listen, listen)
        except AddressError as exc:
            raise internal(str(exc)) from exc
        return not same or upstream != self.upstream

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply a proxy update: restart on address change, then enable/disable."""
        if self.differs(listen, upstream):
            await self.stop()
            self.listen, self.upstream = listen, upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled:
            await self.stop()

    # -- connections -------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._dialing.add(writer)
        try:
            upstream = await self._dial()
        except (OSError, TimeoutError, AddressError) as exc:
            log.warning("proxy %s: cannot reach upstream %s: %s", self.name, self.upstream, exc)
            writer.close()
            return
        finally:
            self._dialing.discard(writer)
        if not self.enabled or writer.transport.is_closing():
            upstream[1].transport.abort()
            writer.transport.abort()
            return
        conn = Connection((reader, writer), upstream, self.toxics.snapshot(), self._forget)
        self._connections.add(conn)

    async def _dial(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port_text = addresses.split_host_port(self.upstream)
        port = addresses.parse_port(self.upstream, port_text)
        return await asyncio.wait_for(
            asyncio.open_connection(host or "localhost", port), DIAL_TIMEOUT
        )

    def _forget(self, conn: Connection) -> None:
        self._connections.discard(conn)


def check_fields(name: str, upstream: str, where: str = "") -> None:
    """Raise ``missing required field: name|upstream`` as Toxiproxy does."""
    if not name:
        raise MISSING_FIELD.wrap(f"name{where}")
    if not upstream:
        raise MISSING_FIELD.wrap(f"upstream{where}")
