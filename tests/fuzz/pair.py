"""Two single-member clusters (petcd and etcd 3.5.1) and one sequence run on both.

The state model (why comparisons mean something):
- both clusters start empty at revision 1 with the same flags (``--enable-v2``), so they are
  in the same state;
- each operation of a sequence goes to both (at the same time, one thread each); while the
  answers are equal, the servers made the same changes, so they stay in the same state and
  their absolute revisions stay equal;
- after each sequence a cleanup (revoke every lease, auth off and its users and
  roles gone, every key deleted, the v2 test dir deleted) runs on both, then both must be
  alive and agree on revision, compact revision and ``HashKV`` (which covers every kept
  revision, so the whole history must match, not just the keys);
- answers are compared with revisions relative to the sequence's start revision (the same on
  both), so a saved case replays the same on any history;
- after a divergence, or when the states no longer agree, both clusters are thrown away and
  started fresh (:meth:`Pair.reset`), so the next sequence starts equal again.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from petcd.api.etcdserverpb import rpc_pb2 as pb

from harness.local import LocalCluster
from tests.fuzz.execute import TIMEOUT, Server, rpc_error
from tests.fuzz.model import Op, weight
from tests.support.timeouts import CLUSTER_UP

IMPLS = ("petcd", "etcd-3.5")
EXTRA_ARGS = ("--enable-v2",)
HASH_SETTLE = 5.0  # seconds etcd may take to finish a background compaction (see _check_state)


class Divergence(AssertionError):
    """The two servers answered an operation differently, or ended in different states."""


@dataclass
class Stats:
    sequences: int = 0
    requests: int = 0
    divergences: int = 0
    resets: int = 0
    first: list[str] = field(default_factory=list)


class Pair:
    """The two clusters of a fuzzing session (see the module docstring)."""

    def __init__(self) -> None:
        self.clusters: dict[str, LocalCluster] = {}
        self.pool = ThreadPoolExecutor(max_workers=len(IMPLS), thread_name_prefix="fuzz")
        self.stats = Stats()
        self.dirty = False

    def start(self) -> None:
        for name in IMPLS:
            c = LocalCluster(name, size=1, extra_args=EXTRA_ARGS)
            self.clusters[name] = c
            c.start()
        for c in self.clusters.values():
            c.wait_healthy(timeout=CLUSTER_UP)
        self.dirty = False

    def stop(self) -> None:
        for c in self.clusters.values():
            c.stop()
        self.clusters.clear()

    def close(self) -> None:
        self.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def reset(self) -> None:
        """Fresh clusters: both empty at revision 1 again."""
        self.stats.resets += 1
        self.stop()
        self.start()

    def url(self, name: str) -> str:
        return self.clusters[name].members[0].client_url

    def _both(self, fn: Any) -> dict[str, Any]:
        futs = {n: self.pool.submit(fn, n) for n in IMPLS}
        return {n: f.result() for n, f in futs.items()}

    # ---- one sequence -----------------------------------------------------------------------

    def run(self, ops: list[Op]) -> list[Any]:
        """Run `ops` on both servers; raise `Divergence` at the first differing answer or
        final state. Returns the (equal) normalized answers."""
        if self.dirty or not self.clusters:
            self.reset() if self.clusters else self.start()
        self.stats.sequences += 1
        base = self._both(lambda n: _revision(self.url(n)))
        if len(set(base.values())) != 1:
            self.dirty = True
            raise Divergence(f"start revisions differ: {base}")
        servers = {n: Server(self.url(n), base[n]) for n in IMPLS}
        answers: list[Any] = []
        try:
            for i, op in enumerate(ops):
                self.stats.requests += weight(op) * len(IMPLS)
                got = self._both(lambda n, op=op: servers[n].run(op))
                if got["petcd"] != got["etcd-3.5"]:
                    self.dirty = True
                    raise Divergence(_explain(i, op, got))
                answers.append(got["petcd"])
            self._both(lambda n: _cleanup(servers[n]))
            # A key written with a lease id each server chose itself makes the stored values,
            # and so HashKV, differ by construction (long-run finding new-long-s50): compare
            # revisions only, and start the next sequence on fresh clusters.
            unstable = any(s.hash_unstable for s in servers.values())
            self._check_state(compare_hash=not unstable)
            if unstable:
                self.dirty = True
        except Divergence as d:
            self.stats.divergences += 1
            if len(self.stats.first) < 20:
                self.stats.first.append(str(d)[:2000])
            raise
        finally:
            for s in servers.values():
                s.close()
        return answers

    def _check_state(self, compare_hash: bool = True) -> None:
        """Both alive; same revision, compact revision and (if `compare_hash`) hash over every
        kept revision.

        The hashes may differ for a moment after a compaction: etcd deletes the compacted
        revisions in the background (`physical=false` answers first), and while no key is
        alive its HashKV covers every revision still stored (`len(keep) > 0` in
        HashByRev), so it changes once the deletion is done. That is etcd's own timing, not
        a state difference: the hashes are read again (bounded, HASH_SETTLE) until equal."""
        for n, c in self.clusters.items():
            if not c.is_running(c.members[0]):
                self.dirty = True
                raise Divergence(f"{n} is not running; log tail:\n{c.log_tail(c.members[0])}")
        def read(n: str) -> Any:
            h = _hashkv(self.url(n))
            if not compare_hash and isinstance(h, dict):
                h.pop("hash", None)
            return h

        hk = self._both(read)
        deadline = time.monotonic() + HASH_SETTLE
        while hk["petcd"] != hk["etcd-3.5"] and time.monotonic() < deadline:
            time.sleep(0.05)
            hk = self._both(read)
        if hk["petcd"] != hk["etcd-3.5"]:
            self.dirty = True
            raise Divergence(f"after the sequence: hashkv differ: {hk}")


def _revision(url: str) -> int:
    s = Server(url, 0)
    try:
        rev: int = s.kv.Range(pb.RangeRequest(key=b"\x00"), timeout=TIMEOUT).header.revision
        return rev
    finally:
        s.close()


def _hashkv(url: str) -> Any:
    s = Server(url, 0)
    try:
        r = s.maint.HashKV(pb.HashKVRequest(revision=0), timeout=TIMEOUT)
        return {"revision": r.header.revision, "hash": r.hash,
                "compact_revision": r.compact_revision}
    except grpc.RpcError as e:
        return rpc_error(e)
    finally:
        s.close()


def _cleanup(s: Server) -> None:
    """Undo what a sequence left behind (answers not compared; the state after is)."""
    s.token = None
    s.auth_cleanup()
    lids = set(s.granted)
    try:  # and any lease the sequence's answers did not show (e.g. a grant that timed out)
        lids.update(x.ID for x in s.lease.LeaseLeases(pb.LeaseLeasesRequest(),
                                                      timeout=TIMEOUT).leases)
    except grpc.RpcError:
        pass
    for lid in sorted(lids):
        try:
            s.lease.LeaseRevoke(pb.LeaseRevokeRequest(ID=lid), timeout=TIMEOUT)
        except grpc.RpcError:
            pass
    try:
        s.kv.DeleteRange(pb.DeleteRangeRequest(key=b"\x00", range_end=b"\x00"), timeout=TIMEOUT)
    except grpc.RpcError:
        pass
    try:
        s.v2_cleanup()
    except OSError:
        pass


def _explain(i: int, op: Op, got: dict[str, Any]) -> str:
    return (f"operation {i} {json.dumps(op)[:600]}\n  petcd:    {json.dumps(got['petcd'])[:1500]}"
            f"\n  etcd-3.5: {json.dumps(got['etcd-3.5'])[:1500]}")
