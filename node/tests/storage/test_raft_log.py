"""DurableRaftStorage on a real LevelDB: save/reopen, conflict truncation, snapshot, compaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from petcd.raft.storage import (
    NO_LIMIT,
    CompactedError,
    MemoryStorage,
    SnapshotOutOfDateError,
    UnavailableError,
)
from petcd.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from petcd.storage.raft_log import DurableRaftStorage


def ents(lo: int, hi: int, term: int) -> list[Entry]:
    return [Entry(term, i, EntryType.EntryNormal, b"d%d" % i) for i in range(lo, hi + 1)]


def state(s: DurableRaftStorage | MemoryStorage) -> tuple[object, ...]:
    first, last = s.first_index(), s.last_index()
    log = s.entries(first, last + 1, NO_LIMIT) if last >= first else []
    return (s.initial_state(), first, last, log, s.snapshot(), s.term(first - 1))


def reopen(s: DurableRaftStorage, path: Path) -> DurableRaftStorage:
    s.close()
    return DurableRaftStorage(path)


def test_fresh_log(tmp_path: Path) -> None:
    s = DurableRaftStorage(tmp_path / "wal")
    assert s.first_index() == 1 and s.last_index() == 0
    assert s.initial_state() == (HardState(), ConfState())
    with pytest.raises(UnavailableError):
        s.entries(1, 1, NO_LIMIT)
    s.close()


def test_bootstrap_conf_state_persists(tmp_path: Path) -> None:
    cs = ConfState(voters=(1, 2, 3))
    s = DurableRaftStorage(tmp_path / "wal", conf_state=cs)
    s = reopen(s, tmp_path / "wal")
    assert s.initial_state()[1] == cs
    s.close()


def test_save_and_reopen_matches_memory_storage(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    s = DurableRaftStorage(path)
    m = MemoryStorage()
    steps: list[tuple[HardState | None, list[Entry]]] = [
        (HardState(1, 1, 0), ents(1, 100, 1)),
        (HardState(1, 1, 50), []),
        (None, ents(101, 120, 1)),
        (HardState(2, 2, 60), ents(90, 95, 2)),  # conflict: replaces 90..120
        (HardState(3, 3, 70), ents(96, 96, 3)),
        (None, ents(50, 60, 1)),  # already stored, same terms: truncation to 60
    ]
    for hs, es in steps:
        s.save(hs, es, None, sync=True)
        if hs is not None:
            m.set_hard_state(hs)
        m.append(es)
        assert state(s) == state(m)
        s = reopen(s, path)
        assert state(s) == state(m)
    assert s.last_index() == 60
    assert s.term(60) == 1
    s.close()


def test_entries_bounds_and_size_limit(tmp_path: Path) -> None:
    s = DurableRaftStorage(tmp_path / "wal")
    s.save(None, ents(1, 10, 1), None)
    assert [e.index for e in s.entries(3, 6, NO_LIMIT)] == [3, 4, 5]
    assert [e.index for e in s.entries(3, 6, 0)] == [3]  # at least one entry
    with pytest.raises(UnavailableError):
        s.entries(5, 12, NO_LIMIT)
    with pytest.raises(UnavailableError):
        s.term(11)
    with pytest.raises(ValueError):
        s.save(None, ents(12, 13, 1), None)  # gap after 10
    assert s.last_index() == 10
    s.close()


def test_snapshot_then_compaction(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    s = DurableRaftStorage(path)
    s.save(HardState(1, 1, 100), ents(1, 100, 1), None)
    cs = ConfState(voters=(1, 2))
    snap = s.create_snapshot(80, cs, b"app-state")
    assert snap.metadata == SnapshotMetadata(80, 1, cs)
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(80, cs, b"")
    s.compact(70)
    assert s.first_index() == 71 and s.term(70) == 1
    with pytest.raises(CompactedError):
        s.term(69)
    with pytest.raises(CompactedError):
        s.entries(70, 72, NO_LIMIT)
    with pytest.raises(CompactedError):
        s.compact(70)
    with pytest.raises(UnavailableError):
        s.compact(101)
    before = state(s)
    s = reopen(s, path)
    assert state(s) == before
    assert s.snapshot() == snap
    assert s.initial_state() == (HardState(1, 1, 100), cs)
    s.close()


def test_save_snapshot_replaces_log(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    s = DurableRaftStorage(path)
    s.save(HardState(1, 1, 5), ents(1, 10, 1), None)
    cs = ConfState(voters=(1,), learners=(4,))
    snap = Snapshot(SnapshotMetadata(50, 3, cs), b"")
    s.save(HardState(3, 0, 50), ents(51, 52, 3), snap)
    assert (s.first_index(), s.last_index(), s.term(50)) == (51, 52, 3)
    s = reopen(s, path)
    assert (s.first_index(), s.last_index(), s.term(50)) == (51, 52, 3)
    assert s.snapshot() == snap
    assert s.initial_state() == (HardState(3, 0, 50), cs)
    with pytest.raises(SnapshotOutOfDateError):
        s.save(None, [], Snapshot(SnapshotMetadata(40, 3, cs), b""))
    s.close()
