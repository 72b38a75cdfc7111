"""The LevelDB backend: one database per data dir, split into buckets (see `buckets`).

Contract:
- `Batch` collects puts and deletes; `Backend.write(batch, sync)` applies all of them atomically
  (one LevelDB write batch) or none. `sync=True` makes the write durable before returning.
- Reads (`get`, `iterate`) see every write that returned; they never see half of a batch.
- `snapshot_bytes()` is a consistent point-in-time dump of every state bucket (all buckets except
  the Raft log's) with an integrity trailer; `restore_from_bytes()` replaces every state bucket by
  such a dump in one atomic write and leaves the Raft log buckets alone.
- Failpoints `beforeCommit` and `afterCommit` surround every write; `defragBeforeCopy` and
  `defragBeforeRename` sit in `compact_range` (see `failpoints`).

Not thread-safe by itself beyond what LevelDB gives: callers serialise writers (the node's apply
loop is the only writer of state buckets; the Raft driver the only writer of Raft buckets).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import plyvel  # type: ignore[import-untyped]

from petcd import errors

from . import buckets
from . import failpoints as fp
from .buckets import Bucket
from .failpoints import failpoint

SNAPSHOT_MAGIC = b"PETCDDB1\n"
_REC = struct.Struct(">BII")  # bucket id, key length, value length
_DIGEST_LEN = 32
RAFT_BUCKETS = frozenset({buckets.RAFT_ENTRIES.id, buckets.RAFT_STATE.id})


_DEFRAG_LOW = b"\x00petcd-defrag"
_DEFRAG_HIGH = b"\xffpetcd-defrag"


class SnapshotFormatError(ValueError):
    """The bytes given to `restore_from_bytes` are not an intact petcd backend snapshot."""


class Batch:
    """Puts and deletes to apply atomically. Usable as a context manager from `Backend.batch()`:
    leaving the block without an exception writes it; with an exception, drops it."""

    __slots__ = ("_backend", "_ops", "_sync")

    def __init__(self, backend: Backend | None = None, sync: bool = False) -> None:
        self._ops: list[tuple[bytes, bytes | None]] = []
        self._backend = backend
        self._sync = sync

    def put(self, bucket: Bucket, key: bytes, value: bytes) -> None:
        self._ops.append((bucket.prefix + key, value))

    def delete(self, bucket: Bucket, key: bytes) -> None:
        self._ops.append((bucket.prefix + key, None))

    def extend(self, other: Batch) -> None:
        """Append all operations of `other` (after this batch's own)."""
        self._ops.extend(other._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._backend is not None:
            self._backend.write(self, self._sync)


class Backend:
    """One LevelDB at `path` (created if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        self._db: Any = plyvel.DB(str(self.path), create_if_missing=create)
        self._closed = False
        # A crash inside `compact_range` may leave its sentinel keys behind; they belong to no
        # bucket and must not reach a snapshot.
        for k in (_DEFRAG_LOW, _DEFRAG_HIGH):
            if self._db.get(k) is not None:
                self._db.delete(k, sync=True)

    # --- reads ----------------------------------------------------------------------------------
    def get(self, bucket: Bucket, key: bytes) -> bytes | None:
        v: bytes | None = self._db.get(bucket.prefix + key)
        return v

    def iterate(
        self,
        bucket: Bucket,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for keys in [start, end) of `bucket` in key order (end None: to the end
        of the bucket). Keys are returned without the bucket prefix."""
        stop = bucket.upper if end is None else bucket.prefix + end
        it = self._db.iterator(start=bucket.prefix + start, stop=stop, reverse=reverse)
        for k, v in it:
            yield k[1:], v

    def iterate_keys(
        self, bucket: Bucket, start: bytes = b"", end: bytes | None = None
    ) -> Iterator[bytes]:
        """Like `iterate` but keys only (cheaper)."""
        stop = bucket.upper if end is None else bucket.prefix + end
        for k in self._db.iterator(start=bucket.prefix + start, stop=stop, include_value=False):
            yield k[1:]

    # --- writes ---------------------------------------------------------------------------------
    def batch(self, sync: bool = False) -> Batch:
        """A new batch; as a context manager it is written (with `sync`) when the block ends."""
        return Batch(self, sync)

    def write(self, batch: Batch, sync: bool = False) -> None:
        """Apply every operation of `batch` in one atomic LevelDB write."""
        failpoint(fp.BEFORE_COMMIT)
        with self._db.write_batch(sync=sync) as wb:
            put, delete = wb.put, wb.delete
            for k, v in batch._ops:
                if v is None:
                    delete(k)
                else:
                    put(k, v)
        failpoint(fp.AFTER_COMMIT)

    def put(self, bucket: Bucket, key: bytes, value: bytes, sync: bool = False) -> None:
        failpoint(fp.BEFORE_COMMIT)
        self._db.put(bucket.prefix + key, value, sync=sync)
        failpoint(fp.AFTER_COMMIT)

    def delete(self, bucket: Bucket, key: bytes, sync: bool = False) -> None:
        failpoint(fp.BEFORE_COMMIT)
        self._db.delete(bucket.prefix + key, sync=sync)
        failpoint(fp.AFTER_COMMIT)

    # --- maintenance ----------------------------------------------------------------------------
    def size_bytes(self) -> int:
        """On-disk size of the LevelDB directory (all files)."""
        total = 0
        with os.scandir(self.path) as it:
            for e in it:
                if e.is_file(follow_symlinks=False):
                    total += e.stat(follow_symlinks=False).st_size
        return total

    def size_in_use_bytes(self) -> int:
        """LevelDB's estimate of the space its live data takes (for dbSizeInUse)."""
        n: int = self._db.approximate_size(b"\x00", b"\xff")
        return n

    def compact_range(self) -> None:
        """Rewrite every table, dropping deleted and overwritten data (etcd's defragment).

        Two LevelDB traps: plyvel's `compact_range()` without bounds passes empty slices, not
        NULL, so it compacts nothing but the memtable (hence explicit bounds); and CompactRange
        never rewrites the deepest level holding files, so tombstones could survive there with
        the space they hold. After a first pass flushes the memtable, two sentinel keys below
        and above every bucket make the flushed memtable overlap every table, so the manual
        compaction merges all levels down; the sentinels are deleted before returning.

        Callers must keep other writers and snapshot takers out meanwhile (the server runs it
        on its event loop thread, blocking the member as etcd's defrag blocks its backend).
        """
        db = self._db
        bounds = {"start": b"\x00", "stop": b"\xff" * 16}
        failpoint(fp.DEFRAG_BEFORE_COPY)
        db.compact_range(**bounds)
        db.put(_DEFRAG_LOW, b"")
        db.put(_DEFRAG_HIGH, b"")
        try:
            db.compact_range(**bounds)
            # etcd's point before the defragmented copy replaces the database: the rewritten
            # tables exist, the sentinels are still in.
            failpoint(fp.DEFRAG_BEFORE_RENAME)
        finally:
            db.delete(_DEFRAG_LOW)
            db.delete(_DEFRAG_HIGH)

    def iterate_snapshot(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (raw key, value) pair, bucket prefix included, from one point-in-time view."""
        snap = self._db.snapshot()
        try:
            yield from snap.iterator()
        finally:
            snap.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # --- snapshots ------------------------------------------------------------------------------
    def write_snapshot(self, out: IO[bytes]) -> int:
        """Stream a consistent dump of all state buckets to `out`; returns bytes written.

        Format: SNAPSHOT_MAGIC, then records (bucket id u8, key len u32, value len u32, key,
        value) in key order, then the SHA-256 of everything before it.
        """
        h = hashlib.sha256()
        n = 0

        def emit(b: bytes) -> None:
            nonlocal n
            h.update(b)
            out.write(b)
            n += len(b)

        emit(SNAPSHOT_MAGIC)
        snap = self._db.snapshot()
        try:
            for k, v in snap.iterator():
                if k[0] in RAFT_BUCKETS:
                    continue
                emit(_REC.pack(k[0], len(k) - 1, len(v)) + k[1:] + v)
        finally:
            snap.close()
        digest = h.digest()
        out.write(digest)
        return n + len(digest)

    def snapshot_bytes(self) -> bytes:
        """The dump of `write_snapshot` as bytes (Raft snapshot data)."""
        buf = io.BytesIO()
        self.write_snapshot(buf)
        return buf.getvalue()

    def restore_from_bytes(self, data: bytes, sync: bool = True) -> None:
        """Replace every state bucket by the dump `data`, atomically.

        Raises SnapshotFormatError (and changes nothing) if `data` is not an intact dump.
        """
        records = parse_snapshot(data)
        batch = Batch()
        for k in self._db.iterator(include_value=False):
            if k[0] not in RAFT_BUCKETS:
                batch._ops.append((k, None))
        batch._ops.extend(records)
        self.write(batch, sync=sync)


def parse_snapshot(data: bytes) -> list[tuple[bytes, bytes | None]]:
    """Validate a dump and return its records as (LevelDB key, value) pairs."""
    mv = memoryview(data)
    if len(data) < len(SNAPSHOT_MAGIC) + _DIGEST_LEN or not data.startswith(SNAPSHOT_MAGIC):
        raise SnapshotFormatError(errors.SNAP_NOT_BACKEND)
    body_end = len(data) - _DIGEST_LEN
    if hashlib.sha256(mv[:body_end]).digest() != data[body_end:]:
        raise SnapshotFormatError(errors.SNAP_CHECKSUM)
    out: list[tuple[bytes, bytes | None]] = []
    pos = len(SNAPSHOT_MAGIC)
    hsize = _REC.size
    while pos < body_end:
        if pos + hsize > body_end:
            raise SnapshotFormatError(errors.SNAP_TRUNCATED_RECORD)
        bid, kl, vl = _REC.unpack_from(data, pos)
        pos += hsize
        if bid not in buckets.BY_ID or bid in RAFT_BUCKETS or pos + kl + vl > body_end:
            raise SnapshotFormatError(errors.SNAP_CORRUPT_RECORD)
        k = bytes((bid,)) + data[pos : pos + kl]
        pos += kl
        out.append((k, data[pos : pos + vl]))
        pos += vl
    return out
