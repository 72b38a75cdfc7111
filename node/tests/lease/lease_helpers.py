"""A lessor over a real KVStore on a real LevelDB backend, driven like the apply loop does,
with a hand-advanced clock (so expiry is tested without sleeping)."""

from __future__ import annotations

from pathlib import Path

from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.mvcc.kvstore import KVStore
from petcd.server.applier import KVApplier
from petcd.server.lessor import Lessor
from petcd.storage.backend import Backend

MIN_TTL = 2


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Node:
    """Store + lessor + KV applier, with a Raft index that increases per applied request."""

    def __init__(self, path: Path, clock: FakeClock | None = None) -> None:
        self.path = path
        self.clock = clock if clock is not None else FakeClock()
        self.backend = Backend(path)
        self.store = KVStore(self.backend)
        self.lessor = Lessor(self.store, min_ttl=MIN_TTL, clock=self.clock, retry_seconds=7.0)
        self.kv = KVApplier(self.store, leases=self.lessor)
        self.index = self.store.consistent_index

    def next_index(self) -> int:
        self.index += 1
        return self.index

    def grant(self, lease_id: int, ttl: int) -> int:
        return self.lessor.grant(lease_id, ttl, self.next_index(), 1).ttl

    def revoke(self, lease_id: int) -> int:
        return self.lessor.revoke(lease_id, self.next_index(), 1)

    def put(self, key: bytes, value: bytes = b"v", lease: int = 0, **kw: bool) -> int:
        return self.txn(
            [pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, lease=lease, **kw))]
        )

    def delete(self, key: bytes, end: bytes = b"") -> int:
        return self.txn(
            [pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key, range_end=end))]
        )

    def txn(self, ops: list[pb.RequestOp]) -> int:
        """Apply a txn of `ops` as the server does; raises its EtcdError (after committing
        nothing but the index)."""
        txn = self.store.write()
        try:
            self.kv.txn(txn, pb.TxnRequest(success=ops))
        finally:
            changes = txn.changes
            rev = txn.end(consistent_index=self.next_index(), term=1)
            if changes:
                self.lessor.on_kv_changes(changes, rev)
        return rev

    def reopen(self) -> Node:
        self.backend.close()
        return Node(self.path, self.clock)

    def close(self) -> None:
        self.backend.close()
