"""Distributed mutexes and elections served by a member itself (what etcd 3.5 runs behind its
v3lock and v3election services with clientv3's `concurrency` package), on the local
EtcdServer: every write goes through Raft (`server.txn`), every read is linearizable
(`server.range`), and every wait is a watch on the member's watch hub (no polling).

Key layout, shared with clients that use `concurrency` themselves (etcdctl lock / elect), so
both kinds of contender queue up on the same keys:

- A contender for mutex or election `name` owns the key `name/<lease ID in lowercase hex>`,
  bound to that lease. Contenders are ordered by the key's create revision; the oldest holds
  the mutex / is the leader.
- A contender with create revision R holds once no key under `name/` with a create revision
  below R is left (`wait_deletes`: repeatedly wait for the deletion of the youngest such key).

Sessions: a request with lease 0 gets a fresh 60-second lease that nobody keeps alive (etcd's
NewSession + Orphan), so its key disappears when that lease expires. A given lease is used as
is; if it does not exist, the put fails with "etcdserver: requested lease not found".

Cancellation (the client went away or its deadline passed while waiting): a waiting Lock
deletes its key, a waiting Campaign resigns (deletes the key if its create revision is still
the one it got), as etcd does. That cleanup runs in a background task because the waiting
task itself is being cancelled; it is bounded by the server's request timeout.

Authorization: etcd's in-process client carries the caller's credentials, so every request
it makes is checked as the caller's own. Here a gRPC adapter may set `REQUEST_GUARD` for the
call (a context variable: per RPC task, inherited by its cleanup tasks); each Txn, Range,
DeleteRange and LeaseGrant this module issues is passed to it first.

Errors are `EtcdError`s carrying etcd's text; etcd's server returns all of them to the
client with status UNKNOWN (the adapters map them).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.mvccpb import kv_pb2 as mvccpb
from petcd.mvcc.kv import EventType
from petcd.server import alarms
from petcd.server.applier import to_pb_kv
from petcd.server.watch_hub import WatchStream, hub_of
from petcd.server.watcher import WatchResponse, WatchSpec
from petcd.server.watcher_group import prefix_end

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

Request = pb.TxnRequest | pb.RangeRequest | pb.DeleteRangeRequest | pb.LeaseGrantRequest
Guard = Callable[[Request], Awaitable[None]]
"""Checks one request on behalf of the caller; raises `EtcdError` to refuse it."""

REQUEST_GUARD: contextvars.ContextVar[Guard | None] = contextvars.ContextVar(
    "concurrency_request_guard", default=None
)
"""The current caller's guard (None: no check beyond the quota)."""

SESSION_TTL = 60
"""TTL of the lease granted for a request without one (clientv3 concurrency's default)."""

@dataclass(frozen=True, slots=True)
class LeaderKey:
    """A campaign's claim, as v3electionpb.LeaderKey: the election `name`, the contender's
    `key`, its create revision `rev` and `lease`."""

    name: bytes
    key: bytes
    rev: int
    lease: int


def contender_key(name: bytes, lease: int) -> bytes:
    """`name/<lease hex>`: Go's `%x` of the lease ID (lowercase, no padding, '-' if negative)."""
    return name + b"/" + format(lease, "x").encode()


def _prefix_range(pfx: bytes, *, descend: bool, max_create_rev: int = 0) -> pb.RangeRequest:
    """The oldest (or, `descend`, youngest) key under `pfx` by create revision."""
    order = pb.RangeRequest.DESCEND if descend else pb.RangeRequest.ASCEND
    return pb.RangeRequest(
        key=pfx,
        range_end=prefix_end(pfx) or b"\x00",
        limit=1,
        sort_target=pb.RangeRequest.CREATE,
        sort_order=order,
        max_create_revision=max_create_rev,
    )


def _created_is(key: bytes, rev: int) -> pb.Compare:
    return pb.Compare(
        key=key, target=pb.Compare.CREATE, result=pb.Compare.EQUAL, create_revision=rev
    )


def _put(key: bytes, value: bytes, lease: int) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, lease=lease))


def _get(r: pb.RangeRequest) -> pb.RequestOp:
    return pb.RequestOp(request_range=r)


class _Watch:
    """One watch on the hub, in a stream of its own. `next()` returns the next response that
    carries events, or None once the watch ended (canceled, compacted: `compacted` is set,
    or the stream closed). Always `close()` it."""

    def __init__(self, server: EtcdServer, key: bytes, end: bytes, start_rev: int) -> None:
        self.stream: WatchStream = hub_of(server).new_stream()
        self.stream.create(WatchSpec(key=key, range_end=end, start_revision=start_rev))
        self.compacted = False

    async def next(self) -> WatchResponse | None:
        while True:
            resp = await self.stream.get()
            if resp is None:
                return None
            if resp.canceled:
                self.compacted = resp.compact_revision != 0
                return None
            if resp.events:
                return resp

    def close(self) -> None:
        self.stream.close()


