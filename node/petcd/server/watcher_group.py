"""Indexes of watchers by the keys they watch (etcd's `server/mvcc/watcher_group.go`).

`WatcherGroup.match(key)` answers "which watchers of this group watch `key`" without looking at
watchers that do not: it is called once per changed key on every write, so it must not scan.

- single-key watchers: a dict key -> watchers;
- prefix watchers (range_end == prefix_end(key), what `--prefix` sends): a dict prefix ->
  watchers plus the set of prefix lengths in use, so a key costs one slice and one dict lookup
  per distinct prefix length;
- every other range (including "from key", unbounded above): `IntervalIndex`, a treap of
  distinct intervals augmented with the maximum upper bound of each subtree, whose stabbing
  query visits O(log n + hits) nodes.

A watcher is in at most one of the three structures of a group; `match` therefore yields each
matching watcher exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_INF = (1, b"")
"""Upper bound of an unbounded interval; finite bounds are (0, end) and compare below it."""


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no such key)."""
    p = prefix.rstrip(b"\xff")
    if not p:
        return None
    return p[:-1] + bytes([p[-1] + 1])


class _Node(Generic[T]):
    __slots__ = ("hi", "items", "left", "lo", "max_hi", "prio", "right")

    def __init__(self, lo: bytes, hi: tuple[int, bytes], prio: float) -> None:
        self.lo = lo
        self.hi = hi
        self.max_hi = hi
        self.prio = prio
        self.left: _Node[T] | None = None
        self.right: _Node[T] | None = None
        self.items: set[T] = set()

    def fix(self) -> None:
        m = self.hi
        if self.left is not None and self.left.max_hi > m:
            m = self.left.max_hi
        if self.right is not None and self.right.max_hi > m:
            m = self.right.max_hi
        self.max_hi = m


class IntervalIndex(Generic[T]):
    """Items attached to key intervals [lo, hi) (hi None: unbounded); `stab(key)` yields the
    items of every interval containing `key`. Items of equal intervals share one node."""

    def __init__(self, seed: int = 0x5EED) -> None:
        self._root: _Node[T] | None = None
        self._rng = random.Random(seed)
        self._len = 0

    def __len__(self) -> int:
        """Number of distinct intervals."""
        return self._len

    def add(self, lo: bytes, hi: bytes | None, item: T) -> None:
        h = _INF if hi is None else (0, hi)
        node = self._find(lo, h)
        if node is None:
            node = _Node[T](lo, h, self._rng.random())
            self._root = self._insert(self._root, node)
            self._len += 1
        node.items.add(item)

    def remove(self, lo: bytes, hi: bytes | None, item: T) -> bool:
        """Detach `item` from [lo, hi); False if it was not attached."""
        h = _INF if hi is None else (0, hi)
        node = self._find(lo, h)
        if node is None or item not in node.items:
            return False
        node.items.discard(item)
        if not node.items:
            self._root = self._delete(self._root, lo, h)
            self._len -= 1
        return True

    def stab(self, key: bytes) -> Iterator[T]:
        point = (0, key)
        stack: list[_Node[T]] = []
        if self._root is not None:
            stack.append(self._root)
        while stack:
            n = stack.pop()
            if n.max_hi <= point:  # nothing below ends after key
                continue
            if n.left is not None:
                stack.append(n.left)
            if n.lo <= key:
                if point < n.hi:
                    yield from n.items
                if n.right is not None:
                    stack.append(n.right)

    def _find(self, lo: bytes, hi: tuple[int, bytes]) -> _Node[T] | None:
        n = self._root
        k = (lo, hi)
        while n is not None:
            nk = (n.lo, n.hi)
            if k == nk:
                return n
            n = n.left if k < nk else n.right
        return None

    def _insert(self, root: _Node[T] | None, node: _Node[T]) -> _Node[T]:
        if root is None:
            return node
        if (node.lo, node.hi) < (root.lo, root.hi):
            root.left = self._insert(root.left, node)
            if root.left.prio > root.prio:
                root = _rotate_right(root)
        else:
            root.right = self._insert(root.right, node)
            if root.right.prio > root.prio:
                root = _rotate_left(root)
        root.fix()
        return root

    def _delete(
        self, root: _Node[T] | None, lo: bytes, hi: tuple[int, bytes]
    ) -> _Node[T] | None:
        if root is None:
            return None
        k, rk = (lo, hi), (root.lo, root.hi)
        if k < rk:
            root.left = self._delete(root.left, lo, hi)
        elif k > rk:
            root.right = self._delete(root.right, lo, hi)
        else:
            if root.left is None:
                return root.right
            if root.right is None:
                return root.left
            if root.left.prio > root.right.prio:
                root = _rotate_right(root)
                root.right = self._delete(root.right, lo, hi)
            else:
                root = _rotate_left(root)
                root.left = self._delete(root.left, lo, hi)
        root.fix()
        return root


def _rotate_right(n: _Node[T]) -> _Node[T]:
    left = n.left
    assert left is not None
    n.left = left.right
    left.right = n
    n.fix()
    left.fix()
    return left


def _rotate_left(n: _Node[T]) -> _Node[T]:
    right = n.right
    assert right is not None
    n.right = right.left
    right.left = n
    n.fix()
    right.fix()
    return right


class WatcherGroup(Generic[T]):
    """A set of watchers indexed by their key range (see the module docstring).

    `add(w, key, end)`: `end` None watches the single `key`; b"" every key >= `key`; otherwise
    [key, end). The caller keeps each watcher's (key, end) unchanged while it is in the group
    and passes the same values to `remove`.
    """

    def __init__(self) -> None:
        self.members: set[T] = set()
        self._keys: dict[bytes, set[T]] = {}
        self._prefixes: dict[bytes, set[T]] = {}
        self._prefix_lens: dict[int, int] = {}
        self._ranges: IntervalIndex[T] = IntervalIndex()

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, w: T) -> bool:
        return w in self.members

    def add(self, w: T, key: bytes, end: bytes | None) -> None:
        if w in self.members:
            raise ValueError("watcher already in group")
        self.members.add(w)
        if end is None:
            self._keys.setdefault(key, set()).add(w)
        elif end and end == prefix_end(key):
            self._prefixes.setdefault(key, set()).add(w)
            n = len(key)
            self._prefix_lens[n] = self._prefix_lens.get(n, 0) + 1
        else:
            self._ranges.add(key, end or None, w)

    def remove(self, w: T, key: bytes, end: bytes | None) -> bool:
        """Take `w` out; False if it was not in the group."""
        if w not in self.members:
            return False
        self.members.discard(w)
        if end is None:
            _discard(self._keys, key, w)
        elif end and end == prefix_end(key):
            _discard(self._prefixes, key, w)
            n = len(key)
            left = self._prefix_lens[n] - 1
            if left:
                self._prefix_lens[n] = left
            else:
                del self._prefix_lens[n]
        else:
            self._ranges.remove(key, end or None, w)
        return True

    def match(self, key: bytes) -> Iterator[T]:
        """Every watcher of the group whose range contains `key`, each once."""
        ws = self._keys.get(key)
        if ws:
            yield from ws
        if self._prefix_lens:
            n = len(key)
            prefixes = self._prefixes
            for ln in self._prefix_lens:
                if ln <= n:
                    ps = prefixes.get(key[:ln])
                    if ps:
                        yield from ps
        if len(self._ranges):
            yield from self._ranges.stab(key)


def _discard(d: dict[bytes, set[T]], key: bytes, w: T) -> None:
    s = d.get(key)
    if s is not None:
        s.discard(w)
        if not s:
            del d[key]
