"""Small helpers shared by the MVCC tests."""

from __future__ import annotations

from petcd.mvcc.kvstore import KVStore


def put(s: KVStore, key: bytes, value: bytes, lease: int = 0) -> int:
    t = s.write()
    t.put(key, value, lease)
    return t.end()


def delete(s: KVStore, key: bytes, end: bytes | None = None) -> int:
    t = s.write()
    t.delete_range(key, end)
    return t.end()


def keys(s: KVStore, key: bytes, end: bytes | None = None, rev: int = 0) -> list[bytes]:
    return [kv.key for kv in s.range(key, end, rev).kvs]
