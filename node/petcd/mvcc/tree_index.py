"""The in-memory index: every key's `KeyIndex`, ordered by key (etcd's treeIndex).

Lookups by exact key go through a dict (O(1)); ranges walk a `SortedList` of the keys
(O(log n) to position, then O(k)). A new key costs one sorted insert (O(log n) amortised).

Ranges are half-open [key, upper); `upper=None` means no upper bound. Translation of etcd's
range_end conventions (empty = one key, "\\0" = from key) is the caller's (see `kvstore`).
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

from .errors import RevisionNotFoundError
from .key_index import KeyIndex
from .revision import Revision


class TreeIndex:
    __slots__ = ("_by_key", "_keys")

    def __init__(self) -> None:
        self._by_key: dict[bytes, KeyIndex] = {}
        self._keys: SortedList[bytes] = SortedList()

    def __len__(self) -> int:
        return len(self._by_key)

    def key_index(self, key: bytes) -> KeyIndex | None:
        return self._by_key.get(key)

    def get_or_create(self, key: bytes) -> KeyIndex:
        ki = self._by_key.get(key)
        if ki is None:
            ki = KeyIndex(key)
            self._by_key[key] = ki
            self._keys.add(key)
        return ki

    def insert(self, ki: KeyIndex) -> None:
        """Add or replace the index of `ki.key`."""
        if ki.key not in self._by_key:
            self._keys.add(ki.key)
        self._by_key[ki.key] = ki

    def get(self, key: bytes, at_rev: int) -> tuple[Revision, Revision, int] | None:
        """(modified, created, version) of `key` at `at_rev`, None if not live then."""
        ki = self._by_key.get(key)
        if ki is None:
            return None
        return ki.get(at_rev)

    def put(self, key: bytes, rev: Revision) -> None:
        self.get_or_create(key).put(rev)

    def tombstone(self, key: bytes, rev: Revision) -> None:
        """Raises RevisionNotFoundError if `key` is not live."""
        ki = self._by_key.get(key)
        if ki is None:
            raise RevisionNotFoundError()
        ki.tombstone(rev)

    def visit(self, key: bytes, upper: bytes | None) -> Iterator[KeyIndex]:
        """Key indexes with key in [key, upper), in key order."""
        if upper is not None and upper <= key:
            return
        by_key = self._by_key
        for k in self._keys.irange(key, upper, inclusive=(True, False)):
            yield by_key[k]

    def range(
        self, key: bytes, upper: bytes | None, at_rev: int, limit: int = 0
    ) -> tuple[list[tuple[bytes, Revision]], int]:
        """Live keys in [key, upper) at `at_rev` with their revisions, at most `limit` of them
        (0: all); and the total number of live keys in range regardless of limit."""
        out: list[tuple[bytes, Revision]] = []
        total = 0
        for ki in self.visit(key, upper):
            got = ki.get(at_rev)
            if got is not None:
                if limit <= 0 or len(out) < limit:
                    out.append((ki.key, got[0]))
                total += 1
        return out, total

    def count(self, key: bytes, upper: bytes | None, at_rev: int) -> int:
        n = 0
        for ki in self.visit(key, upper):
            if ki.get(at_rev) is not None:
                n += 1
        return n

    def range_since(self, key: bytes, upper: bytes | None, rev: int) -> list[Revision]:
        """All revisions (main >= rev) of keys in [key, upper), in revision order."""
        out: list[Revision] = []
        for ki in self.visit(key, upper):
            out.extend(ki.since(rev))
        out.sort()
        return out

    def compact(self, rev: int) -> set[Revision]:
        """Compact every key at `rev`; remove emptied keys. Returns the revisions kept at or
        below `rev` (everything else at or below `rev` may be deleted from the backend)."""
        available: set[Revision] = set()
        dead: list[bytes] = []
        for k, ki in self._by_key.items():
            ki.compact(rev, available)
            if ki.is_empty():
                dead.append(k)
        for k in dead:
            del self._by_key[k]
            self._keys.remove(k)
        return available

    def keep(self, rev: int) -> set[Revision]:
        """The revisions `compact(rev)` would keep, without compacting."""
        available: set[Revision] = set()
        for ki in self._by_key.values():
            ki.keep(rev, available)
        return available

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeIndex):
            return NotImplemented
        return self._by_key == other._by_key

    __hash__ = None  # type: ignore[assignment]
