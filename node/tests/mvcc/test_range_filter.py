"""Range request handling as etcd's applier: sort, limit/more, min/max filters, keys_only."""

from __future__ import annotations

import pytest
from mvcc_helpers import put
from petcd.mvcc.kvstore import KVStore
from petcd.mvcc.range_filter import SortOrder, SortTarget, serve_range


@pytest.fixture
def filled(store: KVStore) -> KVStore:
    # key  value  create  mod  version
    # a    z      2       5    2
    # b    y      3       3    1
    # c    x      4       6    2
    put(store, b"a", b"q")  # 2
    put(store, b"b", b"y")  # 3
    put(store, b"c", b"w")  # 4
    put(store, b"a", b"z")  # 5
    put(store, b"c", b"x")  # 6
    return store


def ks(o: object) -> list[bytes]:
    return [kv.key for kv in o.kvs]  # type: ignore[attr-defined]


def test_limit_and_more(filled: KVStore) -> None:
    o = serve_range(filled, b"a", b"\x00", limit=2)
    assert ks(o) == [b"a", b"b"] and o.more and o.count == 3 and o.rev == 6
    o = serve_range(filled, b"a", b"\x00", limit=3)
    assert ks(o) == [b"a", b"b", b"c"] and not o.more
    o = serve_range(filled, b"a", b"\x00")
    assert not o.more and o.count == 3


@pytest.mark.parametrize(
    ("target", "order", "want"),
    [
        (SortTarget.KEY, SortOrder.DESCEND, [b"c", b"b", b"a"]),
        (SortTarget.VALUE, SortOrder.ASCEND, [b"c", b"b", b"a"]),
        (SortTarget.VALUE, SortOrder.NONE, [b"c", b"b", b"a"]),  # NONE + non-key = ASCEND
        (SortTarget.MOD, SortOrder.DESCEND, [b"c", b"a", b"b"]),
        (SortTarget.CREATE, SortOrder.DESCEND, [b"c", b"b", b"a"]),
        (SortTarget.VERSION, SortOrder.ASCEND, [b"b", b"a", b"c"]),  # ties keep key order
        (SortTarget.VERSION, SortOrder.DESCEND, [b"a", b"c", b"b"]),
    ],
)
def test_sorting(filled: KVStore, target: SortTarget, order: SortOrder, want: list[bytes]) -> None:
    assert ks(serve_range(filled, b"a", b"\x00", sort_target=target, sort_order=order)) == want


def test_sort_then_limit(filled: KVStore) -> None:
    o = serve_range(filled, b"a", b"\x00", limit=1, sort_order=SortOrder.DESCEND)
    assert ks(o) == [b"c"] and o.more and o.count == 3


def test_revision_filters_do_not_change_count(filled: KVStore) -> None:
    o = serve_range(filled, b"a", b"\x00", min_mod_revision=5)
    assert ks(o) == [b"a", b"c"] and o.count == 3
    o = serve_range(filled, b"a", b"\x00", max_mod_revision=5, min_create_revision=3)
    assert ks(o) == [b"b"]
    o = serve_range(filled, b"a", b"\x00", max_create_revision=3, limit=1)
    assert ks(o) == [b"a"] and o.more


def test_keys_only_sorted_by_value(filled: KVStore) -> None:
    o = serve_range(filled, b"a", b"\x00", keys_only=True, sort_target=SortTarget.VALUE)
    assert ks(o) == [b"c", b"b", b"a"]
    assert all(kv.value == b"" for kv in o.kvs)


def test_count_only_and_past_revision(filled: KVStore) -> None:
    o = serve_range(filled, b"a", b"\x00", count_only=True)
    assert o.kvs == [] and o.count == 3
    o = serve_range(filled, b"a", b"\x00", revision=3)
    assert ks(o) == [b"a", b"b"] and o.rev == 6


def test_bad_sort_values(filled: KVStore) -> None:
    # etcd 3.5.1: an unknown sort order sorts nothing (keys stay in key order); an unknown
    # sort target is an error.
    assert ks(serve_range(filled, b"a", b"\x00", sort_order=7)) == \
        ks(serve_range(filled, b"a", b"\x00"))
    with pytest.raises(ValueError):
        serve_range(filled, b"a", sort_target=9)
