"""A member's lease operations (etcd's `v3_server.go` Lease* methods) and the lessor's
installation onto the EtcdServer.

- Grant and revoke go through Raft; their apply handlers call the lessor.
- Renew and TimeToLive are answered by the leader's lessor (the only one that knows expiry
  times); a follower forwards them to the leader (`lease_forward`), retrying across leader
  changes until the request timeout.
- On the leader, a background task finds expired leases every 0.5s (at most
  LEASE_REVOKE_RATE / 2 per round, at most 16 revokes in flight, as etcd) and proposes
  their revocation.
- Leadership: becoming leader promotes the lessor, extending every lease by one election
  timeout (etcd's Promote(electionTimeout)); losing it demotes the lessor.

`install(server)` wires all this in and hangs the result on `server.leases`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.mvcc.kv import Event
from petcd.raft.types import Entry
from petcd.server import auth_apply
from petcd.server.lease_forward import ForwardError, LeaderForwarder
from petcd.server.lessor import (
    EXPIRY_CHECK_SECONDS,
    LEASE_REVOKE_RATE,
    Lessor,
    NotPrimaryError,
    min_lease_ttl,
)

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

MAX_PENDING_REVOKES = 16
"""Expired-lease revocations in flight at once (etcd's maxPendingRevokes)."""

FORWARD_RETRY_SECONDS = 0.05
"""Pause between forwarding attempts, so a dead leader is not hammered (etcd: 50ms)."""

_ID_MASK = (1 << 63) - 1


class LeaseOps:
    """The lease API of one member; `server.leases`."""

    def __init__(self, server: EtcdServer, lessor: Lessor) -> None:
        self.s = server
        self.lessor = lessor
        self.forwarder = LeaderForwarder()
        self._revoking: set[int] = set()
        self._revoke_slots = asyncio.Semaphore(MAX_PENDING_REVOKES)
        self._bg: set[asyncio.Task[None]] = set()

    # -- through Raft ------------------------------------------------------------------------

    async def grant(self, r: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
        req = pb.LeaseGrantRequest(TTL=r.TTL, ID=r.ID)
        while req.ID == 0:
            req.ID = self.s.next_request_id() & _ID_MASK
        resp: pb.LeaseGrantResponse = await self.s.propose(ipb.InternalRaftRequest(lease_grant=req))
        return resp

    async def revoke(self, r: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse:
        resp: pb.LeaseRevokeResponse = await self.s.propose(ipb.InternalRaftRequest(lease_revoke=r))
        return resp

    def apply_grant(self, r: pb.LeaseGrantRequest, e: Entry) -> Any:
        try:
            lease = self.lessor.grant(r.ID, r.TTL, e.index, e.term)
        except errors.EtcdError as err:
            return err
        return self.s.header(pb.LeaseGrantResponse(ID=lease.id, TTL=lease.ttl))

    def apply_revoke(self, r: pb.LeaseRevokeRequest, e: Entry) -> Any:
        try:
            rev = self.lessor.revoke(r.ID, e.index, e.term)
        except errors.EtcdError as err:
            return err
        return self.s.header(pb.LeaseRevokeResponse(), rev)

    def apply_checkpoint(self, r: pb.LeaseCheckpointRequest, e: Entry) -> Any:
        self.lessor.checkpoint(((c.ID, c.remaining_TTL) for c in r.checkpoints), e.index, e.term)
        return self.s.header(pb.LeaseCheckpointResponse())

    # -- answered by the leader --------------------------------------------------------------

    async def renew(self, lease_id: int, forwarded: bool = False) -> int:
        """The renewed TTL, or 0 if the lease does not exist (KeepAlive's answer).

        `forwarded`: the call came from another member; answer only from this lessor
        (NOT_LEADER if it is not primary)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.s.request_timeout
        if forwarded:
            await self._applied_to_commit(deadline)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise errors.TIMEOUT
            if self.lessor.is_primary:
                try:
                    return await asyncio.wait_for(self.lessor.renew(lease_id), remaining)
                except errors.EtcdError as err:
                    if err is errors.LEASE_NOT_FOUND:
                        return 0
                    raise
                except TimeoutError:
                    raise errors.TIMEOUT from None
                except NotPrimaryError:
                    if forwarded:
                        raise errors.NOT_LEADER from None
                    continue
            if forwarded:
                raise errors.NOT_LEADER
            url = await self._leader_url(deadline)
            if url:
                try:
                    return max(await self.forwarder.renew(url, lease_id, remaining), 0)
                except ForwardError as err:
                    self.s.log.debug("lease renew forwarding failed", error=str(err))
            await asyncio.sleep(FORWARD_RETRY_SECONDS)

    async def time_to_live(
        self, r: pb.LeaseTimeToLiveRequest, forwarded: bool = False
    ) -> pb.LeaseTimeToLiveResponse:
        """Remaining and granted TTL (and keys, if asked) from the leader; TTL -1 if the
        lease does not exist (etcd answers that instead of an error)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.s.request_timeout
        if forwarded:
            await self._applied_to_commit(deadline)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise errors.TIMEOUT
            if self.lessor.is_primary:
                return self._local_ttl(r)
            if forwarded:
                raise errors.NOT_LEADER
            url = await self._leader_url(deadline)
            if url:
                try:
                    resp = await self.forwarder.time_to_live(url, r, remaining)
                except ForwardError as err:
                    self.s.log.debug("lease ttl forwarding failed", error=str(err))
                else:
                    return self.s.header(resp)
            await asyncio.sleep(FORWARD_RETRY_SECONDS)

    def _local_ttl(self, r: pb.LeaseTimeToLiveRequest) -> pb.LeaseTimeToLiveResponse:
        lease = self.lessor.lookup(r.ID)
        if lease is None:
            return self.s.header(pb.LeaseTimeToLiveResponse(ID=r.ID, TTL=-1))
        resp = pb.LeaseTimeToLiveResponse(
            ID=r.ID, TTL=int(self.lessor.remaining(lease)), grantedTTL=lease.ttl
        )
        if r.keys:
            resp.keys.extend(sorted(lease.keys))
        return self.s.header(resp)

    def leases(self) -> pb.LeaseLeasesResponse:
        resp = pb.LeaseLeasesResponse()
        resp.leases.extend(pb.LeaseStatus(ID=ls.id) for ls in self.lessor.sorted_leases())
        return self.s.header(resp)

    async def _leader_url(self, deadline: float) -> str:
        """The leader's first client URL, or '' if it has not published one yet."""
        await self.s.wait_leader(deadline)
        member = self.s.membership.members.get(self.s.leader_id)
        return member.client_urls[0] if member is not None and member.client_urls else ""

    async def _applied_to_commit(self, deadline: float) -> None:
        """Wait until this member applied what it knows is committed (etcd's ApplyWait
        before answering a forwarded lease request), so a just-granted lease is known."""
        commit = self.s.driver.status().hard_state.commit
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self.s.applied_wait.wait(commit), max(remaining, 0.001))
        except TimeoutError:
            raise errors.TIMEOUT from None

    # -- leadership and expiry ---------------------------------------------------------------

    def on_leader(self, is_leader: bool) -> None:
        if is_leader:
            extend = self.s.election_ticks * self.s.heartbeat_ms / 1000.0
            self.lessor.promote(extend)
        else:
            self.lessor.demote()

    async def run_expiry(self) -> None:
        """Background task: revoke expired leases while leader; closes the forwarder's
        channels when cancelled."""
        try:
            while True:
                for lid in self.lessor.find_expired(LEASE_REVOKE_RATE // 2):
                    if lid in self._revoking:
                        continue
                    self._revoking.add(lid)
                    await self._revoke_slots.acquire()
                    task = asyncio.create_task(self._revoke_expired(lid), name="lease-revoke")
                    self._bg.add(task)
                    task.add_done_callback(self._bg.discard)
                await asyncio.sleep(EXPIRY_CHECK_SECONDS)
        finally:
            for task in list(self._bg):
                task.cancel()
            await self.forwarder.close()

    async def _revoke_expired(self, lease_id: int) -> None:
        if self.s.auth is not None:  # checked at apply like any revoke (etcd: WithRoot)
            auth_apply.as_root(self.s.auth.store)
        try:
            await self.revoke(pb.LeaseRevokeRequest(ID=lease_id))
        except errors.EtcdError as err:
            self.s.log.warning(
                "failed to revoke lease", error=err.message, **{"lease-id": f"{lease_id:016x}"}
            )
        finally:
            self._revoking.discard(lease_id)
            self._revoke_slots.release()


def install(server: EtcdServer) -> None:
    """Create the lessor from the server's store and hang `LeaseOps` on `server.leases`."""

    def commit(changes: list[Event], rev: int) -> None:
        for listener in server.kv_listeners:
            listener(changes, rev)

    lessor = Lessor(
        server.store,
        min_ttl=min_lease_ttl(server.election_ticks, server.heartbeat_ms),
        retry_seconds=server.request_timeout,
        commit=commit,
        logger=server.log,
    )
    ops = LeaseOps(server, lessor)
    ops.forwarder.tls.info = server.options.client_tls
    server.kv.leases = lessor
    server.kv_listeners.append(lessor.on_kv_changes)
    server.restore_listeners.append(lessor.recover)
    server.leader_listeners.append(ops.on_leader)
    server.register_apply("lease_grant", ops.apply_grant)
    server.register_apply("lease_revoke", ops.apply_revoke)
    server.register_apply("lease_checkpoint", ops.apply_checkpoint)
    server.add_task("lessor", ops.run_expiry)
    server.leases = ops
