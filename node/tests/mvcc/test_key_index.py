"""KeyIndex semantics, checked against the examples in etcd's key_index.go."""

from __future__ import annotations

from petcd.mvcc.key_index import KeyIndex
from petcd.mvcc.revision import Revision, bytes_to_rev, is_tombstone, rev_to_bytes, tombstone_bytes


def sample() -> KeyIndex:
    # put(2) put(4) del(6) put(8) put(10) del(12) put(14) put(16)
    ki = KeyIndex(b"foo")
    ki.put(Revision(2))
    ki.put(Revision(4))
    ki.tombstone(Revision(6))
    ki.put(Revision(8))
    ki.put(Revision(10))
    ki.tombstone(Revision(12))
    ki.put(Revision(14, 0))
    ki.put(Revision(14, 1))
    ki.put(Revision(16))
    return ki


def test_revision_encoding_orders_like_revisions() -> None:
    b = rev_to_bytes(5, 3)
    assert len(b) == 17 and b[8:9] == b"_"
    assert bytes_to_rev(b) == Revision(5, 3)
    t = tombstone_bytes(5, 3)
    assert is_tombstone(t) and not is_tombstone(b) and bytes_to_rev(t) == Revision(5, 3)
    revs = [Revision(1, 9), Revision(2, 0), Revision(2, 1), Revision(256, 0)]
    assert sorted(rev_to_bytes(*r) for r in revs) == [rev_to_bytes(*r) for r in revs]


def test_get() -> None:
    ki = sample()
    expect = {
        1: None,
        2: (Revision(2), Revision(2), 1),
        3: (Revision(2), Revision(2), 1),
        5: (Revision(4), Revision(2), 2),
        6: None,
        7: None,
        8: (Revision(8), Revision(8), 1),
        11: (Revision(10), Revision(8), 2),
        12: None,
        14: (Revision(14, 1), Revision(14, 0), 2),
        17: (Revision(16), Revision(14, 0), 3),
    }
    for at, want in expect.items():
        assert ki.get(at) == want, at


def test_since_keeps_highest_sub_per_main() -> None:
    ki = sample()
    assert ki.since(13) == [Revision(14, 1), Revision(16)]
    assert ki.since(0)[:3] == [Revision(2), Revision(4), Revision(6)]
    assert len(ki.since(0)) == 8


def test_tombstone_on_deleted_key_fails() -> None:
    ki = KeyIndex(b"k")
    ki.put(Revision(1))
    ki.tombstone(Revision(2))
    try:
        ki.tombstone(Revision(3))
    except Exception as e:  # noqa: BLE001
        assert "revision not found" in str(e)
    else:
        raise AssertionError("tombstone of a deleted key must fail")


def test_compact_sequence() -> None:
    ki = sample()
    avail: set[Revision] = set()
    ki.compact(1, avail)
    assert avail == set() and len(ki.generations) == 3
    ki.compact(4, avail)
    assert avail == {Revision(4)}
    assert ki.generations[0].revs == [Revision(4), Revision(6)]
    # compacting at the tombstone drops the whole generation
    avail = set()
    ki.compact(6, avail)
    assert avail == set()
    assert ki.generations[0].revs == [Revision(8), Revision(10), Revision(12)]
    avail = set()
    ki.compact(15, avail)
    assert avail == {Revision(14, 1)}
    assert [g.revs for g in ki.generations] == [[Revision(14, 1), Revision(16)]]
    assert ki.generations[0].ver == 3  # versions survive compaction
    assert ki.get(16) == (Revision(16), Revision(14, 0), 3)


def test_compact_removes_dead_key_and_keep_matches_compact() -> None:
    for at in range(20):
        a, b = sample(), sample()
        kept: set[Revision] = set()
        compacted: set[Revision] = set()
        a.keep(at, kept)
        b.compact(at, compacted)
        assert kept == compacted, at
    ki = KeyIndex(b"k")
    ki.put(Revision(1))
    ki.tombstone(Revision(2))
    ki.compact(2, set())
    assert ki.is_empty()
