"""KVStore semantics on a real LevelDB backend (etcd's mvcc behaviour)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mvcc_helpers import delete, keys, put
from petcd.mvcc.errors import CompactedError, FutureRevError
from petcd.mvcc.kv import Event, EventType, KeyValue
from petcd.mvcc.kvstore import KVStore
from petcd.storage import buckets
from petcd.storage.backend import Backend


def test_fresh_store_is_at_revision_1_and_first_put_gets_2(store: KVStore) -> None:
    assert store.rev == 1 and store.compact_rev == -1 and store.consistent_index == 0
    assert put(store, b"a", b"1") == 2
    r = store.range(b"a")
    assert r.kvs == [KeyValue(b"a", 2, 2, 1, b"1", 0)] and r.count == 1 and r.rev == 2


def test_versions_and_tombstones(store: KVStore) -> None:
    put(store, b"k", b"v1")  # 2
    put(store, b"k", b"v2", lease=7)  # 3
    assert store.range(b"k").kvs == [KeyValue(b"k", 2, 3, 2, b"v2", 7)]
    assert delete(store, b"k") == 4
    assert store.range(b"k").kvs == [] and store.range(b"k").count == 0
    put(store, b"k", b"v3")  # 5: a new generation, version restarts
    assert store.range(b"k").kvs == [KeyValue(b"k", 5, 5, 1, b"v3", 0)]
    # past revisions
    assert store.range(b"k", rev=2).kvs == [KeyValue(b"k", 2, 2, 1, b"v1", 0)]
    assert store.range(b"k", rev=3).kvs[0].version == 2
    assert store.range(b"k", rev=4).kvs == []
    assert store.range(b"k", rev=3).rev == 5  # header revision is the current one


def test_txn_without_change_does_not_bump_revision(store: KVStore) -> None:
    put(store, b"a", b"1")
    t = store.write()
    assert t.delete_range(b"nope") == (0, [])
    assert t.range(b"a").kvs[0].value == b"1"
    assert t.end() == 2
    assert store.rev == 2


def test_txn_changes_share_one_revision_with_increasing_subs(tmp_path: Path) -> None:
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    put(s, b"x", b"0")
    t = s.write()
    assert t.put(b"a", b"1") == 3
    assert t.put(b"b", b"2") == 3
    n, prev = t.delete_range(b"x")
    assert n == 1 and prev == [KeyValue(b"x", 2, 2, 1, b"0", 0)]
    t.put(b"a", b"11")
    assert t.end(consistent_index=42, term=3) == 3
    assert s.rev == 3 and s.consistent_index == 42
    stored = [(k, len(k)) for k, _ in be.iterate(buckets.KEY)]
    assert [k[:8] for k, _ in stored][1:] == [(3).to_bytes(8, "big")] * 4
    subs = [int.from_bytes(k[9:17], "big") for k, _ in stored[1:]]
    assert subs == [0, 1, 2, 3]
    assert [n for _, n in stored] == [17, 17, 17, 18, 17]  # the deletion is a tombstone
    # the second put of a in the same txn is version 2 of the same generation
    assert s.range(b"a").kvs == [KeyValue(b"a", 3, 3, 2, b"11", 0)]
    be.close()


def test_txn_reads_its_own_writes(store: KVStore) -> None:
    put(store, b"a", b"1")
    put(store, b"b", b"2")
    t = store.write()
    assert t.range(b"a").rev == 3
    t.put(b"c", b"3")
    r = t.range(b"a", b"\x00")
    assert [kv.key for kv in r.kvs] == [b"a", b"b", b"c"] and r.rev == 4
    t.delete_range(b"a")
    assert [kv.key for kv in t.range(b"a", b"\x00").kvs] == [b"b", b"c"]
    # outside the txn nothing is visible yet
    assert keys(store, b"a", b"\x00") == [b"a", b"b"]
    t.end()
    assert keys(store, b"a", b"\x00") == [b"b", b"c"]


def test_only_one_write_txn_at_a_time(store: KVStore) -> None:
    t = store.write()
    with pytest.raises(RuntimeError):
        store.write()
    t.end()
    with pytest.raises(RuntimeError):
        t.put(b"a", b"b")
    store.write().end()


def test_range_end_conventions(store: KVStore) -> None:
    t = store.write()
    for k in (b"a", b"ab", b"abc", b"b", b"c", b"\xff"):
        t.put(k, b"v")
    t.end()
    assert keys(store, b"ab") == [b"ab"]
    assert keys(store, b"ab", b"") == [b"ab"]
    assert keys(store, b"a", b"b") == [b"a", b"ab", b"abc"]  # prefix "a"
    assert keys(store, b"ab", b"\x00") == [b"ab", b"abc", b"b", b"c", b"\xff"]  # from key
    assert keys(store, b"\x00", b"\x00") == [b"a", b"ab", b"abc", b"b", b"c", b"\xff"]  # all
    assert keys(store, b"c", b"a") == []  # end before key
    assert keys(store, b"zz") == []


def test_limit_count_only_keys_only(store: KVStore) -> None:
    t = store.write()
    for i in range(10):
        t.put(b"k%d" % i, b"v%d" % i)
    t.end()
    r = store.range(b"k", b"l", limit=3)
    assert [kv.key for kv in r.kvs] == [b"k0", b"k1", b"k2"] and r.count == 10
    r = store.range(b"k", b"l", count_only=True)
    assert r.kvs == [] and r.count == 10
    assert store.range(b"k1", count_only=True).count == 1
    r = store.range(b"k", b"l", keys_only=True)
    assert all(kv.value == b"" and kv.version == 1 for kv in r.kvs)


def test_revision_errors(store: KVStore) -> None:
    for i in range(5):
        put(store, b"k", b"%d" % i)  # revs 2..6
    with pytest.raises(FutureRevError, match="required revision is a future revision"):
        store.range(b"k", rev=7)
    store.compact(4)
    assert store.compact_rev == 4
    with pytest.raises(CompactedError, match="required revision has been compacted"):
        store.range(b"k", rev=3)
    assert store.range(b"k", rev=4).kvs[0].value == b"2"  # reading AT the compaction works
    with pytest.raises(CompactedError):
        store.compact(4)
    with pytest.raises(CompactedError):
        store.compact(3)
    with pytest.raises(FutureRevError):
        store.compact(7)


def test_compaction_keeps_latest_at_or_below(tmp_path: Path) -> None:
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    put(s, b"a", b"1")  # 2
    put(s, b"a", b"2")  # 3
    put(s, b"b", b"1")  # 4
    delete(s, b"b")  # 5
    put(s, b"c", b"1")  # 6
    put(s, b"a", b"3")  # 7
    s.compact(6)
    # a@3 (latest <= 6), c@6 and a@7 remain; b's history ends in a deletion: gone
    revs = [int.from_bytes(k[:8], "big") for k, _ in be.iterate(buckets.KEY)]
    assert revs == [3, 6, 7]
    assert be.get(buckets.META, buckets.META_FINISHED_COMPACT_REV) is not None
    assert keys(s, b"\x00", b"\x00", rev=6) == [b"a", b"c"]
    assert s.range(b"a", rev=6).kvs == [KeyValue(b"a", 2, 3, 2, b"2", 0)]
    assert s.index.key_index(b"b") is None
    be.close()
    be = Backend(tmp_path / "db")
    s2 = KVStore(be)
    assert (s2.rev, s2.compact_rev) == (7, 6)
    assert s2.range(b"a", rev=6).kvs == [KeyValue(b"a", 2, 3, 2, b"2", 0)]
    be.close()


def test_compaction_of_everything_keeps_revision(tmp_path: Path) -> None:
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    put(s, b"a", b"1")
    delete(s, b"a")
    s.compact(3)
    be.close()
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    assert s.rev == 3 and s.compact_rev == 3  # not 1: revisions never go back
    assert put(s, b"a", b"2") == 4
    be.close()


def test_interrupted_compaction_resumes_on_open(tmp_path: Path) -> None:
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    for i in range(5):
        put(s, b"k", b"%d" % i)
    # as if the process died after scheduling compaction at 5 but before deleting
    be.put(
        buckets.META, buckets.META_SCHEDULED_COMPACT_REV, (5).to_bytes(8, "big") + b"_" + bytes(8)
    )
    be.close()
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    assert s.compact_rev == 5
    assert [int.from_bytes(k[:8], "big") for k, _ in be.iterate(buckets.KEY)] == [5, 6]
    be.close()


def test_reopen_restores_index_exactly(tmp_path: Path) -> None:
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    t = s.write()
    t.put(b"a", b"1", 5)
    t.put(b"b", b"1")
    t.end(consistent_index=10, term=2)
    put(s, b"a", b"2")
    delete(s, b"b")
    put(s, b"b", b"3")
    delete(s, b"a", b"\x00")
    put(s, b"c", b"4")
    s.compact(4)
    before = (s.rev, s.compact_rev, s.consistent_index, s.term)
    index_before = s.index
    views = [s.range(b"\x00", b"\x00", rev=r) for r in range(4, s.rev + 1)]
    be.close()
    be = Backend(tmp_path / "db")
    s2 = KVStore(be)
    assert (s2.rev, s2.compact_rev, s2.consistent_index, s2.term) == before
    assert [s2.range(b"\x00", b"\x00", rev=r) for r in range(4, s2.rev + 1)] == views
    # key indexes equal except generations compaction could not see (etcd restores the same)
    for k in (b"c",):
        assert s2.index.key_index(k) == index_before.key_index(k)
    be.close()


def test_end_into_callers_batch(tmp_path: Path) -> None:
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    t = s.write()
    t.put(b"a", b"1")
    with be.batch() as b:
        assert t.end(consistent_index=9, batch=b) == 2
        b.put(buckets.LEASE, b"lease-1", b"x")
        assert be.get(buckets.LEASE, b"lease-1") is None
    assert be.get(buckets.LEASE, b"lease-1") == b"x"
    s.save_consistent_index(10)
    be.close()
    be = Backend(tmp_path / "db")
    s = KVStore(be)
    assert s.rev == 2 and s.consistent_index == 10
    assert s.range(b"a").kvs[0].value == b"1"
    be.close()


def test_events_between(store: KVStore) -> None:
    put(store, b"a", b"1")  # 2
    t = store.write()
    t.put(b"b", b"1")
    t.put(b"a", b"2")
    t.end()  # 3
    delete(store, b"a")  # 4
    put(store, b"c", b"1")  # 5
    evs = store.events_between(2, 10, b"\x00", b"\x00")
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in evs] == [
        (EventType.PUT, b"a", 2),
        (EventType.PUT, b"b", 3),
        (EventType.PUT, b"a", 3),
        (EventType.DELETE, b"a", 4),
        (EventType.PUT, b"c", 5),
    ]
    assert evs[3].kv == KeyValue(b"a", mod_revision=4)
    assert [e.kv.mod_revision for e in store.events_between(3, 4, b"a")] == [3, 4]
    assert [e.kv.key for e in store.events_between(2, 5, b"b", b"c")] == [b"b"]
    with_prev = store.events_between(2, 5, b"a", prev_kv=True)
    assert [e.prev_kv for e in with_prev] == [
        None,  # a creation has no previous version
        KeyValue(b"a", 2, 2, 1, b"1", 0),
        KeyValue(b"a", 2, 3, 2, b"2", 0),
    ]
    assert store.events_between(6, 9, b"a") == []
    store.compact(4)
    with pytest.raises(CompactedError):
        store.events_between(3, 5, b"a")
    assert [e.kv.mod_revision for e in store.events_between(4, 5, b"\x00", b"\x00")] == [5]


def test_txn_changes_are_events(store: KVStore) -> None:
    put(store, b"a", b"1")
    t = store.write()
    t.put(b"b", b"2")
    t.delete_range(b"a")
    assert t.changes == [
        Event(EventType.PUT, KeyValue(b"b", 3, 3, 1, b"2", 0)),
        Event(EventType.DELETE, KeyValue(b"a", mod_revision=3)),
    ]
    t.end()


def test_read_view_is_pinned(store: KVStore) -> None:
    put(store, b"a", b"1")
    view = store.read()
    put(store, b"a", b"2")
    r = view.range(b"a")
    assert r.rev == 2 and r.kvs[0].value == b"1"
    assert store.range(b"a").kvs[0].value == b"2"
    with pytest.raises(FutureRevError):
        view.range(b"a", rev=3)
