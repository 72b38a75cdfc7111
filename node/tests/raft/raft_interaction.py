"""Data-driven interaction scripts for the Raft core (in the spirit of etcd-io/raft testdata).

Script format: blocks separated by blank lines. Each block is one command line, a line `----`,
and the expected output (no blank lines). Lines starting with `#` between blocks are comments.
Set RAFT_REWRITE=1 to regenerate expected outputs in place.

Commands (ids are node ids):
  add-nodes N [voters=1,2,3] [learners=4] [index=I] [pre-vote=b] [check-quorum=b]
             [election-tick=10] [heartbeat-tick=1] [max-inflight=256] [max-size=1048576]
  campaign ID | propose ID DATA | propose-conf-change ID TYPE NODE (add|remove|update|learner)
  read-index ID CTX | transfer-leader ID TARGET | report-unreachable ID PEER
  report-snapshot ID PEER ok|failure | tick ID N | tick-election ID | tick-heartbeat ID
  stabilize [IDS...] | process-ready IDS... | deliver-msgs [IDS...] [drop=IDS]
  partition A,B/C (drop traffic between groups) | heal | isolate ID
  compact ID INDEX | crash-restart ID | raft-state | raft-log ID | status ID
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

from petcd.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    ProposalDroppedError,
    RawNode,
    Ready,
    Snapshot,
    SnapshotMetadata,
)
from petcd.raft.rawnode import Config

CC_TYPES = {
    "add": ConfChangeType.ConfChangeAddNode,
    "remove": ConfChangeType.ConfChangeRemoveNode,
    "update": ConfChangeType.ConfChangeUpdateNode,
    "learner": ConfChangeType.ConfChangeAddLearnerNode,
}


_FREEFORM = {"propose", "propose-conf-change", "read-index", "report-snapshot", "partition"}


def fmt_entry(e: Entry) -> str:
    if e.type == EntryType.EntryConfChange:
        cc = ConfChange.decode(e.data)
        return f"{e.term}/{e.index} EntryConfChange {cc.type.name[10:]} {cc.node_id}"
    return f"{e.term}/{e.index} EntryNormal {e.data.decode(errors='replace')!r}"


def fmt_snap(s: Snapshot) -> str:
    md = s.metadata
    cs = md.conf_state
    return (
        f"Index:{md.index} Term:{md.term} Voters:{list(cs.voters)} "
        f"Learners:{list(cs.learners)} Data:{s.data.decode(errors='replace')!r}"
    )


def fmt_msg(m: Message) -> str:
    s = f"{m.frm}->{m.to} {m.type.name} Term:{m.term} Log:{m.log_term}/{m.index}"
    if m.commit:
        s += f" Commit:{m.commit}"
    if m.reject:
        s += f" Rejected (Hint: {m.reject_hint})"
    if m.context:
        s += f" Ctx:{m.context.decode(errors='replace')!r}"
    if m.entries:
        s += " Entries:[" + ", ".join(fmt_entry(e) for e in m.entries) + "]"
    if m.snapshot is not None:
        s += " Snapshot:[" + fmt_snap(m.snapshot) + "]"
    return s


def _bool(v: str) -> bool:
    if v not in ("true", "false"):
        raise ValueError(f"bad bool {v!r}")
    return v == "true"


def _ids(v: str) -> list[int]:
    return [int(x) for x in v.split(",") if x]


class Env:
    """A set of RawNodes with per-node message inboxes and a scriptable network."""

    def __init__(self) -> None:
        self.nodes: dict[int, RawNode] = {}
        self.storages: dict[int, MemoryStorage] = {}
        self.configs: dict[int, Config] = {}
        self.inbox: dict[int, list[Message]] = {}
        self.groups: dict[int, int] | None = None
        self.out: list[str] = []

    def p(self, s: str) -> None:
        self.out.append(s)

    # --- commands -------------------------------------------------------------------------
    def add_nodes(self, args: list[str], kw: dict[str, str]) -> None:
        n = int(args[0])
        first = max(self.nodes, default=0) + 1
        ids = list(range(first, first + n))
        voters = _ids(kw["voters"]) if "voters" in kw else ids
        learners = _ids(kw.get("learners", ""))
        for id_ in ids:
            cs = ConfState(tuple(voters), tuple(learners))
            st = MemoryStorage(cs)
            index = int(kw.get("index", "0"))
            if index:
                data = b"snap@%d" % index
                st.apply_snapshot(Snapshot(SnapshotMetadata(index, 1, cs), data))
            cfg = Config(
                id=id_,
                storage=st,
                rng=random.Random(id_),
                election_tick=int(kw.get("election-tick", "10")),
                heartbeat_tick=int(kw.get("heartbeat-tick", "1")),
                max_inflight_msgs=int(kw.get("max-inflight", "256")),
                max_size_per_msg=int(kw.get("max-size", str(1 << 20))),
                pre_vote=_bool(kw.get("pre-vote", "true")),
                check_quorum=_bool(kw.get("check-quorum", "true")),
                applied=index,
            )
            self.configs[id_] = cfg
            self.storages[id_] = st
            self.nodes[id_] = RawNode(cfg)
            self.inbox[id_] = []
            self._state_line(id_)

    def crash_restart(self, id_: int) -> None:
        """Lose all volatile state and unsent messages; restart from storage."""
        cfg = self.configs[id_]
        st = self.storages[id_]
        cfg.applied = st.snapshot().metadata.index
        cfg.rng = random.Random(id_ * 7919)
        self.nodes[id_] = RawNode(cfg)
        self._state_line(id_)

    def _state_line(self, id_: int) -> None:
        r = self.nodes[id_].raft
        kind = "Learner" if r.is_learner else "Voter"
        if id_ not in r.trk.progress:
            kind = "NonMember"
        self.p(f"{id_}: {r.state.name} ({kind}) Term:{r.term} Lead:{r.lead}")

    def _guard(self, f: Callable[[], None]) -> None:
        try:
            f()
        except ProposalDroppedError as exc:
            self.p(f"error: ProposalDroppedError: {exc}")

    def _connected(self, a: int, b: int) -> bool:
        return self.groups is None or self.groups.get(a, -1) == self.groups.get(b, -1)

    def process_ready(self, id_: int) -> bool:
        node = self.nodes[id_]
        if not node.has_ready():
            return False
        rd = node.ready()
        self.p(f"> {id_} handling Ready")
        self._print_ready(rd)
        st = self.storages[id_]
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        for m in rd.messages:
            self.inbox[m.to].append(m)
        for e in rd.committed_entries:
            if e.type == EntryType.EntryConfChange:
                cs = node.apply_conf_change(ConfChange.decode(e.data))
                self.p(f"  ConfState applied at {e.index}: Voters:{list(cs.voters)} "
                       f"Learners:{list(cs.learners)}")
        node.advance(rd)
        return True

    def _print_ready(self, rd: Ready) -> None:
        ind = "  "
        if rd.soft_state is not None:
            ss = rd.soft_state
            self.p(f"{ind}State:{ss.raft_state.name} Lead:{ss.lead}")
        if rd.hard_state is not None:
            hs = rd.hard_state
            self.p(f"{ind}HardState Term:{hs.term} Vote:{hs.vote} Commit:{hs.commit}")
        if rd.entries:
            self.p(f"{ind}Entries:")
            for e in rd.entries:
                self.p(f"{ind}  {fmt_entry(e)}")
        if rd.snapshot is not None:
            self.p(f"{ind}Snapshot {fmt_snap(rd.snapshot)}")
        if rd.committed_entries:
            self.p(f"{ind}CommittedEntries:")
            for e in rd.committed_entries:
                self.p(f"{ind}  {fmt_entry(e)}")
        if rd.messages:
            self.p(f"{ind}Messages:")
            for m in rd.messages:
                self.p(f"{ind}  {fmt_msg(m)}")
        if rd.read_states:
            self.p(f"{ind}ReadStates:")
            for rs in rd.read_states:
                self.p(f"{ind}  Index:{rs.index} Ctx:{rs.request_ctx.decode()!r}")
        self.p(f"{ind}MustSync:{str(rd.must_sync).lower()}")

    def deliver(self, id_: int, drop: bool = False) -> bool:
        msgs = self.inbox[id_]
        if not msgs:
            return False
        self.inbox[id_] = []
        verb = "dropping" if drop else "receiving"
        self.p(f"> {id_} {verb} messages")
        for m in msgs:
            if drop:
                self.p(f"  {fmt_msg(m)}")
            elif not self._connected(m.frm, m.to):
                self.p(f"  {fmt_msg(m)} (partitioned, dropped)")
            else:
                self.p(f"  {fmt_msg(m)}")
                self.nodes[id_].step(m)
        return True

    def stabilize(self, ids: list[int]) -> None:
        for _ in range(1000):
            moved = False
            for id_ in ids:
                moved |= self.process_ready(id_)
            for id_ in ids:
                moved |= self.deliver(id_)
            if not moved:
                return
        raise AssertionError("stabilize did not converge")

    def tick(self, id_: int, n: int) -> None:
        for _ in range(n):
            self.nodes[id_].tick()

    # --- dispatch -------------------------------------------------------------------------
    def run(self, line: str) -> str:
        self.out = []
        parts = line.split()
        cmd, rest = parts[0], parts[1:]
        args = [a for a in rest if "=" not in a]
        kw = dict(a.split("=", 1) for a in rest if "=" in a)
        all_ids = sorted(self.nodes)
        ids = [int(a) for a in args] if cmd not in _FREEFORM else []
        if cmd == "add-nodes":
            self.add_nodes(args, kw)
        elif cmd == "campaign":
            self.nodes[ids[0]].campaign()
            self._state_line(ids[0])
        elif cmd == "propose":
            node = self.nodes[int(args[0])]
            data = args[1].encode()
            self._guard(lambda: node.propose(data))
        elif cmd == "propose-conf-change":
            cc = ConfChange(CC_TYPES[rest[1]], int(rest[2]))
            self._guard(lambda: self.nodes[int(rest[0])].propose_conf_change(cc))
        elif cmd == "read-index":
            self.nodes[int(rest[0])].read_index(rest[1].encode())
        elif cmd == "transfer-leader":
            self.nodes[ids[0]].transfer_leader(ids[1])
        elif cmd == "report-unreachable":
            self.nodes[ids[0]].report_unreachable(ids[1])
        elif cmd == "report-snapshot":
            self.nodes[int(rest[0])].report_snapshot(int(rest[1]), rest[2] == "failure")
        elif cmd == "tick":
            self.tick(ids[0], ids[1])
            self._state_line(ids[0])
        elif cmd == "tick-election":
            r = self.nodes[ids[0]].raft
            target = r.election_timeout if r.lead == r.id else r.randomized_election_timeout
            self.tick(ids[0], max(1, target - r.election_elapsed))
            self._state_line(ids[0])
        elif cmd == "tick-heartbeat":
            r = self.nodes[ids[0]].raft
            self.tick(ids[0], max(1, r.heartbeat_timeout - r.heartbeat_elapsed))
            self._state_line(ids[0])
        elif cmd == "stabilize":
            self.stabilize(ids or all_ids)
        elif cmd == "process-ready":
            for id_ in ids or all_ids:
                self.process_ready(id_)
        elif cmd == "deliver-msgs":
            drop = set(_ids(kw.get("drop", "")))
            for id_ in sorted(set(ids or all_ids) | drop):
                self.deliver(id_, drop=id_ in drop)
        elif cmd == "partition":
            self.groups = {}
            for g, grp in enumerate(rest[0].split("/")):
                for id_ in _ids(grp):
                    self.groups[id_] = g
        elif cmd == "isolate":
            self.groups = {i: (1 if i == ids[0] else 0) for i in all_ids}
        elif cmd == "heal":
            self.groups = None
        elif cmd == "compact":
            id_, index = ids
            st = self.storages[id_]
            cs = self.nodes[id_].raft.trk.conf_state()
            st.create_snapshot(index, cs, b"snap@%d" % index)
            st.compact(index)
            self.p(f"{id_}: log first index {st.first_index()}, snapshot at {index}")
        elif cmd == "crash-restart":
            self.crash_restart(ids[0])
        elif cmd == "raft-state":
            for id_ in all_ids:
                self._state_line(id_)
        elif cmd == "raft-log":
            log = self.nodes[ids[0]].raft.raft_log
            self.p(f"first:{log.first_index()} committed:{log.committed} applied:{log.applied}")
            for e in log.all_entries():
                self.p(fmt_entry(e))
        elif cmd == "status":
            status = self.nodes[ids[0]].status()
            hs, ss, cs = status.hard_state, status.soft_state, status.conf_state
            self.p(f"{status.id}: {ss.raft_state.name} Term:{hs.term} Vote:{hs.vote} "
                   f"Commit:{hs.commit} Applied:{status.applied} Lead:{ss.lead} "
                   f"Voters:{list(cs.voters)} Learners:{list(cs.learners)}")
            if status.lead_transferee:
                self.p(f"transferring to {status.lead_transferee}")
            r = self.nodes[ids[0]].raft
            for pid in sorted(r.trk.progress):
                if status.progress:
                    self.p(f"  {pid}: {r.trk.progress[pid]!r}")
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return "\n".join(self.out) if self.out else "ok"


def parse_script(text: str) -> list[tuple[list[str], str, str]]:
    """Returns (leading comment lines, command, expected output) per block."""
    blocks: list[tuple[list[str], str, str]] = []
    lines = text.split("\n")
    i = 0
    comments: list[str] = []
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("#"):
            comments.append(line)
            i += 1
            continue
        cmd = line
        if i + 1 >= len(lines) or lines[i + 1] != "----":
            raise ValueError(f"line {i + 1}: expected '----' after command {cmd!r}")
        i += 2
        out: list[str] = []
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        blocks.append((comments, cmd, "\n".join(out)))
        comments = []
    return blocks


def run_script(path: Path) -> None:
    """Run one script; with RAFT_REWRITE=1 rewrite its expectations instead of asserting."""
    rewrite = os.environ.get("RAFT_REWRITE") == "1"
    env = Env()
    chunks: list[str] = []
    for comments, cmd, expected in parse_script(path.read_text()):
        got = env.run(cmd)
        if not rewrite and got != expected:
            raise AssertionError(
                f"{path.name}: command {cmd!r}\n--- expected\n{expected}\n--- got\n{got}"
            )
        chunks.append("\n".join([*comments, cmd, "----", got]))
    if rewrite:
        path.write_text("\n\n".join(chunks) + "\n")
