"""Alarms and the backend quota: etcd's NOSPACE/CORRUPT alarm store and space check.

Contract:
- An alarm is a (member ID, alarm type) pair. Alarms change only by applying an `alarm` Raft
  entry (GET/ACTIVATE/DEACTIVATE, as etcd's `applierV3backend.Alarm`), so every member holds the
  same set; each change is persisted in the ALARM bucket in the same batch as the entry's index
  (the consistent index), so a restart or a snapshot restore recovers exactly that set.
- Before a Put, Txn or LeaseGrant is proposed (`check_write`): if the backend size plus the
  request's cost exceeds the quota, this member proposes ACTIVATE NOSPACE for itself (as
  etcd's quota interceptor does) and the request fails with NOSPACE (a read-only txn too, as
  in etcd); while a NOSPACE alarm is raised anywhere in the cluster, puts, txns with puts and
  lease grants fail with NOSPACE ("capped" mode); ranges and deletes always work. A CORRUPT
  alarm fails them with CORRUPT.
- The quota is `--quota-backend-bytes`: 0 means etcd's default 2 GiB, negative disables it.

etcd checks the capped state at apply time (entries proposed just before the alarm also fail);
petcd checks it before proposing, which is the same for every request proposed after the alarm
was applied on the member that receives it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.raft.types import Entry
from petcd.storage import buckets
from petcd.storage.backend import Batch

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

DEFAULT_QUOTA_BYTES = 2 * 1024**3
"""etcd's default backend quota (2 GiB) used when --quota-backend-bytes is 0."""
MAX_QUOTA_BYTES = 8 * 1024**3
"""Above this etcd warns that the quota may degrade performance."""
KV_OVERHEAD = 256
"""etcd's cost estimate for storing one key-value beyond its key and value bytes."""
LEASE_OVERHEAD = 64
"""etcd's cost estimate for storing one lease."""
SIZE_CACHE_SECONDS = 0.1
"""How long a measured backend size is reused (measuring lists the LevelDB directory)."""

NOSPACE = pb.NOSPACE
CORRUPT = pb.CORRUPT


def alarm_text(m: pb.AlarmMember) -> str:
    """etcd's text form of an alarm member, as in Status.errors and `etcdctl alarm list`."""
    return f"memberID:{m.memberID} alarm:{pb.AlarmType.Name(m.alarm)} "


def _key(member_id: int, alarm: int) -> bytes:
    return pb.AlarmMember(memberID=member_id, alarm=alarm).SerializeToString()  # type: ignore[arg-type]


def cost_put(r: pb.PutRequest) -> int:
    return KV_OVERHEAD + len(r.key) + len(r.value)


def cost_txn(r: pb.TxnRequest) -> int:
    """The larger of the two branches' put costs (nested txns count as nothing, as in etcd)."""

    def branch(ops: Any) -> int:
        return sum(cost_put(op.request_put) for op in ops if op.HasField("request_put"))

    return max(branch(r.success), branch(r.failure))


def cost_lease_grant(_r: Any) -> int:
    # etcd: leaseOverhead plus 8 bytes of lease ID.
    return LEASE_OVERHEAD + 8


def cost_of(req: Any) -> int:
    """Quota cost of a write request (Put, Txn, LeaseGrant); 0 for anything else."""
    if isinstance(req, pb.PutRequest):
        return cost_put(req)
    if isinstance(req, pb.TxnRequest):
        return cost_txn(req)
    if isinstance(req, pb.LeaseGrantRequest):
        return cost_lease_grant(req)
    return 0


