"""The lessor: every lease of a member, the keys attached to them, and (on the leader) when
they expire. etcd 3.5's `server/lease/lessor.go` semantics.

Two halves with different rules:

* Replicated state (identical on every member, changed only by applying Raft entries in log
  order): which leases exist, their granted TTL and checkpointed remaining TTL (persisted in
  the LEASE bucket in the same backend write as the entry's consistent index), and which keys
  are attached (derived from the KV store: a key is attached to the lease in the `lease` field
  of its live version; rebuilt from the store on open and after a snapshot restore).
  `grant`, `revoke` and `checkpoint` are the apply side; `on_kv_changes` follows the store.
* Primary state (in memory, only meaningful on the leader): each lease's expiry on a
  monotonic clock. A follower's leases never expire ("forever"); `promote(extend)` gives every
  lease `now + extend + remaining TTL`, `demote()` makes them forever again. Only the primary
  renews (`renew`) and finds expired leases (`find_expired`); expiring a lease means proposing
  a revoke through Raft, so a lease's keys disappear at the same revision on every member.

Invariants:
- `item_map[key] == lid` iff `key in leases[lid].keys`.
- A lease is in the expiry heap with time `check_at` while primary; stale heap entries (whose
  time no longer equals the lease's `check_at`) are dropped when they surface.
- The clock is injectable (`clock`), so expiry is testable without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from petcd import errors
from petcd.logutil import Logger
from petcd.mvcc.kv import Event, EventType
from petcd.mvcc.kvstore import FROM_KEY, KVStore, WriteTxn
from petcd.storage import buckets
from petcd.storage.backend import Batch

MAX_LEASE_TTL = 9_000_000_000
"""etcd's MaxLeaseTTL (seconds); a longer TTL is refused with "too large lease TTL"."""

LEASE_REVOKE_RATE = 1000
"""etcd's leaseRevokeRate: at most this many expired leases are revoked per second."""

EXPIRY_CHECK_SECONDS = 0.5
"""How often the primary looks for expired leases (etcd's lessor run loop period)."""

FOREVER = math.inf
"""The expiry of every lease on a non-primary lessor."""

_LEASE_VALUE = struct.Struct(">qqq")  # ID, TTL, remaining TTL
_I64 = struct.Struct(">q")

Committer = Callable[[list[Event], int], None]
"""Told about the changes (and new revision) of a write txn the lessor committed."""


