"""Fault handles for the links of a proxied topology, driven through `toxiproxy-python`.

`compose/docker-compose.toxiproxy.yml` puts one Toxiproxy proxy on every directed peer link,
named `<src>_to_<dst>` (`node1_to_node2`), and one on every member's client port,
`client_to_<member>`. A `Link` is one such proxy; `ToxiproxyLinks` finds them by name on one
Toxiproxy server (ours, `petcd/toxiproxy`, or Shopify's: same HTTP API).

What a directed link carries: every TCP connection that `src` opens to `dst`'s peer port, with
data in both directions. Toxiproxy's `upstream` stream is the bytes `src` sends, `downstream`
the bytes `dst` sends back. etcd's rafthttp uses both directions of a connection (a member reads
its peer's stream messages on a connection it opened itself), so the fault helpers here default
to `stream="both"`; pass `upstream` or `downstream` to shape one direction only.

Invariants:
- toxiproxy-python keeps the server address in class attributes (`APIConsumer.host/port`), so
  every call here binds it to this server under a lock first; several clusters (and servers)
  in one process therefore never talk to each other's proxies.
- `cut` disables the proxy: its listener closes and live connections drop, so `src` gets
  "connection refused" on `dst`'s peer address; `heal` enables it and removes its toxics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy

Stream = Literal["upstream", "downstream", "both"]

_API_LOCK = threading.RLock()


class LinkError(RuntimeError):
    """The Toxiproxy server does not have the proxy, or refused a change."""


def link_name(src: str, dst: str) -> str:
    """Name of the proxy on the directed peer link src -> dst."""
    return f"{src}_to_{dst}"


def client_link_name(member: str) -> str:
    """Name of the proxy in front of a member's client port."""
    return f"client_to_{member}"


class ToxiproxyLinks:
    """The proxies of one Toxiproxy server, addressed by link name."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextmanager
    def api(self) -> Iterator[Toxiproxy]:
        """A toxiproxy-python client bound to this server for the duration of the block."""
        with _API_LOCK:
            saved = (APIConsumer.host, APIConsumer.port)
            server = Toxiproxy()
            server.update_api_consumer(self.host, self.port)
            try:
                yield server
            finally:
                APIConsumer.host, APIConsumer.port = saved

    def names(self) -> list[str]:
        """Names of every proxy on the server."""
        with self.api() as server:
            return sorted(server.proxies())

    def link(self, name: str) -> Link:
        """The proxy called `name` (raises `LinkError` if the server has none)."""
        if name not in self.names():
            raise LinkError(f"Toxiproxy at {self.url} has no proxy {name!r}")
        return Link(self, name)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (Toxiproxy's POST /reset)."""
        with self.api() as server:
            server.reset()


class Link:
    """One proxy: enable/disable it and add or remove toxics on it."""

    def __init__(self, links: ToxiproxyLinks, name: str) -> None:
        self.links = links
        self.name = name

    def __repr__(self) -> str:
        return f"Link({self.name!r} at {self.links.url})"

    def _proxy(self, server: Toxiproxy) -> Any:
        proxy = server.get_proxy(self.name)
        if proxy is None:
            raise LinkError(f"Toxiproxy at {self.links.url} has no proxy {self.name!r}")
        return proxy

    # ---- state ---------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        with self.links.api() as server:
            return bool(self._proxy(server).enabled)

    def toxics(self) -> dict[str, dict[str, Any]]:
        """The proxy's toxics by name: type, stream, toxicity and attributes."""
        with self.links.api() as server:
            found = self._proxy(server).toxics()
            return {
                name: {"type": t.type, "stream": t.stream, "toxicity": t.toxicity,
                       "attributes": dict(t.attributes)}
                for name, t in found.items()
            }

    # ---- cut and heal --------------------------------------------------------------------------

    def cut(self) -> None:
        """Disable the proxy: close its listener and drop its connections."""
        with self.links.api() as server:
            self._proxy(server).disable()

    def heal(self) -> None:
        """Enable the proxy and remove all its toxics."""
        with self.links.api() as server:
            proxy = self._proxy(server)
            for name in proxy.toxics():
                proxy.destroy_toxic(name)
            proxy.enable()

    def clear(self) -> None:
        """Remove all toxics (the proxy stays enabled or disabled as it is)."""
        with self.links.api() as server:
            proxy = self._proxy(server)
            for name in proxy.toxics():
                proxy.destroy_toxic(name)

    # ---- toxics --------------------------------------------------------------------------------

    def add_toxic(self, kind: str, stream: Stream = "both", toxicity: float = 1.0,
                  name: str | None = None, **attributes: int) -> list[str]:
        """Add a toxic of type `kind` on `stream` (both: one toxic per direction).

        Returns the toxic names (`<name or kind>_<stream>`). The server's error (unknown type,
        duplicate name) is raised as `LinkError` with Toxiproxy's message.
        """
        streams = ["upstream", "downstream"] if stream == "both" else [stream]
        made: list[str] = []
        with self.links.api() as server:
            proxy = self._proxy(server)
            for s in streams:
                toxic = f"{name or kind}_{s}"
                try:
                    proxy.add_toxic(name=toxic, type=kind, stream=s, toxicity=toxicity,
                                    attributes=attributes)
                except Exception as exc:  # toxiproxy-python raises its own untyped errors
                    raise LinkError(f"{self.name}: adding {kind} on {s} failed: {exc}") from exc
                made.append(toxic)
        return made

    def remove_toxic(self, name: str) -> None:
        with self.links.api() as server:
            self._proxy(server).destroy_toxic(name)

    def latency(self, ms: int, jitter: int = 0, stream: Stream = "both") -> list[str]:
        """Delay every chunk by `ms` ± `jitter` milliseconds."""
        return self.add_toxic("latency", stream, latency=ms, jitter=jitter)

    def bandwidth(self, kb_per_s: int, stream: Stream = "both") -> list[str]:
        """Limit the rate to `kb_per_s` KB/s."""
        return self.add_toxic("bandwidth", stream, rate=kb_per_s)

    def timeout(self, ms: int, stream: Stream = "both") -> list[str]:
        """Drop all data; close the connection after `ms` (0: hold it open, a black hole)."""
        return self.add_toxic("timeout", stream, timeout=ms)

    def reset_peer(self, ms: int = 0, stream: Stream = "both") -> list[str]:
        """Reset (RST) connections `ms` after their first data."""
        return self.add_toxic("reset_peer", stream, timeout=ms)

    def slow_close(self, ms: int, stream: Stream = "both") -> list[str]:
        """Delay the close of a connection by `ms`."""
        return self.add_toxic("slow_close", stream, delay=ms)

    def slicer(self, average_size: int, size_variation: int = 0, delay_us: int = 0,
               stream: Stream = "both") -> list[str]:
        """Split data into small writes."""
        return self.add_toxic("slicer", stream, average_size=average_size,
                              size_variation=size_variation, delay=delay_us)

    def limit_data(self, nbytes: int, stream: Stream = "both") -> list[str]:
        """Close each connection after `nbytes` bytes."""
        return self.add_toxic("limit_data", stream, bytes=nbytes)