class AlarmStore:
    """The applied set of alarms of one member's backend."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self._alarms: dict[tuple[int, int], pb.AlarmMember] = {}
        self.reload()

    def reload(self) -> None:
        """Re-read the ALARM bucket (at start and after a snapshot from the leader)."""
        self._alarms = {}
        for k, _ in self.backend.iterate(buckets.ALARM):
            m = pb.AlarmMember.FromString(k)
            self._alarms[(m.alarm, m.memberID)] = m

    def get(self, alarm: int = pb.NONE) -> list[pb.AlarmMember]:
        """All alarms (NONE) or those of one type, ordered by type then member ID."""
        return [
            pb.AlarmMember(memberID=m.memberID, alarm=m.alarm)
            for key, m in sorted(self._alarms.items())
            if alarm == pb.NONE or key[0] == alarm
        ]

    def active(self, alarm: int) -> bool:
        return any(k[0] == alarm for k in self._alarms)

    def activate(self, member_id: int, alarm: int, batch: Batch) -> pb.AlarmMember:
        """Raise an alarm (idempotent); returns the alarm member."""
        existing = self._alarms.get((alarm, member_id))
        if existing is not None:
            return pb.AlarmMember(memberID=member_id, alarm=alarm)  # type: ignore[arg-type]
        m = pb.AlarmMember(memberID=member_id, alarm=alarm)  # type: ignore[arg-type]
        self._alarms[(alarm, member_id)] = m
        batch.put(buckets.ALARM, _key(member_id, alarm), b"")
        return pb.AlarmMember(memberID=member_id, alarm=alarm)  # type: ignore[arg-type]

    def deactivate(self, member_id: int, alarm: int, batch: Batch) -> pb.AlarmMember | None:
        """Clear an alarm; None if it was not raised."""
        if self._alarms.pop((alarm, member_id), None) is None:
            return None
        batch.delete(buckets.ALARM, _key(member_id, alarm))
        return pb.AlarmMember(memberID=member_id, alarm=alarm)  # type: ignore[arg-type]


class Alarms:
    """The alarm subsystem of one member (`server.alarms`)."""

    def __init__(self, server: EtcdServer, quota_bytes: int = 0) -> None:
        self.server = server
        self.store = AlarmStore(server.backend)
        self.quota_bytes = DEFAULT_QUOTA_BYTES
        self.set_quota(quota_bytes)
        self._size = 0
        self._size_at = -1.0

    def set_quota(self, quota_bytes: int) -> None:
        """Apply --quota-backend-bytes (0: default 2 GiB; negative: no quota)."""
        self.quota_bytes = DEFAULT_QUOTA_BYTES if quota_bytes == 0 else quota_bytes
        if self.quota_bytes > MAX_QUOTA_BYTES:
            self.server.log.warning(
                "quota exceeds the maximum value",
                **{"quota-size-bytes": self.quota_bytes, "quota-maximum-size-bytes": MAX_QUOTA_BYTES},
            )

    # -- quota ------------------------------------------------------------------------------

    def backend_size(self) -> int:
        now = time.monotonic()
        if now - self._size_at > SIZE_CACHE_SECONDS:
            self._size = self.server.backend.size_bytes()
            self._size_at = now
        return self._size

    def forget_size(self) -> None:
        """Measure the backend again on the next check (after a defragment)."""
        self._size_at = -1.0

    def available(self, cost: int) -> bool:
        if self.quota_bytes < 0:
            return True
        return self.backend_size() + cost <= self.quota_bytes

    async def check_write(self, req: Any) -> None:
        """Raise etcd's error if `req` (Put, Txn, LeaseGrant) must not be proposed now.

        As etcd's quota interceptor: while the backend is over quota, every Put, Txn (even a
        read-only one: its cost is 0 but the size alone exceeds the quota) and LeaseGrant
        fails and raises NOSPACE for this member. As etcd's capped applier: while a NOSPACE
        alarm is raised, requests that would write (cost > 0) fail even under the quota.
        """
        if self.store.active(CORRUPT):
            raise errors.CORRUPT
        cost = cost_of(req)
        if not self.available(cost):
            act = pb.AlarmRequest(
                action=pb.AlarmRequest.ACTIVATE, memberID=self.server.id, alarm=NOSPACE
            )
            try:
                await self.alarm(act)
            except errors.EtcdError:
                pass  # the request fails with NOSPACE whether or not the alarm got through
            raise errors.NO_SPACE
        if cost > 0 and self.store.active(NOSPACE):
            raise errors.NO_SPACE

    # -- requests ---------------------------------------------------------------------------

    async def alarm(self, r: pb.AlarmRequest) -> pb.AlarmResponse:
        """etcd's Maintenance.Alarm: every action (GET too) goes through Raft."""
        resp: pb.AlarmResponse = await self.server.propose(ipb.InternalRaftRequest(alarm=r))
        return resp

    def errors_text(self) -> list[str]:
        return [alarm_text(m) for m in self.store.get()]

    # -- apply ------------------------------------------------------------------------------

    def apply(self, r: pb.AlarmRequest, e: Entry) -> pb.AlarmResponse:
        resp = pb.AlarmResponse()
        batch = Batch()
        if r.action == pb.AlarmRequest.GET:
            resp.alarms.extend(self.store.get(r.alarm))
        elif r.action == pb.AlarmRequest.ACTIVATE and r.alarm != pb.NONE:
            was = self.store.active(r.alarm)
            resp.alarms.append(self.store.activate(r.memberID, r.alarm, batch))
            if not was:
                self.server.log.warning(
                    "alarm raised", alarm=pb.AlarmType.Name(r.alarm), **{"from": f"{r.memberID:x}"}
                )
        elif r.action == pb.AlarmRequest.DEACTIVATE:
            m = self.store.deactivate(r.memberID, r.alarm, batch)
            if m is not None:
                resp.alarms.append(m)
                if not self.store.active(r.alarm):
                    self.server.log.warning(
                        "alarm disarmed", alarm=pb.AlarmType.Name(r.alarm),
                        **{"from": f"{r.memberID:x}"},
                    )
        self.server.store.save_consistent_index(e.index, e.term, batch=batch)
        self.server.backend.write(batch)
        return self.server.header(resp)


def install(server: EtcdServer) -> None:
    """Set `server.alarms` (quota: --quota-backend-bytes) and route `alarm` entries to it."""
    alarms = Alarms(server, server.options.quota_backend_bytes)
    server.alarms = alarms
    server.register_apply("alarm", alarms.apply)
    server.restore_listeners.append(alarms.store.reload)


def get(server: EtcdServer) -> Alarms | None:
    """The server's alarm subsystem, if installed."""
    return server.alarms

