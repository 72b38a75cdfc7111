"""HashKV: equal for equal histories, and equal to etcd 3.5.1's values for the same history.

The expected numbers were taken from a real etcd 3.5.1 (`etcdctl endpoint hashkv`) after:
put a 1; put b 2; put a 3; del a; put c "" (revisions 2..6), then `compaction 4`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mvcc_helpers import delete, put
from petcd.mvcc.errors import CompactedError, FutureRevError
from petcd.mvcc.kvstore import KVStore
from petcd.storage.backend import Backend


def etcd_history(s: KVStore) -> None:
    put(s, b"a", b"1")
    put(s, b"b", b"2")
    put(s, b"a", b"3")
    delete(s, b"a")
    put(s, b"c", b"")


def test_hash_matches_etcd(store: KVStore) -> None:
    assert store.hash_kv() == (1084519789, -1)  # fresh etcd: revision 1
    etcd_history(store)
    assert store.hash_kv() == (2522524288, -1)
    assert store.hash_kv(4) == (2069675932, -1)
    store.compact(4)
    assert store.hash_kv() == (3545813561, 4)
    assert store.hash_kv(5) == (2051293682, 4)
    with pytest.raises(CompactedError):
        store.hash_kv(4)
    with pytest.raises(FutureRevError):
        store.hash_kv(7)


def test_equal_history_equal_hash_across_reopen(tmp_path: Path) -> None:
    stores = []
    for name in ("m1", "m2"):
        s = KVStore(Backend(tmp_path / name))
        etcd_history(s)
        stores.append(s)
    a, b = stores
    assert a.hash_kv() == b.hash_kv()
    a.compact(5)
    b.compact(5)
    assert a.hash_kv(6) == b.hash_kv(6)
    before = a.hash_kv()
    a.backend.close()
    a = KVStore(Backend(tmp_path / "m1"))
    assert a.hash_kv() == before
    put(b, b"d", b"x")
    assert a.hash_kv() != b.hash_kv()
    a.backend.close()
    b.backend.close()
