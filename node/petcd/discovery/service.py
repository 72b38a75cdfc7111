"""v2 discovery bootstrap (`--discovery URL`), as etcd 3.5's v2discovery.

The discovery URL names a directory on any server with the v2 keys API (etcd or petcd with
--enable-v2), e.g. `http://127.0.0.1:2379/v2/keys/discovery/<token>`; `<dir>/_config/size`
holds the expected cluster size. A new member

1. reads the size (missing: "discovery: size key not found"; not a number: "size key is bad");
2. registers itself with a create (prevExist=false) of `<dir>/<member id hex>` whose value is
   its own `name=peerURL,...` (the key exists already: "discovery: found duplicate id");
3. lists the directory; when `size` other members registered before it (by createdIndex):
   "discovery: cluster is full";
4. waits (wait=true, recursive, from the listing's X-Etcd-Index) until `size` members are
   registered, and joins the values into the initial cluster; two registrations with one name
   fail with "discovery: found duplicate name".

Member IDs of a discovery cluster are computed with the discovery URL as the cluster token, as
etcd does. Unreachable discovery servers are retried with etcd's backoff (2s, 4s, .. 256s).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from petcd import errors
from petcd.discovery.httpclient import HttpError, request
from petcd.logutil import Logger

MAX_EXPONENTIAL_RETRIES = 8
REQUEST_TIMEOUT = 5.0
MAX_RETRIES = 2**32 - 1


class DiscoveryError(Exception):
    """A discovery failure; `str()` is etcd's DiscoveryError text, `err` the cause."""

    def __init__(self, err: str, op: str = "join") -> None:
        super().__init__(f"failed to {op} discovery cluster ({err})")
        self.err = err
        self.nodes: list[RegNode] = []
        self.size = 0


@dataclass(slots=True)
class RegNode:
    key: str
    value: str
    created: int


