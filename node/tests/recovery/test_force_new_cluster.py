"""`petcd.server.force_new_cluster` on a real durable Raft log (LevelDB), and the Raft core
driven over the rewritten log: the member must end up the sole voter and leader."""

from __future__ import annotations

import random
from pathlib import Path

from petcd.raft.config import Config
from petcd.raft.rawnode import RawNode
from petcd.raft.storage import NO_LIMIT
from petcd.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    StateType,
)
from petcd.server.force_new_cluster import (
    cluster_member_ids,
    force_standalone,
    standalone_entries,
)
from petcd.storage.raft_log import DurableRaftStorage

A, B, C, D = 0xA1, 0xB2, 0xC3, 0xD4
SELF_CTX = b"self-record"


def cc_entry(index: int, term: int, kind: ConfChangeType, node: int) -> Entry:
    return Entry(term, index, EntryType.EntryConfChange, ConfChange(kind, node).encode())


def normal(index: int, term: int) -> Entry:
    return Entry(term, index, EntryType.EntryNormal, b"put-%d" % index)


def log_of(s: DurableRaftStorage) -> list[Entry]:
    first, last = s.first_index(), s.last_index()
    return s.entries(first, last + 1, NO_LIMIT) if last >= first else []


def decoded(entries: list[Entry]) -> list[tuple[ConfChangeType, int]]:
    out = []
    for e in entries:
        cc = ConfChange.decode(e.data)
        out.append((cc.type, cc.node_id))
    return out


def three_member_log(path: Path, commit: int, uncommitted: int) -> DurableRaftStorage:
    """A bootstrapped 3-voter log (conf changes 1..3 at term 1), normal entries 4..commit at
    term 2, then `uncommitted` more at term 3; hard state term 3, commit `commit`."""
    s = DurableRaftStorage(path, conf_state=ConfState(voters=(A, B, C)))
    ents = [cc_entry(i + 1, 1, ConfChangeType.ConfChangeAddNode, n) for i, n in enumerate((A, B, C))]
    ents += [normal(i, 2) for i in range(4, commit + 1)]
    ents += [normal(i, 3) for i in range(commit + 1, commit + 1 + uncommitted)]
    s.save(HardState(term=3, vote=A, commit=commit), ents, None, True)
    return s


def test_member_ids_follow_conf_changes() -> None:
    ents = [
        cc_entry(5, 2, ConfChangeType.ConfChangeAddLearnerNode, D),
        cc_entry(6, 2, ConfChangeType.ConfChangeRemoveNode, B),
        cc_entry(7, 2, ConfChangeType.ConfChangeUpdateNode, C),
        normal(8, 2),
        cc_entry(9, 2, ConfChangeType.ConfChangeAddNode, D),  # promotion: still one member
    ]
    assert cluster_member_ids(ConfState(voters=(A, B, C)), ents) == [A, C, D]
    assert cluster_member_ids(ConfState(voters=(A,), learners=(B,)), []) == [A, B]


def test_standalone_entries_add_self_first_then_remove_others_in_order() -> None:
    out = standalone_entries([C, A, B], D, SELF_CTX, term=4, index=10)
    assert [(e.index, e.term, e.type) for e in out] == [
        (i, 4, EntryType.EntryConfChange) for i in range(11, 15)
    ]
    assert decoded(out) == [
        (ConfChangeType.ConfChangeAddNode, D),
        (ConfChangeType.ConfChangeRemoveNode, C),
        (ConfChangeType.ConfChangeRemoveNode, A),
        (ConfChangeType.ConfChangeRemoveNode, B),
    ]
    assert ConfChange.decode(out[0].data).context == SELF_CTX
    assert standalone_entries([A], A, SELF_CTX, 4, 10) == []


def test_drops_uncommitted_and_force_commits_removals_durably(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    s = three_member_log(path, commit=10, uncommitted=4)
    assert s.last_index() == 14
    forced = force_standalone(s, B, SELF_CTX)
    assert (forced.discarded, forced.removed, forced.commit) == (4, (A, C), 12)
    _check_forced_log(s)
    s.close()
    reopened = DurableRaftStorage(path)
    _check_forced_log(reopened)
    reopened.close()


def _check_forced_log(store: DurableRaftStorage) -> None:
    """The log `test_drops_uncommitted...` expects, in memory or reopened from disk."""
    log = log_of(store)
    assert [e.index for e in log] == list(range(1, 13))
    assert all(e.term == 2 for e in log[3:10])  # committed entries kept as they were
    assert decoded(log[10:]) == [
        (ConfChangeType.ConfChangeRemoveNode, A),
        (ConfChangeType.ConfChangeRemoveNode, C),
    ]
    assert all(e.term == 3 for e in log[10:])
    hs, cs = store.initial_state()
    assert hs == HardState(term=3, vote=A, commit=12)
    assert cs == ConfState(voters=(A, B, C))  # the snapshot is untouched


def test_second_run_writes_nothing(tmp_path: Path) -> None:
    s = three_member_log(tmp_path / "wal", commit=6, uncommitted=0)
    force_standalone(s, A, SELF_CTX)
    before = (log_of(s), s.initial_state())
    again = force_standalone(s, A, SELF_CTX)
    assert (again.discarded, again.removed, again.commit) == (0, (), 8)
    assert (log_of(s), s.initial_state()) == before
    s.close()


def test_lone_member_with_uncommitted_tail_gets_an_empty_entry(tmp_path: Path) -> None:
    s = DurableRaftStorage(tmp_path / "wal", conf_state=ConfState(voters=(A,)))
    ents = [cc_entry(1, 1, ConfChangeType.ConfChangeAddNode, A), normal(2, 2), normal(3, 2)]
    s.save(HardState(term=2, vote=A, commit=2), ents, None, True)
    forced = force_standalone(s, A, SELF_CTX)
    assert (forced.discarded, forced.removed, forced.commit) == (1, (), 3)
    tail = log_of(s)[-1]
    assert (tail.index, tail.term, tail.type, tail.data) == (3, 2, EntryType.EntryNormal, b"")
    s.close()


def test_raft_applies_the_forced_log_and_leads_alone(tmp_path: Path) -> None:
    s = three_member_log(tmp_path / "wal", commit=8, uncommitted=2)
    force_standalone(s, C, SELF_CTX)
    rn = RawNode(Config(id=C, storage=s, rng=random.Random(1), election_tick=5, applied=8))
    applied: list[Entry] = []
    for _ in range(200):  # bounded: ticks until the lone voter has elected itself
        rn.tick()
        while rn.has_ready():
            rd = rn.ready()
            s.save(rd.hard_state, list(rd.entries), None, True)
            for e in rd.committed_entries:
                applied.append(e)
                if e.type == EntryType.EntryConfChange:
                    rn.apply_conf_change(ConfChange.decode(e.data))
            rn.advance(rd)
        if rn.status().soft_state.raft_state == StateType.StateLeader:
            break
    st = rn.status()
    assert st.soft_state.raft_state == StateType.StateLeader
    assert st.conf_state == ConfState(voters=(C,))
    assert decoded(applied[:2]) == [
        (ConfChangeType.ConfChangeRemoveNode, A),
        (ConfChangeType.ConfChangeRemoveNode, B),
    ]
    s.close()

