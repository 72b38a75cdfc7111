"""A Range request served the way etcd's applier does it (`etcdserver/apply.go` Range).

Order of operations, as etcd:
1. if any sort or min/max revision filter is set, read everything in range (no limit);
   otherwise read `limit + 1` kvs (one extra to learn `more`);
2. drop kvs outside the max/min mod and create revision filters (`count` is NOT reduced);
3. sort: target KEY with order NONE keeps key order; any other target with order NONE sorts
   ASCEND; equal elements keep key order (stable sort);
4. truncate to `limit`, setting `more` if anything was cut;
5. keys_only empties values (after sorting, so sorting by VALUE still works).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from .kv import KeyValue, RangeResult


class SortOrder(IntEnum):
    """etcdserverpb.RangeRequest.SortOrder."""

    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(IntEnum):
    """etcdserverpb.RangeRequest.SortTarget."""

    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


class RangeReader(Protocol):
    """`KVStore` and `WriteTxn` both are."""

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult: ...


@dataclass(slots=True)
class RangeOutcome:
    """Fields of an etcd RangeResponse (header revision is `rev`)."""

    kvs: list[KeyValue]
    count: int
    more: bool
    rev: int


def _key(kv: KeyValue) -> bytes:
    return kv.key


def _version(kv: KeyValue) -> int:
    return kv.version


def _create(kv: KeyValue) -> int:
    return kv.create_revision


def _mod(kv: KeyValue) -> int:
    return kv.mod_revision


def _value(kv: KeyValue) -> bytes:
    return kv.value


_SORT_KEYS: dict[SortTarget, Callable[[KeyValue], Any]] = {
    SortTarget.KEY: _key,
    SortTarget.VERSION: _version,
    SortTarget.CREATE: _create,
    SortTarget.MOD: _mod,
    SortTarget.VALUE: _value,
}


def serve_range(
    reader: RangeReader,
    key: bytes,
    range_end: bytes | None = None,
    *,
    revision: int = 0,
    limit: int = 0,
    sort_order: int = SortOrder.NONE,
    sort_target: int = SortTarget.KEY,
    count_only: bool = False,
    keys_only: bool = False,
    min_mod_revision: int = 0,
    max_mod_revision: int = 0,
    min_create_revision: int = 0,
    max_create_revision: int = 0,
) -> RangeOutcome:
    """Serve one RangeRequest from `reader`. Raises what `reader.range` raises
    (CompactedError, FutureRevError) and ValueError for an unknown sort target.

    An unknown sort order (not NONE, ASCEND or DESCEND) sorts nothing but, like any order but
    NONE, reads without the limit first, as etcd 3.5.1's applier does (issue 15 fuzzer).
    """
    order = sort_order
    target = SortTarget(sort_target)
    filtered = bool(
        min_mod_revision or max_mod_revision or min_create_revision or max_create_revision
    )
    read_limit = limit
    if order != SortOrder.NONE or filtered:
        read_limit = 0
    if read_limit > 0:
        read_limit += 1
    # values are needed to sort by value even when the response drops them
    read_keys_only = keys_only and target != SortTarget.VALUE
    rr = reader.range(key, range_end, revision, read_limit, count_only, read_keys_only)
    kvs = rr.kvs
    if filtered:
        kvs = [
            kv
            for kv in kvs
            if not (max_mod_revision and kv.mod_revision > max_mod_revision)
            and not (min_mod_revision and kv.mod_revision < min_mod_revision)
            and not (max_create_revision and kv.create_revision > max_create_revision)
            and not (min_create_revision and kv.create_revision < min_create_revision)
        ]
    if target != SortTarget.KEY and order == SortOrder.NONE:
        order = SortOrder.ASCEND
    if order == SortOrder.ASCEND:
        if target != SortTarget.KEY:  # kvs already ascend by key
            kvs.sort(key=_SORT_KEYS[target])
    elif order == SortOrder.DESCEND:
        kvs.sort(key=_SORT_KEYS[target], reverse=True)
    more = False
    if limit > 0 and len(kvs) > limit:
        del kvs[limit:]
        more = True
    if keys_only and not read_keys_only:
        for kv in kvs:
            kv.value = b""
    return RangeOutcome(kvs, rr.count, more, rr.rev)