def min_lease_ttl(election_ticks: int, heartbeat_ms: int) -> int:
    """etcd's minimum TTL: (3 * electionTicks / 2) heartbeats, in whole seconds rounded up
    (integer division on the tick count, as etcd). Shorter grants get this TTL instead."""
    return math.ceil((3 * election_ticks) // 2 * heartbeat_ms / 1000.0)


def lease_key(lease_id: int) -> bytes:
    """The LEASE bucket key of a lease: its ID as 8 big-endian bytes (etcd's int64ToBytes)."""
    return _I64.pack(lease_id)


class NotPrimaryError(Exception):
    """This lessor does not manage expiry (not the leader); the caller asks the leader."""


@dataclass(slots=True, eq=False)
class Lease:
    """One lease. `ttl` is the granted TTL (after the minimum is applied); `remaining_ttl`
    the last checkpointed remaining TTL (0: unset, use `ttl`)."""

    id: int
    ttl: int
    remaining_ttl: int = 0
    expiry: float = FOREVER
    check_at: float = FOREVER
    keys: set[bytes] = field(default_factory=set)
    revoked: asyncio.Event = field(default_factory=asyncio.Event)

    def effective_ttl(self) -> int:
        return self.remaining_ttl if self.remaining_ttl > 0 else self.ttl


class Lessor:
    """See the module docstring. Not thread-safe: used from the event loop only.

    `commit` is told about every write txn the lessor commits (revoke); the server passes its
    kv listeners here so watchers see revocations. Without one, only `on_kv_changes` of this
    lessor is told (unit tests).
    """

    def __init__(
        self,
        store: KVStore,
        *,
        min_ttl: int,
        clock: Callable[[], float] = time.monotonic,
        retry_seconds: float = 3.0,
        commit: Committer | None = None,
        logger: Logger | None = None,
    ) -> None:
        self.store = store
        self.min_ttl = min_ttl
        self.clock = clock
        self.retry_seconds = retry_seconds
        """How long after asking to revoke an expired lease it is asked again (etcd uses the
        request timeout)."""
        self.commit: Committer = commit if commit is not None else self.on_kv_changes
        self.log = logger
        self.leases: dict[int, Lease] = {}
        self.item_map: dict[bytes, int] = {}
        self._heap: list[tuple[float, int]] = []
        self._demoted: asyncio.Event | None = None
        self.recover()

    # -- replicated state -------------------------------------------------------------------

    def recover(self) -> None:
        """Reload leases from the LEASE bucket and attachments from the KV store (on open and
        after the backend was replaced by a snapshot). A primary stays primary, with every
        lease refreshed to its full remaining TTL."""
        was_primary = self.is_primary
        for lease in self.leases.values():
            lease.revoked.set()  # renewals waiting on a lease of the old state give up
        self.leases = {}
        self.item_map = {}
        self._heap = []
        b = self.store.backend
        for _, raw in b.iterate(buckets.LEASE):
            lid, ttl, remaining = _LEASE_VALUE.unpack(raw)
            self.leases[lid] = Lease(lid, max(ttl, self.min_ttl), remaining)
        for kv in self.store.range(b"\x00", FROM_KEY, keys_only=True).kvs:
            if kv.lease and not self._attach(kv.lease, kv.key) and self.log is not None:
                self.log.error(
                    "failed to attach a lease",
                    key=kv.key.decode(errors="replace"),
                    **{"lease-id": f"{kv.lease:016x}"},
                )
        if was_primary:
            self._refresh_all(0.0)

    def exists(self, lease_id: int) -> bool:
        """The `LeaseChecker` of the KV applier: a put may attach only to an existing lease."""
        return lease_id in self.leases

    def lookup(self, lease_id: int) -> Lease | None:
        return self.leases.get(lease_id)

    def grant(self, lease_id: int, ttl: int, index: int, term: int) -> Lease:
        """Apply a LeaseGrant at Raft (index, term). Raises EtcdError (and then records only
        the consistent index) for ID 0, a TTL above MAX_LEASE_TTL or an existing ID."""
        err: errors.EtcdError | None = None
        if lease_id == 0:
            err = errors.LEASE_NOT_FOUND
        elif ttl > MAX_LEASE_TTL:
            err = errors.LEASE_TTL_TOO_LARGE
        elif lease_id in self.leases:
            err = errors.LEASE_EXIST
        if err is not None:
            self.store.save_consistent_index(index, term)
            raise err
        lease = Lease(lease_id, max(ttl, self.min_ttl))
        batch = Batch()
        self._persist(lease, batch)
        self.store.save_consistent_index(index, term, batch=batch)
        self.store.backend.write(batch)
        self.leases[lease_id] = lease
        if self.is_primary:
            self._set_expiry(lease, self.clock() + lease.effective_ttl())
        return lease

    def revoke(self, lease_id: int, index: int, term: int) -> int:
        """Apply a LeaseRevoke: delete every attached key (sorted, so every member writes the
        same history) in ONE write txn, and drop the lease, in the same backend write as the
        consistent index. Returns the store revision after it. Raises LEASE_NOT_FOUND."""
        lease = self.leases.get(lease_id)
        if lease is None:
            self.store.save_consistent_index(index, term)
            raise errors.LEASE_NOT_FOUND
        txn: WriteTxn = self.store.write()
        for key in sorted(lease.keys):
            txn.delete_range(key)
        del self.leases[lease_id]
        batch = Batch()
        batch.delete(buckets.LEASE, lease_key(lease_id))
        changes = txn.changes
        rev = txn.end(consistent_index=index, term=term, batch=batch)
        self.store.backend.write(batch)
        for key in lease.keys:
            if self.item_map.get(key) == lease_id:
                del self.item_map[key]
        lease.keys = set()
        lease.revoked.set()
        if changes:
            self.commit(changes, rev)
        return rev

    def checkpoint(self, checkpoints: Iterable[tuple[int, int]], index: int, term: int) -> None:
        """Apply a LeaseCheckpoint: record each lease's remaining TTL (unknown IDs ignored).
        Promotion then uses it instead of the full TTL."""
        batch = Batch()
        for lid, remaining in checkpoints:
            lease = self.leases.get(lid)
            if lease is not None:
                lease.remaining_ttl = remaining
                self._persist(lease, batch)
        self.store.save_consistent_index(index, term, batch=batch)
        self.store.backend.write(batch)

    def on_kv_changes(self, changes: list[Event], rev: int) -> None:
        """Follow a committed write txn: a put moves its key to the put's lease (or none), a
        delete detaches the key."""
        for ev in changes:
            key = ev.kv.key
            old = self.item_map.pop(key, 0)
            if old:
                lease = self.leases.get(old)
                if lease is not None:
                    lease.keys.discard(key)
            if ev.type == EventType.PUT and ev.kv.lease:
                self._attach(ev.kv.lease, key)

    def _attach(self, lease_id: int, key: bytes) -> bool:
        lease = self.leases.get(lease_id)
        if lease is None:
            return False
        lease.keys.add(key)
        self.item_map[key] = lease_id
        return True

    def _persist(self, lease: Lease, batch: Batch) -> None:
        batch.put(
            buckets.LEASE,
            lease_key(lease.id),
            _LEASE_VALUE.pack(lease.id, lease.ttl, lease.remaining_ttl),
        )

    # -- primary state ----------------------------------------------------------------------

    @property
    def is_primary(self) -> bool:
        return self._demoted is not None

    def remaining(self, lease: Lease) -> float:
        """Seconds until `lease` expires (inf when not primary; <= 0 once expired)."""
        return lease.expiry - self.clock()

    def promote(self, extend: float) -> None:
        """Become primary: every lease expires `extend` seconds after its remaining TTL from
        now. With many leases, expiries are spread so no second sees more than 3/4 of the
        revoke rate (etcd's pile-up avoidance)."""
        self._demoted = asyncio.Event()
        self._refresh_all(extend)
        if len(self.leases) < LEASE_REVOKE_RATE:
            return
        now = self.clock()
        ordered = sorted(self.leases.values(), key=lambda ls: (ls.expiry, ls.id))
        base = ordered[0].expiry - now
        next_window = base + 1.0
        expires = 0
        target = (3 * LEASE_REVOKE_RATE) // 4
        for lease in ordered:
            remaining = lease.expiry - now
            if remaining > next_window:
                base, next_window, expires = remaining, remaining + 1.0, 1
                continue
            expires += 1
            if expires <= target:
                continue
            delay = expires / target - (remaining - base)
            next_window = base + delay
            self._set_expiry(lease, now + delay + extend + lease.effective_ttl())

    def demote(self) -> None:
        """Stop being primary: every lease lives forever here; renewals waiting on an expired
        lease fail with NotPrimaryError (the caller retries at the new leader)."""
        for lease in self.leases.values():
            lease.expiry = lease.check_at = FOREVER
        self._heap = []
        if self._demoted is not None:
            self._demoted.set()
            self._demoted = None

    async def renew(self, lease_id: int) -> int:
        """Renew on the primary: the lease expires its full TTL from now; returns that TTL.

        Raises NotPrimaryError when not primary, LEASE_NOT_FOUND for an unknown lease. An
        expired lease is being revoked: wait until it is (LEASE_NOT_FOUND) or this lessor is
        demoted (NotPrimaryError); the caller bounds the wait.
        """
        demoted = self._demoted
        if demoted is None:
            raise NotPrimaryError
        lease = self.leases.get(lease_id)
        if lease is None:
            raise errors.LEASE_NOT_FOUND
        if self.remaining(lease) <= 0:
            revoked = asyncio.ensure_future(lease.revoked.wait())
            stepped_down = asyncio.ensure_future(demoted.wait())
            try:
                await asyncio.wait({revoked, stepped_down}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                revoked.cancel()
                stepped_down.cancel()
            if lease.revoked.is_set() and self.leases.get(lease_id) is None:
                raise errors.LEASE_NOT_FOUND
            # demoted, or the state was replaced by a snapshot: the caller asks again
            raise NotPrimaryError
        self._set_expiry(lease, self.clock() + lease.effective_ttl())
        return lease.ttl

    def find_expired(self, limit: int = LEASE_REVOKE_RATE // 2) -> list[int]:
        """IDs of up to `limit` expired leases to revoke, oldest expiry first (primary only).
        Each is re-checked `retry_seconds` later in case its revoke does not get through."""
        if not self.is_primary:
            return []
        now = self.clock()
        out: list[int] = []
        heap = self._heap
        while heap and len(out) < limit:
            at, lid = heap[0]
            lease = self.leases.get(lid)
            if lease is None or lease.check_at != at:
                heapq.heappop(heap)
                continue
            if at > now:
                break
            heapq.heappop(heap)
            lease.check_at = now + self.retry_seconds
            heapq.heappush(heap, (lease.check_at, lid))
            if lease.expiry <= now:
                out.append(lid)
        return out

    def sorted_leases(self) -> list[Lease]:
        """Every lease, soonest expiry first (ties by ID), as etcd's Leases()."""
        return sorted(self.leases.values(), key=lambda ls: (ls.expiry, ls.id))

    def _refresh_all(self, extend: float) -> None:
        now = self.clock()
        self._heap = []
        for lease in self.leases.values():
            self._set_expiry(lease, now + extend + lease.effective_ttl())

    def _set_expiry(self, lease: Lease, expiry: float) -> None:
        lease.expiry = lease.check_at = expiry
        heapq.heappush(self._heap, (expiry, lease.id))
