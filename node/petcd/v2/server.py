"""The v2 store on one member: requests through Raft, apply, persistence, TTL expiry.

Contract:
- `install(server)` (an `assembly.INSTALLERS` entry) hangs a `V2Server` on `server.v2`, routes
  `InternalRaftRequest.v2` entries to it and reloads the store after a snapshot from the leader.
  The store is separate from the v3 MVCC store and exists whether or not --enable-v2 is given
  (as in etcd); `server.options.enable_v2` only decides whether the HTTP API is served.
- A write is a `V2Request` (JSON in the `v2` bytes field). Its apply changes the store and
  writes the changed nodes, the store index and the entry's index (the consistent index) in one
  backend batch in bucket `v2store`; a restart or a snapshot carries the store.
- Expiry times are absolute (ns), fixed by the member that received the request. Only the
  leader expires keys: when the earliest expiry has passed it proposes a SYNC entry carrying
  its clock, and every member deletes the nodes expired by that time (etcd's SYNC).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from petcd import errors
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.raft.types import Entry
from petcd.storage import buckets
from petcd.storage.backend import Batch
from petcd.v2 import errors as e2
from petcd.v2.errors import V2Error
from petcd.v2.store import Store
from petcd.v2.watch import Event

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

SYNC_INTERVAL = 0.5
"""How often the leader checks for expired keys (etcd: 500ms)."""
INDEX_KEY = b"\x00index"
"""The store index in the v2store bucket (node records are keyed by their path, "/...")."""


@dataclass(slots=True)
class V2Request:
    """One replicated v2 operation. `method` is PUT, POST, DELETE or SYNC (etcd's methods)."""

    method: str
    path: str = "/"
    val: str = ""
    dir: bool = False
    prev_value: str = ""
    prev_index: int = 0
    prev_exist: bool | None = None
    recursive: bool = False
    refresh: bool = False
    expiration: int = 0
    time: int = 0

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> V2Request:
        doc = json.loads(raw)
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


@dataclass(slots=True)
class V2Result:
    """What a v2 apply answers: the event (None for SYNC)."""

    event: Event | None


class V2Server:
    """The v2 store of one `EtcdServer` (see the module docstring)."""

    def __init__(self, server: EtcdServer) -> None:
        self.server = server
        self.store = Store()
        self.enabled = False
        self.start_ns = time.time_ns()
        self.leader_start_ns = self.start_ns
        self.reload()

    # -- persistence ------------------------------------------------------------------------

    def reload(self) -> None:
        """Rebuild the store from the backend (start, or after a snapshot restore)."""
        b = self.server.backend
        raw = b.get(buckets.V2STORE, INDEX_KEY)
        index = int(raw) if raw else 0
        records = [
            (k.decode(), v)
            for k, v in b.iterate(buckets.V2STORE, b"/", b"0")
        ]
        self.store.load(index, records)

    def _persist(self, e: Entry) -> None:
        batch = Batch()
        for path, node in self.store.dirty.items():
            if node is None:
                batch.delete(buckets.V2STORE, path.encode())
            else:
                batch.put(buckets.V2STORE, path.encode(), Store.encode_node(node))
        self.store.dirty.clear()
        batch.put(buckets.V2STORE, INDEX_KEY, str(self.store.index).encode())
        self.server.store.save_consistent_index(e.index, e.term, batch=batch)
        self.server.backend.write(batch)

    # -- apply ------------------------------------------------------------------------------

    def apply(self, data: bytes, e: Entry) -> Any:
        """Apply one v2 entry; returns a `V2Result` or the `V2Error` the request met."""
        try:
            r = V2Request.decode(data)
        except (ValueError, TypeError):
            self.server.log.error("skipping undecodable v2 request", index=e.index)
            self._persist(e)
            return V2Error(e2.RAFT_INTERNAL, "undecodable v2 request", 0)
        try:
            result: Any = V2Result(self._apply(r))
        except V2Error as err:
            result = err
        self._persist(e)
        return result

    def _apply(self, r: V2Request) -> Event | None:
        s = self.store
        if r.method == "POST":
            return s.create(r.path, r.dir, r.val, True, r.expiration)
        if r.method == "PUT":
            if r.prev_exist is True:
                if r.prev_index == 0 and r.prev_value == "":
                    return s.update(r.path, r.val, r.expiration, r.refresh)
                return s.compare_and_swap(r.path, r.prev_value, r.prev_index, r.val,
                                          r.expiration, r.refresh)
            if r.prev_exist is False:
                return s.create(r.path, r.dir, r.val, False, r.expiration)
            if r.prev_index > 0 or r.prev_value != "":
                return s.compare_and_swap(r.path, r.prev_value, r.prev_index, r.val,
                                          r.expiration, r.refresh)
            return s.set(r.path, r.dir, r.val, r.expiration, r.refresh)
        if r.method == "DELETE":
            if r.prev_index > 0 or r.prev_value != "":
                return s.compare_and_delete(r.path, r.prev_value, r.prev_index)
            return s.delete(r.path, r.dir, r.recursive)
        if r.method == "SYNC":
            s.delete_expired(r.time)
            return None
        raise V2Error(e2.RAFT_INTERNAL, errors.V2_UNKNOWN_METHOD, 0)

    # -- requests ---------------------------------------------------------------------------

    async def propose(self, r: V2Request) -> Event | None:
        """Replicate `r`; its event once applied here, or raise `V2Error`/`EtcdError`."""
        result = await self.server.propose(ipb.InternalRaftRequest(v2=r.encode()))
        if isinstance(result, V2Error):
            raise result
        if not isinstance(result, V2Result):
            raise V2Error(e2.RAFT_INTERNAL, "unexpected v2 apply result", 0)
        return result.event

    async def expiry_loop(self) -> None:
        """On the leader, propose a SYNC whenever a TTL has run out."""
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            if not self.server.is_leader:
                continue
            nxt = self.store.next_expiry()
            now = time.time_ns()
            if nxt == 0 or nxt > now:
                continue
            try:
                await self.propose(V2Request("SYNC", time=now))
            except (errors.EtcdError, V2Error) as err:
                self.server.log.warning("v2 expiry sync failed", error=str(err))

    def on_leader(self, is_leader: bool) -> None:
        if is_leader:
            self.leader_start_ns = time.time_ns()


def install(server: EtcdServer) -> None:
    """Set `server.v2` and route `v2` entries to it; --enable-v2 (`server.options`) only
    decides whether the HTTP API is served."""
    v2 = V2Server(server)
    v2.enabled = server.options.enable_v2
    server.v2 = v2
    server.register_apply("v2", v2.apply)
    server.restore_listeners.append(v2.reload)
    server.leader_listeners.append(v2.on_leader)
    server.add_task("v2-expiry", v2.expiry_loop)


def get(server: EtcdServer) -> V2Server | None:
    """The server's v2 subsystem, if installed."""
    return server.v2

