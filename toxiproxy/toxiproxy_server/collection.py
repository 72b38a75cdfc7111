"""The set of proxies, keyed by unique name (Toxiproxy's ProxyCollection).

Callers serialise mutations (the API holds one lock per request), so methods
here may await without further locking. A proxy is in the collection only if
creating it (and starting it, when asked) succeeded.
"""

from __future__ import annotations

from typing import Any

from .errors import BAD_REQUEST_BODY, PROXY_ALREADY_EXISTS, PROXY_NOT_FOUND, ApiError
from .jsonfields import as_array, as_object, get_bool, get_str, json_kind, lookup
from .proxy import Proxy, check_fields

PROXY_STRUCT = "Proxy"


def parse_proxy_fields(
    obj: dict[str, Any], defaults: tuple[str, str, bool]
) -> tuple[str, str, bool]:
    """Read ``listen``, ``upstream``, ``enabled`` from a request object over ``defaults``."""
    listen = get_str(obj, "listen", PROXY_STRUCT, defaults[0])
    upstream = get_str(obj, "upstream", PROXY_STRUCT, defaults[1])
    enabled = get_bool(obj, "enabled", PROXY_STRUCT, defaults[2])
    return listen, upstream, enabled


class ProxyCollection:
    """All proxies of this server."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        """Return the proxy called ``name``; raise ``proxy not found`` (404)."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    async def add(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """Create a proxy, starting it if ``enabled``; 409 if the name is taken."""
        if name in self.proxies:
            raise PROXY_ALREADY_EXISTS
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def add_or_replace(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """Keep an existing proxy with the same addresses, else replace it with a new one."""
        existing = self.proxies.get(name)
        if existing is not None:
            if not existing.differs(listen, upstream):
                return existing
            await existing.stop()
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def remove(self, name: str) -> None:
        """Stop and delete a proxy; 404 if there is none."""
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (POST /reset)."""
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.toxics.clear()

    async def clear(self) -> None:
        """Stop and forget every proxy (server shutdown)."""
        for name in list(self.proxies):
            await self.remove(name)

    async def populate(self, body: Any) -> tuple[list[Proxy], ApiError | None]:
        """Create or replace many proxies (POST /populate).

        All entries are validated before any is applied. Returns the proxies
        created or kept, in request order, and the error that stopped the run.
        """
        entries = as_array(body, "[]toxiproxy.Proxy")
        parsed: list[tuple[str, str, str, bool]] = []
        for index, entry in enumerate(entries, start=1):
            if entry is not None and not isinstance(entry, dict):
                raise BAD_REQUEST_BODY.wrap(
                    f"json: cannot unmarshal {json_kind(entry)} into Go value of type "
                    "toxiproxy.Proxy"
                )
            obj = as_object(entry, "toxiproxy.Proxy")
            name = get_str(obj, "name", PROXY_STRUCT, "")
            listen, upstream, enabled = parse_proxy_fields(obj, ("", "", True))
            if lookup(obj, "enabled") is None:
                enabled = True
            check_fields(name, upstream, f" at proxy {index}")
            parsed.append((name, listen, upstream, enabled))
        done: list[Proxy] = []
        for name, listen, upstream, enabled in parsed:
            try:
                done.append(await self.add_or_replace(name, listen, upstream, enabled))
            except ApiError as exc:
                return done, exc
        return done, None
