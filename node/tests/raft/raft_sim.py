"""Seeded, deterministic multi-node simulation of the Raft core with a hostile network.

The network loses, duplicates, reorders and delays messages and can be partitioned; nodes crash
(losing everything not persisted: unstable entries, volatile state, un-sent messages) and restart
from their MemoryStorage (the "disk"). Clients propose at random nodes, request ReadIndex, and
nodes compact their logs into snapshots.

Checked continuously / at the end (an AssertionError names the property that failed):
- election safety: at most one leader per term;
- log matching: if two logs have an entry with the same index and term, they are identical up to
  that index;
- leader completeness: a new leader's log holds every entry committed before it was elected;
- state-machine safety: no two nodes apply different entries at one index (checked through a
  hash chain of applied entries, which snapshots carry, so it also covers snapshot installs);
- read-index safety: a ReadState's index is at least every index committed before the request;
- liveness: after the faults end, a leader is elected and a fresh proposal commits on every node
  within a bounded number of ticks.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field

from petcd.raft import (
    ConfState,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    Ready,
    StateType,
)
from petcd.raft.rawnode import Config

LEADER = StateType.StateLeader


@dataclass
class SimParams:
    n: int = 3
    election_tick: int = 6
    heartbeat_tick: int = 2
    fault_ticks: int = 120
    liveness_ticks: int = 200
    loss: float = 0.1
    dup: float = 0.05
    max_delay: int = 2
    crash_p: float = 0.01
    restart_p: float = 0.08
    partition_p: float = 0.02
    heal_p: float = 0.06
    propose_p: float = 0.4
    read_p: float = 0.1
    compact_p: float = 0.03
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight: int = 4
    max_size_per_msg: int = 64

    @classmethod
    def for_seed(cls, seed: int) -> SimParams:
        r = random.Random(seed ^ 0x5EED)
        return cls(
            n=3 if seed % 2 == 0 else 5,
            pre_vote=r.random() < 0.8,
            check_quorum=r.random() < 0.8,
            loss=r.choice((0.0, 0.05, 0.15)),
            dup=r.choice((0.0, 0.05)),
            max_delay=r.choice((0, 1, 3)),
        )


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    node: RawNode | None = None
    last_applied: int = 0
    app_hash: bytes = b""
    restarts: int = 0
    pending_reads: dict[bytes, int] = field(default_factory=dict)


def _chain(h: bytes, term: int, index: int, data: bytes) -> bytes:
    return hashlib.blake2b(
        h + term.to_bytes(8, "big") + index.to_bytes(8, "big") + data, digest_size=16
    ).digest()


class Sim:
    def __init__(self, seed: int, params: SimParams | None = None) -> None:
        self.seed = seed
        self.p = params or SimParams.for_seed(seed)
        self.rng = random.Random(seed)
        self.now = 0
        self.seq = 0
        ids = list(range(1, self.p.n + 1))
        cs = ConfState(tuple(ids))
        self.nodes: dict[int, SimNode] = {i: SimNode(i, MemoryStorage(cs)) for i in ids}
        for sn in self.nodes.values():
            self._start(sn)
        self.queue: list[tuple[int, int, Message]] = []
        self.groups: dict[int, int] | None = None  # node -> partition group
        self.leaders: dict[int, int] = {}  # term -> leader id
        self.hash_at: dict[int, bytes] = {}  # index -> hash chain after applying it
        self.term_at: dict[int, int] = {}  # committed index -> term
        self.max_committed = 0
        self.proposals = 0
        self.reads_served = 0
        self.stats = {"msgs": 0, "dropped": 0, "crashes": 0, "snapshots_sent": 0}

    # --- node lifecycle ----------------------------------------------------------------------
    def _start(self, sn: SimNode) -> None:
        snap = sn.storage.snapshot()
        sn.last_applied = snap.metadata.index
        sn.app_hash = snap.data
        sn.pending_reads = {}
        cfg = Config(
            id=sn.id,
            storage=sn.storage,
            rng=random.Random(self.seed * 1000 + sn.id * 10 + sn.restarts),
            election_tick=self.p.election_tick,
            heartbeat_tick=self.p.heartbeat_tick,
            applied=sn.last_applied,
            max_inflight_msgs=self.p.max_inflight,
            max_size_per_msg=self.p.max_size_per_msg,
            pre_vote=self.p.pre_vote,
            check_quorum=self.p.check_quorum,
        )
        sn.node = RawNode(cfg)

    def _maybe_crash_mid(self, sn: SimNode) -> None:
        # A crash between stepping and persisting the Ready loses unstable entries, the
        # vote/term not yet synced and the messages not yet sent.
        if self.p.crash_p and self.rng.random() < self.p.crash_p * 0.3:
            self.crash(sn)

    def crash(self, sn: SimNode) -> None:
        sn.node = None
        sn.restarts += 1
        self.stats["crashes"] += 1

    # --- observation -------------------------------------------------------------------------
    def _observe(self, sn: SimNode) -> None:
        assert sn.node is not None
        r = sn.node.raft
        if r.state != LEADER:
            return
        prev = self.leaders.get(r.term)
        if prev is None:
            self.leaders[r.term] = sn.id
            self._check_leader_completeness(sn)
        elif prev != sn.id:
            raise AssertionError(
                f"election safety: term {r.term} has two leaders {prev} and {sn.id}"
            )

    def _check_leader_completeness(self, sn: SimNode) -> None:
        assert sn.node is not None
        log = sn.node.raft.raft_log
        first = log.first_index()
        for idx, term in self.term_at.items():
            if idx < first:
                continue
            got = log.zero_term(idx)
            if got != term:
                raise AssertionError(
                    f"leader completeness: leader {sn.id} of term {sn.node.raft.term} has "
                    f"term {got} at committed index {idx} (committed term {term})"
                )

    # --- network -------------------------------------------------------------------------
    def _connected(self, a: int, b: int) -> bool:
        return self.groups is None or self.groups[a] == self.groups[b]

    def _send(self, m: Message) -> None:
        self.stats["msgs"] += 1
        if m.type == MessageType.MsgSnap:
            self.stats["snapshots_sent"] += 1
        if not self._connected(m.frm, m.to) or self.rng.random() < self.p.loss:
            self.stats["dropped"] += 1
            if m.type == MessageType.MsgSnap:
                self._report_snapshot(m, failure=True)
            return
        copies = 2 if self.rng.random() < self.p.dup else 1
        for _ in range(copies):
            delay = self.rng.randint(0, self.p.max_delay)
            self.seq += 1
            heapq.heappush(self.queue, (self.now + delay, self.seq, m))

    def _report_snapshot(self, m: Message, failure: bool) -> None:
        # The transport tells the sender how a snapshot transfer ended, as etcd's does.
        sender = self.nodes[m.frm].node
        if sender is not None:
            sender.report_snapshot(m.to, failure)

    def _deliver_due(self) -> bool:
        moved = False
        while self.queue and self.queue[0][0] <= self.now:
            _, _, m = heapq.heappop(self.queue)
            sn = self.nodes[m.to]
            if sn.node is None or not self._connected(m.frm, m.to):
                if m.type == MessageType.MsgSnap:
                    self._report_snapshot(m, failure=True)
                continue
            sn.node.step(m)
            if m.type == MessageType.MsgSnap:
                self._report_snapshot(m, failure=False)
            self._observe(sn)
            moved = True
            self._maybe_crash_mid(sn)
        return moved

    # --- Ready handling (the "driver") -------------------------------------------------------
    def _handle_ready(self, sn: SimNode) -> bool:
        node = sn.node
        if node is None or not node.has_ready():
            return False
        rd = node.ready()
        st = sn.storage
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        for m in rd.messages:
            assert m.to != sn.id, "message to self"
            self._send(m)
        self._apply(sn, rd)
        node.advance(rd)
        return True

    def _apply(self, sn: SimNode, rd: Ready) -> None:
        if rd.snapshot is not None:
            md = rd.snapshot.metadata
            want = self.hash_at.get(md.index)
            assert want is None or want == rd.snapshot.data, (
                f"state-machine safety: snapshot at {md.index} differs"
            )
            sn.last_applied = md.index
            sn.app_hash = rd.snapshot.data
        for e in rd.committed_entries:
            assert e.index == sn.last_applied + 1, (
                f"node {sn.id} applied {e.index} after {sn.last_applied}"
            )
            h = _chain(sn.app_hash, e.term, e.index, e.data)
            want = self.hash_at.setdefault(e.index, h)
            if want != h:
                raise AssertionError(
                    f"state-machine safety: node {sn.id} applied a different entry at {e.index}"
                )
            self.term_at.setdefault(e.index, e.term)
            self.max_committed = max(self.max_committed, e.index)
            sn.last_applied = e.index
            sn.app_hash = h
            assert e.type == EntryType.EntryNormal
        for rs in rd.read_states:
            need = sn.pending_reads.pop(rs.request_ctx, None)
            if need is not None:
                assert rs.index >= need, (
                    f"read index: node {sn.id} got read index {rs.index} < committed {need}"
                )
                self.reads_served += 1

    def _stabilize(self) -> None:
        for _ in range(100):
            moved = False
            for sn in self.nodes.values():
                if self._handle_ready(sn):
                    moved = True
            if self._deliver_due():
                moved = True
            if not moved:
                return
        raise AssertionError("network did not quiesce within a tick")

    # --- faults and clients --------------------------------------------------------------
    def _alive(self) -> list[SimNode]:
        return [sn for sn in self.nodes.values() if sn.node is not None]

    def _faults(self) -> None:
        p, rng = self.p, self.rng
        for sn in self.nodes.values():
            if sn.node is not None:
                if rng.random() < p.crash_p:
                    self.crash(sn)
            elif rng.random() < p.restart_p:
                self._start(sn)
        if self.groups is None:
            if rng.random() < p.partition_p:
                self.groups = {i: rng.randrange(2) for i in self.nodes}
        elif rng.random() < p.heal_p:
            self.groups = None
        if rng.random() < p.compact_p:
            self._compact(rng.choice(list(self.nodes.values())))

    def _compact(self, sn: SimNode) -> None:
        st = sn.storage
        idx = min(sn.last_applied, st.last_index())
        if idx <= st.snapshot().metadata.index:
            return
        conf = st.snapshot().metadata.conf_state
        st.create_snapshot(idx, conf, sn.app_hash)
        st.compact(idx)

    def _client(self) -> None:
        rng = self.rng
        alive = self._alive()
        if not alive:
            return
        if rng.random() < self.p.propose_p:
            sn = rng.choice(alive)
            assert sn.node is not None
            self.proposals += 1
            try:
                sn.node.propose(b"p%d" % self.proposals)
            except ProposalDroppedError:
                pass
            self._observe(sn)
            self._maybe_crash_mid(sn)
        alive = self._alive()
        if alive and rng.random() < self.p.read_p:
            sn = rng.choice(alive)
            assert sn.node is not None
            ctx = b"r%d" % self.seq
            self.seq += 1
            sn.pending_reads[ctx] = self.max_committed
            sn.node.read_index(ctx)

    def _tick_all(self) -> None:
        for sn in self.nodes.values():
            if sn.node is not None:
                sn.node.tick()
                self._observe(sn)

    # --- run -------------------------------------------------------------------------
    def run(self) -> None:
        for _ in range(self.p.fault_ticks):
            self.now += 1
            self._faults()
            self._tick_all()
            self._client()
            self._stabilize()
        self._heal_and_check_liveness()
        self.check_log_matching()

    def _heal_and_check_liveness(self) -> None:
        self.groups = None
        self.p.loss = 0.0
        self.p.dup = 0.0
        self.p.crash_p = 0.0
        for sn in self.nodes.values():
            if sn.node is None:
                self._start(sn)
        target: int | None = None
        for _ in range(self.p.liveness_ticks):
            self.now += 1
            self._tick_all()
            if target is None:
                for sn in self.nodes.values():
                    assert sn.node is not None
                    if sn.node.raft.state == LEADER:
                        try:
                            sn.node.propose(b"final")
                        except ProposalDroppedError:
                            continue
                        target = sn.node.raft.raft_log.last_index()
                        break
            self._stabilize()
            if target is not None and all(
                sn.last_applied >= target for sn in self.nodes.values()
            ):
                return
            if target is not None and self.term_at.get(target) is None:
                # The leader may have lost its term before committing; propose again.
                lead_alive = any(
                    sn.node is not None
                    and sn.node.raft.state == LEADER
                    and sn.node.raft.raft_log.last_index() >= target
                    for sn in self.nodes.values()
                )
                if not lead_alive:
                    target = None
        raise AssertionError(
            f"liveness: no commit on all nodes within {self.p.liveness_ticks} ticks after heal "
            f"(target={target}, applied={[sn.last_applied for sn in self.nodes.values()]}, "
            f"states={[(sn.node.raft.state.name, sn.node.raft.term) for sn in self.nodes.values() if sn.node]})"
        )

    def check_log_matching(self) -> None:
        logs = {}
        for sn in self.nodes.values():
            assert sn.node is not None
            log = sn.node.raft.raft_log
            logs[sn.id] = {e.index: e for e in log.all_entries()}
        ids = sorted(logs)
        for a_i, a in enumerate(ids):
            for b in ids[a_i + 1 :]:
                la, lb = logs[a], logs[b]
                common = sorted(set(la) & set(lb), reverse=True)
                top = next((i for i in common if la[i].term == lb[i].term), None)
                if top is None:
                    continue
                for i in common:
                    if i > top:
                        continue
                    ea, eb = la[i], lb[i]
                    if (ea.term, ea.type, ea.data) != (eb.term, eb.type, eb.data):
                        raise AssertionError(
                            f"log matching: nodes {a},{b} agree at {top} but differ at {i}"
                        )

    def hard_states(self) -> dict[int, HardState]:
        return {i: sn.storage.hard_state for i, sn in self.nodes.items()}


def run_seed(seed: int, params: SimParams | None = None) -> Sim:
    sim = Sim(seed, params)
    sim.run()
    return sim
