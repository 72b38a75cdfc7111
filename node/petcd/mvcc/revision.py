"""Revisions and their on-disk encoding (etcd's `server/mvcc/revision.go`).

A revision is (main, sub): `main` numbers an atomic set of changes (one write txn), `sub` orders
the changes inside it. In the backend's key bucket a change is stored under its revision's
17-byte encoding: 8-byte big-endian main, `_`, 8-byte big-endian sub; a deletion (tombstone)
appends the marker byte `t` (18 bytes). Byte order of encodings equals revision order.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

REV_BYTES_LEN = 17
MARKED_REV_BYTES_LEN = 18
TOMBSTONE_MARK = 0x74  # ord("t")
_REV = struct.Struct(">Q1sQ")
_SEP = b"_"
_MAIN = struct.Struct(">Q")


class Revision(NamedTuple):
    """Ordered like tuples: by main, then sub."""

    main: int
    sub: int = 0


def rev_to_bytes(main: int, sub: int = 0) -> bytes:
    return _REV.pack(main, _SEP, sub)


def tombstone_bytes(main: int, sub: int) -> bytes:
    return _REV.pack(main, _SEP, sub) + b"t"


def bytes_to_rev(b: bytes) -> Revision:
    """Decode a (possibly tombstone-marked) revision key. Raises ValueError if malformed."""
    if len(b) not in (REV_BYTES_LEN, MARKED_REV_BYTES_LEN):
        raise ValueError(f"bad revision bytes length {len(b)}")
    main, _, sub = _REV.unpack_from(b)
    return Revision(main, sub)


def is_tombstone(b: bytes) -> bool:
    return len(b) == MARKED_REV_BYTES_LEN and b[17] == TOMBSTONE_MARK


def main_prefix(main: int) -> bytes:
    """8-byte prefix: all encodings of revisions with this main start with it and sort at or
    after it; use `main_prefix(m + 1)` as an exclusive upper bound for main <= m."""
    return _MAIN.pack(main)