class Concurrency:
    """Mutex and election operations of one member (see the module docstring)."""

    def __init__(self, server: EtcdServer) -> None:
        self.s = server
        self._cleanups: set[asyncio.Task[None]] = set()

    # -- shared primitives ------------------------------------------------------------------

    async def session_lease(self, lease: int) -> int:
        """`lease`, or a fresh SESSION_TTL lease if it is 0 (etcd's NewSession)."""
        if lease != 0:
            return lease
        ops = self.s.leases
        if ops is None:
            raise errors.NOT_CAPABLE
        req = pb.LeaseGrantRequest(TTL=SESSION_TTL)
        await self._admit(req)
        resp = await ops.grant(req)
        return int(resp.ID)

    async def _admit(self, req: Request) -> None:
        """The caller's guard, then (for writes) the quota check: etcd's in-process client
        reaches KV Put/Txn and LeaseGrant through its quota wrappers."""
        guard = REQUEST_GUARD.get()
        if guard is not None:
            await guard(req)
        if isinstance(req, pb.TxnRequest | pb.LeaseGrantRequest):
            a = alarms.get(self.s)
            if a is not None:
                await a.check_write(req)

    async def _txn(self, req: pb.TxnRequest) -> pb.TxnResponse:
        await self._admit(req)
        return await self.s.txn(req)

    async def _range(self, req: pb.RangeRequest) -> pb.RangeResponse:
        await self._admit(req)
        return await self.s.range(req)

    def header(self, rev: int) -> pb.ResponseHeader:
        """A response header of this member at revision `rev`."""
        return self.s.header(pb.RangeResponse(), rev).header

    async def wait_delete(self, key: bytes, rev: int) -> None:
        """Return once `key` is deleted at or after revision `rev`."""
        w = _Watch(self.s, key, b"", rev)
        try:
            while (resp := await w.next()) is not None:
                if any(ev.type is EventType.DELETE for ev in resp.events):
                    return
            raise errors.COMPACTED if w.compacted else errors.LOST_WATCHER
        finally:
            w.close()

    async def wait_deletes(self, pfx: bytes, max_create_rev: int) -> pb.ResponseHeader:
        """Return (with the last read's header) once no key under `pfx` has a create revision
        of at most `max_create_rev`; waits for the youngest such key at a time."""
        query = _prefix_range(pfx, descend=True, max_create_rev=max_create_rev)
        while True:
            resp = await self._range(query)
            if not resp.kvs:
                return resp.header
            await self.wait_delete(resp.kvs[0].key, resp.header.revision)

    def _in_background(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """Run a cleanup the cancelled caller cannot await (bounded by the request timeout
        of the server calls it makes); failures are logged."""

        async def run() -> None:
            try:
                await asyncio.wait_for(coro, self.s.request_timeout * 2)
            except (errors.EtcdError, TimeoutError) as err:
                self.s.log.warning(f"{what} failed", error=str(err))

        task = asyncio.get_running_loop().create_task(run(), name=what)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    # -- mutex ------------------------------------------------------------------------------

    async def lock(self, name: bytes, lease: int) -> tuple[pb.ResponseHeader, bytes]:
        """Acquire mutex `name` for `lease`: returns the header and the key that holds it.
        Re-entrant per lease (the existing key is reused)."""
        lease = await self.session_lease(lease)
        pfx = name + b"/"
        key = contender_key(name, lease)
        owner = _get(_prefix_range(pfx, descend=False))
        resp = await self._txn(
            pb.TxnRequest(
                compare=[_created_is(key, 0)],
                success=[_put(key, b"", lease), owner],
                failure=[_get(pb.RangeRequest(key=key)), owner],
            )
        )
        my_rev = resp.header.revision
        if not resp.succeeded:
            my_rev = resp.responses[0].response_range.kvs[0].create_revision
        holders = resp.responses[1].response_range.kvs
        if not holders or holders[0].create_revision == my_rev:
            return resp.header, key
        try:
            await self.wait_deletes(pfx, my_rev - 1)
            got = await self._range(pb.RangeRequest(key=key))
        except asyncio.CancelledError:
            self._in_background(self.unlock(key), "unlock after cancelled lock")
            raise
        except errors.EtcdError:
            try:
                await self.unlock(key)
            except errors.EtcdError as err:
                self.s.log.warning("unlock after failed lock failed", error=err.message)
            raise
        if not got.kvs:
            raise errors.SESSION_EXPIRED
        return got.header, key

    async def unlock(self, key: bytes) -> pb.ResponseHeader:
        """Delete `key` (a missing key is no error)."""
        req = pb.DeleteRangeRequest(key=key)
        await self._admit(req)
        resp = await self.s.delete_range(req)
        return resp.header

    # -- election ---------------------------------------------------------------------------

    async def campaign(
        self, name: bytes, lease: int, value: bytes
    ) -> tuple[pb.ResponseHeader, LeaderKey]:
        """Become leader of election `name` with `value`; returns the header of the campaign
        txn (as etcd, even after waiting) and the claim. A contender that already has a key
        reuses it, proclaiming `value` if the stored one differs."""
        lease = await self.session_lease(lease)
        pfx = name + b"/"
        key = contender_key(name, lease)
        resp = await self._txn(
            pb.TxnRequest(
                compare=[_created_is(key, 0)],
                success=[_put(key, value, lease)],
                failure=[_get(pb.RangeRequest(key=key))],
            )
        )
        claim = LeaderKey(name, key, resp.header.revision, lease)
        if not resp.succeeded:
            kv = resp.responses[0].response_range.kvs[0]
            claim = LeaderKey(name, key, kv.create_revision, lease)
            if kv.value != value:
                try:
                    await self._proclaim(claim, value)
                except asyncio.CancelledError:
                    self._in_background(self._resign(claim), "resign after cancelled campaign")
                    raise
                except errors.EtcdError:
                    try:
                        await self._resign(claim)
                    except errors.EtcdError as err:
                        self.s.log.warning("resign after failed campaign", error=err.message)
                    raise
        try:
            await self.wait_deletes(pfx, claim.rev - 1)
        except asyncio.CancelledError:
            self._in_background(self._resign(claim), "resign after cancelled campaign")
            raise
        return resp.header, claim

    async def proclaim(self, leader: LeaderKey, value: bytes) -> pb.ResponseHeader:
        """Set the leader's value, if `leader` still holds its key (its create revision is
        unchanged); else "election: not leader". Lease 0 gets a fresh session lease."""
        lease = await self.session_lease(leader.lease)
        return await self._proclaim(LeaderKey(leader.name, leader.key, leader.rev, lease), value)

    async def _proclaim(self, claim: LeaderKey, value: bytes) -> pb.ResponseHeader:
        resp = await self._txn(
            pb.TxnRequest(
                compare=[_created_is(claim.key, claim.rev)],
                success=[_put(claim.key, value, claim.lease)],
            )
        )
        if not resp.succeeded:
            raise errors.ELECTION_NOT_LEADER
        return resp.header

    async def resign(self, leader: LeaderKey) -> pb.ResponseHeader:
        """Give up `leader`'s claim: delete its key if its create revision is unchanged (no
        error otherwise). Lease 0 gets a fresh session lease, unused, as in etcd."""
        await self.session_lease(leader.lease)
        return await self._resign(leader)

    async def _resign(self, claim: LeaderKey) -> pb.ResponseHeader:
        resp = await self._txn(
            pb.TxnRequest(
                compare=[_created_is(claim.key, claim.rev)],
                success=[pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=claim.key))],
            )
        )
        return resp.header

    async def leader(self, name: bytes) -> tuple[pb.ResponseHeader, mvccpb.KeyValue]:
        """The current leader's key-value (the oldest contender), or "election: no leader"."""
        resp = await self._range(_prefix_range(name + b"/", descend=False))
        if not resp.kvs:
            raise errors.ELECTION_NO_LEADER
        return resp.header, resp.kvs[0]

    async def observe(
        self, name: bytes
    ) -> AsyncGenerator[tuple[pb.ResponseHeader, mvccpb.KeyValue], None]:
        """The leader of `name` and each change of it: its first value, then every value it
        proclaims, then the next leader once it is gone. Waits for a first leader if none.
        Ends (no error, as etcd) when a read fails or a watch is cancelled (compaction)."""
        pfx = name + b"/"
        while True:
            try:
                resp = await self._range(_prefix_range(pfx, descend=False))
            except errors.EtcdError:
                return
            if resp.kvs:
                hdr, kv = resp.header, resp.kvs[0]
            else:
                first = await self._first_put(pfx, resp.header.revision)
                if first is None:
                    return
                hdr, kv = first
            yield hdr, kv
            w = _Watch(self.s, kv.key, b"", hdr.revision + 1)
            try:
                deleted = False
                while not deleted:
                    got = await w.next()
                    if got is None:
                        return
                    for ev in got.events:
                        if ev.type is EventType.DELETE:
                            deleted = True
                            break
                        yield self.header(got.revision), to_pb_kv(ev.kv)
            finally:
                w.close()

    async def _first_put(
        self, pfx: bytes, rev: int
    ) -> tuple[pb.ResponseHeader, mvccpb.KeyValue] | None:
        """The first key put under `pfx` from revision `rev` on (header revision = its mod
        revision), or None if the watch ended."""
        w = _Watch(self.s, pfx, prefix_end(pfx) or b"\x00", rev)
        try:
            while (got := await w.next()) is not None:
                for ev in got.events:
                    if ev.type is EventType.PUT:
                        return self.header(ev.kv.mod_revision), to_pb_kv(ev.kv)
            return None
        finally:
            w.close()
