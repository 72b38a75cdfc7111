"""A user's merged key permissions, and etcd 3.5's rules for checking a request against them.

Semantics follow etcd's `range_perm_cache.go` on its "affine" byte intervals:

- An interval is `[begin, end)` where an EMPTY bound means +infinity (so `end == b""` is
  "to the end of the keyspace", and an empty begin never matches anything).
- A granted permission with no range end is the point `[key, key + b"\\x00")`; a range end of
  exactly `b"\\x00"` means "from key on" (`end = +inf`); any other range end is `[key, end)`.
- A request with no range end is permitted if some granted interval contains the key.
- A request with a range end (`b"\\x00"` read as +inf) is permitted if the granted intervals
  that intersect it, taken in begin order, form one contiguous run covering all of it.

READWRITE grants both READ and WRITE. Everything here is pure (no I/O), so it is cheap to
rebuild when roles change; the auth store caches one `RangePermissions` per user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from petcd.api.authpb import auth_pb2 as authpb

READ = authpb.Permission.READ
WRITE = authpb.Permission.WRITE
READWRITE = authpb.Permission.READWRITE

Interval = tuple[bytes, bytes]


def _cmp(a: bytes, b: bytes) -> int:
    """Compare two affine bounds: empty is greater than every non-empty value."""
    if not a:
        return 0 if not b else 1
    if not b:
        return -1
    return (a > b) - (a < b)


def _intersects(a: Interval, b: Interval) -> bool:
    return _cmp(a[0], b[1]) < 0 and _cmp(b[0], a[1]) < 0


def _begin_order(iv: Interval) -> tuple[bool, bytes]:
    return (not iv[0], iv[0])


def _covers(granted: list[Interval], want: Interval) -> bool:
    """True if the intervals of `granted` (sorted by begin) that intersect `want` are
    contiguous and span it (etcd's IntervalTree.Contains)."""
    hits = [iv for iv in granted if _intersects(iv, want)]
    if not hits:
        return False
    min_begin, max_end = hits[0]
    for begin, end in hits[1:]:
        if _cmp(max_end, begin) < 0:
            return False
        if _cmp(end, max_end) > 0:
            max_end = end
    return _cmp(max_end, want[1]) >= 0 and _cmp(min_begin, want[0]) <= 0


def _stabs(granted: list[Interval], key: bytes) -> bool:
    """True if some interval of `granted` contains the point `key`."""
    return any(_intersects(iv, (key, key + b"\x00")) for iv in granted)


def perm_interval(key: bytes, range_end: bytes) -> Interval:
    """The interval a granted permission covers (see the module docstring)."""
    if not range_end:
        return (key, key + b"\x00")
    return (key, b"" if range_end == b"\x00" else range_end)


@dataclass(slots=True)
class RangePermissions:
    """The union of every permission of every role of one user, per permission type."""

    read: list[Interval] = field(default_factory=list)
    write: list[Interval] = field(default_factory=list)

    @classmethod
    def merge(cls, perms: Iterable[authpb.Permission]) -> RangePermissions:
        out = cls()
        for p in perms:
            iv = perm_interval(p.key, p.range_end)
            if p.permType in (READ, READWRITE):
                out.read.append(iv)
            if p.permType in (WRITE, READWRITE):
                out.write.append(iv)
        out.read.sort(key=_begin_order)
        out.write.sort(key=_begin_order)
        return out

    def permits(self, key: bytes, range_end: bytes, perm_type: int) -> bool:
        """Whether a request on `[key, range_end)` of `perm_type` (READ or WRITE) is covered."""
        granted = self.read if perm_type == READ else self.write
        if not range_end:
            return _stabs(granted, key)
        return _covers(granted, (key, b"" if range_end == b"\x00" else range_end))