def _base(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def parse_urls_map(s: str) -> dict[str, list[str]]:
    """etcd's types.NewURLsMap of "name=url,name=url" (ValueError when malformed)."""
    out: dict[str, list[str]] = {}
    for part in s.split(","):
        name, sep, url = part.partition("=")
        if not sep:
            raise ValueError(f"missing '=' in {part!r}")
        u = urlsplit(url.strip())
        if u.scheme not in ("http", "https", "unix", "unixs") or ":" not in u.netloc:
            raise ValueError(f"bad URL {url!r}")
        out.setdefault(name, []).append(url.strip())
    return out


class Discovery:
    """One member's registration with a v2 discovery directory."""

    def __init__(self, durl: str, member_id: int, log: Logger,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        u = urlsplit(durl)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise DiscoveryError(errors.DISCOVERY_INVALID_URL)
        self.base = f"{u.scheme}://{u.netloc}"
        self.cluster = "/" + u.path.strip("/")
        self.member_id = member_id
        self.log = log
        self.retries = 0
        self._sleep = sleep

    @property
    def self_key(self) -> str:
        return f"{self.cluster}/{self.member_id:x}"

    async def _req(self, method: str, key: str, query: str = "", body: str | None = None,
                   timeout: float | None = REQUEST_TIMEOUT) -> tuple[int, dict[str, str], Any]:
        url = self.base + quote(key) + (f"?{query}" if query else "")
        status, headers, raw = await request(method, url, body, timeout)
        try:
            doc = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise DiscoveryError(errors.DISCOVERY_BAD_ENDPOINT) from None
        return status, headers, doc

    async def _backoff(self, step: str) -> None:
        self.retries += 1
        if self.retries >= MAX_RETRIES:
            raise DiscoveryError(errors.DISCOVERY_TOO_MANY_RETRIES)
        wait = float(1 << min(self.retries, MAX_EXPONENTIAL_RETRIES))
        self.log.info("retry connecting to discovery service", url=self.base, reason=step,
                      backoff=f"{wait:g}s")
        await self._sleep(wait)

    async def check_cluster(self) -> tuple[list[RegNode], int, int]:
        """(registered members by createdIndex, size, X-Etcd-Index); raises DiscoveryError
        (cluster is full: `.nodes` holds the first `size`)."""
        while True:
            try:
                return await self._check_once()
            except HttpError as exc:
                self.log.warning("failed to get from discovery server", **{
                    "discovery-url": self.base + self.cluster, "error": str(exc)})
                await self._backoff("cluster status check")

    async def _check_once(self) -> tuple[list[RegNode], int, int]:
        status, _, doc = await self._req("GET", f"{self.cluster}/_config/size")
        if status == 404 and isinstance(doc, dict) and doc.get("errorCode") == 100:
            raise DiscoveryError(errors.DISCOVERY_SIZE_NOT_FOUND)
        if status != 200 or not isinstance(doc, dict):
            raise HttpError(f"unexpected status {status} reading the size key")
        value = str(doc.get("node", {}).get("value", ""))
        if not value.isdigit():
            raise DiscoveryError(errors.DISCOVERY_BAD_SIZE_KEY)
        size = int(value)
        status, headers, doc = await self._req("GET", self.cluster)
        if status != 200 or not isinstance(doc, dict):
            raise HttpError(f"unexpected status {status} listing the discovery directory")
        index = int(headers.get("x-etcd-index", "0") or 0)
        nodes = [
            RegNode(str(n.get("key", "")), str(n.get("value", "")), int(n.get("createdIndex", 0)))
            for n in doc.get("node", {}).get("nodes", []) or []
            if _base(str(n.get("key", ""))) != "_config"
        ]
        nodes.sort(key=lambda n: n.created)
        me = _base(self.self_key)
        for i, n in enumerate(nodes):
            if _base(n.key) == me:
                break
            if i >= size - 1:
                err = DiscoveryError(errors.DISCOVERY_FULL_CLUSTER)
                err.nodes, err.size = nodes[:size], size
                raise err
        return nodes, size, index

    async def create_self(self, contents: str) -> None:
        while True:
            try:
                status, _, doc = await self._req(
                    "PUT", self.self_key, "prevExist=false",
                    f"value={quote(contents, safe='')}")
            except HttpError as exc:
                self.log.warning("failed to register with discovery server", error=str(exc))
                await self._backoff("registering self")
                continue
            if status == 412 and isinstance(doc, dict) and doc.get("errorCode") == 105:
                raise DiscoveryError(errors.DISCOVERY_DUPLICATE_ID)
            if status not in (200, 201):
                raise DiscoveryError(errors.DISCOVERY_REGISTER_STATUS.format(status=status))
            return

    async def wait_nodes(self, nodes: list[RegNode], size: int, index: int) -> list[RegNode]:
        all_nodes = list(nodes[:size])
        for n in all_nodes:
            what = "self" if _base(n.key) == _base(self.self_key) else "peer"
            self.log.info(f"found {what} from discovery server", **{what: _base(n.key)})
        wait_index = index + 1
        while len(all_nodes) < size:
            self.log.info("found peers from discovery server; waiting for more", **{
                "found-peers": len(all_nodes), "needed-peers": size - len(all_nodes)})
            try:
                status, _, doc = await self._req(
                    "GET", self.cluster, f"wait=true&recursive=true&waitIndex={wait_index}",
                    timeout=None)
            except HttpError as exc:
                self.log.warning("error while waiting for peers", error=str(exc))
                await self._backoff("waiting for other nodes")
                nodes, size, index = await self.check_cluster()
                return await self.wait_nodes(nodes, size, index)
            if status != 200 or not isinstance(doc, dict) or "node" not in doc:
                raise DiscoveryError(errors.DISCOVERY_WAIT_STATUS.format(status=status))
            node = doc["node"]
            wait_index = int(node.get("modifiedIndex", wait_index)) + 1
            self.log.info("found peer from discovery server", peer=_base(str(node.get("key"))))
            all_nodes.append(RegNode(str(node.get("key", "")), str(node.get("value", "")),
                                     int(node.get("createdIndex", 0))))
        self.log.info("found all needed peers from discovery server",
                      **{"found-peers": len(all_nodes)})
        return all_nodes

    async def join_cluster(self, config: str) -> str:
        """Register `config` ("name=url,..." of this member) and return the whole cluster."""
        await self.check_cluster()
        await self.create_self(config)
        nodes, size, index = await self.check_cluster()
        return nodes_to_cluster(await self.wait_nodes(nodes, size, index), size)


def nodes_to_cluster(nodes: list[RegNode], size: int) -> str:
    us = ",".join(n.value for n in nodes)
    try:
        m = parse_urls_map(us)
    except ValueError:
        raise DiscoveryError(errors.DISCOVERY_INVALID_URL) from None
    if len(m) != size:
        raise DiscoveryError(errors.DISCOVERY_DUPLICATE_NAME)
    return us
