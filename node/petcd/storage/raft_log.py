"""The durable Raft log: hard state, entries and snapshot in a LevelDB of their own.

`DurableRaftStorage` implements the raft `Storage` protocol from an in-memory copy of the log
(like raft's MemoryStorage) that mirrors what is on disk. Layout (see `buckets`):

- RAFT_ENTRIES: key = 8-byte big-endian index, value = `>QQB` (term, index, type) + data;
- RAFT_STATE: hard state `>QQQ` (term, vote, commit); log offset `>QQ` (index, term of the entry
  just before the first stored one); snapshot metadata and snapshot data.

Invariants: stored entries are exactly (offset.index, last_index], contiguous; the in-memory
copy equals the stored one after every call returns; `save` is ONE LevelDB write (synced when
asked), so a crash leaves either all or none of a Ready's state.

Thread-safety: `save` may run on an I/O thread while the Raft core reads on another; a lock
guards the in-memory copy, which is changed only after the disk write succeeded.
"""

from __future__ import annotations

import os
import struct
import threading

from petcd.raft.storage import (
    CompactedError,
    SnapshotOutOfDateError,
    UnavailableError,
    limit_size,
)
from petcd.raft.types import (
    EMPTY_HARD_STATE,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)

from . import buckets
from .backend import Backend, Batch

_ENT = struct.Struct(">QQB")
_IDX = struct.Struct(">Q")
_HS = struct.Struct(">QQQ")
_OFF = struct.Struct(">QQ")
_SNAP = struct.Struct(">QQII")
_ENTRIES = buckets.RAFT_ENTRIES
_STATE = buckets.RAFT_STATE


def encode_entry(e: Entry) -> bytes:
    return _ENT.pack(e.term, e.index, int(e.type)) + e.data


def decode_entry(b: bytes) -> Entry:
    term, index, t = _ENT.unpack_from(b)
    return Entry(term, index, EntryType(t), b[_ENT.size :])


def encode_snapshot_meta(m: SnapshotMetadata) -> bytes:
    cs = m.conf_state
    ids = (*cs.voters, *cs.learners)
    return _SNAP.pack(m.index, m.term, len(cs.voters), len(cs.learners)) + struct.pack(
        f">{len(ids)}Q", *ids
    )


def decode_snapshot_meta(b: bytes) -> SnapshotMetadata:
    index, term, nv, nl = _SNAP.unpack_from(b)
    ids = struct.unpack_from(f">{nv + nl}Q", b, _SNAP.size)
    return SnapshotMetadata(index, term, ConfState(tuple(ids[:nv]), tuple(ids[nv:])))


class DurableRaftStorage:
    """Raft `Storage` persisted in the LevelDB at `path` (created if missing).

    `conf_state` bootstraps the membership of a brand-new log (ignored when the log exists);
    it is persisted as the metadata of an empty snapshot at index 0.
    """

    def __init__(self, path: str | os.PathLike[str], conf_state: ConfState | None = None):
        self._b = Backend(path)
        self._lock = threading.Lock()
        b = self._b
        raw = b.get(_STATE, buckets.RAFT_HARD_STATE)
        self._hard_state = HardState(*_HS.unpack(raw)) if raw else EMPTY_HARD_STATE
        raw = b.get(_STATE, buckets.RAFT_SNAPSHOT_META)
        if raw is not None:
            data = b.get(_STATE, buckets.RAFT_SNAPSHOT_DATA) or b""
            self._snapshot = Snapshot(decode_snapshot_meta(raw), data)
        else:
            self._snapshot = Snapshot(SnapshotMetadata(conf_state=conf_state or ConfState()))
            if conf_state is not None:
                b.put(
                    _STATE,
                    buckets.RAFT_SNAPSHOT_META,
                    encode_snapshot_meta(self._snapshot.metadata),
                    sync=True,
                )
        raw = b.get(_STATE, buckets.RAFT_LOG_OFFSET)
        off_index, off_term = _OFF.unpack(raw) if raw else (0, 0)
        ents = [Entry(term=off_term, index=off_index)]
        for k, v in b.iterate(_ENTRIES, _IDX.pack(off_index + 1)):
            e = decode_entry(v)
            if e.index != off_index + len(ents) or _IDX.unpack(k)[0] != e.index:
                raise RuntimeError(f"raft log: gap or corrupt entry at index {e.index}")
            ents.append(e)
        self._ents = ents

    # --- raft Storage protocol ------------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        with self._lock:
            return self._hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        with self._lock:
            ents = self._ents
            offset = ents[0].index
            last = offset + len(ents) - 1
            if lo <= offset:
                raise CompactedError(f"index {lo} compacted (first is {offset + 1})")
            if hi > last + 1:
                raise UnavailableError(f"entries hi {hi} beyond last index {last}")
            if len(ents) == 1:
                raise UnavailableError("no entries")
            sl = ents[lo - offset : hi - offset]
        return limit_size(sl, max_size)

    def term(self, i: int) -> int:
        with self._lock:
            ents = self._ents
            offset = ents[0].index
            if i < offset:
                raise CompactedError(f"index {i} compacted")
            if i - offset >= len(ents):
                raise UnavailableError(f"index {i} unavailable")
            return ents[i - offset].term

    def first_index(self) -> int:
        with self._lock:
            return self._ents[0].index + 1

    def last_index(self) -> int:
        with self._lock:
            return self._ents[0].index + len(self._ents) - 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    @property
    def hard_state(self) -> HardState:
        with self._lock:
            return self._hard_state

    # --- the driver's write side ----------------------------------------------------------------
    def save(
        self,
        hard_state: HardState | None,
        entries: list[Entry],
        snapshot: Snapshot | None,
        sync: bool = True,
    ) -> None:
        """Persist one Ready: snapshot first (replacing the whole log), then entries (replacing
        any stored suffix from the first new index on), then the hard state; ONE LevelDB write.

        Raises SnapshotOutOfDateError for a snapshot not newer than the stored one, ValueError
        for entries that would leave a gap after the last stored entry. Nothing changes then.
        """
        batch = Batch()
        with self._lock:
            head = self._ents[0]
            last = head.index + len(self._ents) - 1
        new_snap: Snapshot | None = None
        if snapshot is not None and not snapshot.is_empty():
            if snapshot.metadata.index <= self._snapshot.metadata.index:
                raise SnapshotOutOfDateError("snapshot out of date")
            new_snap = snapshot
            for i in range(head.index + 1, last + 1):
                batch.delete(_ENTRIES, _IDX.pack(i))
            m = snapshot.metadata
            self._put_snapshot(batch, snapshot)
            batch.put(_STATE, buckets.RAFT_LOG_OFFSET, _OFF.pack(m.index, m.term))
            head = Entry(term=m.term, index=m.index)
            last = m.index
        cut = -1  # keep in-memory entries [0, cut) then append `entries`; -1: append nothing
        if entries:
            first = head.index + 1
            if entries[-1].index >= first:
                if entries[0].index < first:
                    entries = entries[first - entries[0].index :]
                cut = entries[0].index - head.index
                if entries[0].index > last + 1:
                    raise ValueError(
                        f"missing log entry [last: {last}, append at: {entries[0].index}]"
                    )
                for i in range(entries[-1].index + 1, last + 1):
                    batch.delete(_ENTRIES, _IDX.pack(i))
                pack = _IDX.pack
                for e in entries:
                    batch.put(_ENTRIES, pack(e.index), encode_entry(e))
        if hard_state is not None:
            batch.put(
                _STATE,
                buckets.RAFT_HARD_STATE,
                _HS.pack(hard_state.term, hard_state.vote, hard_state.commit),
            )
        if len(batch):
            self._b.write(batch, sync)
        with self._lock:
            if new_snap is not None:
                self._snapshot = new_snap
                self._ents = [head]
            if cut >= 0:
                del self._ents[cut:]
                self._ents.extend(entries)
            if hard_state is not None:
                self._hard_state = hard_state

    def apply_snapshot(self, snap: Snapshot, sync: bool = True) -> None:
        """Replace the log by `snap` (same as `save(None, [], snap)`)."""
        self.save(None, [], snap, sync)

    def create_snapshot(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record (durably) a snapshot of the applied state at `index`; does not compact.

        Raises SnapshotOutOfDateError if not newer than the stored snapshot, UnavailableError
        if `index` is beyond the last entry, CompactedError if its entry is compacted away.
        """
        with self._lock:
            if index <= self._snapshot.metadata.index:
                raise SnapshotOutOfDateError("snapshot out of date")
            cs = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        snap = Snapshot(SnapshotMetadata(index, self.term(index), cs), data)
        batch = Batch()
        self._put_snapshot(batch, snap)
        self._b.write(batch, sync=True)
        with self._lock:
            self._snapshot = snap
        return snap

    def compact(self, index: int) -> None:
        """Discard entries up to and including `index` (which must be applied).

        Raises CompactedError if already compacted, UnavailableError if beyond the last entry.
        """
        with self._lock:
            ents = self._ents
            offset = ents[0].index
            last = offset + len(ents) - 1
            if index <= offset:
                raise CompactedError(f"index {index} already compacted")
            if index > last:
                raise UnavailableError(f"compact {index} beyond last {last}")
            term = ents[index - offset].term
        batch = Batch()
        for i in range(offset + 1, index + 1):
            batch.delete(_ENTRIES, _IDX.pack(i))
        batch.put(_STATE, buckets.RAFT_LOG_OFFSET, _OFF.pack(index, term))
        self._b.write(batch, sync=False)
        with self._lock:
            self._ents = [Entry(term=term, index=index), *self._ents[index - offset + 1 :]]

    def close(self) -> None:
        self._b.close()

    def _put_snapshot(self, batch: Batch, snap: Snapshot) -> None:
        batch.put(_STATE, buckets.RAFT_SNAPSHOT_META, encode_snapshot_meta(snap.metadata))
        batch.put(_STATE, buckets.RAFT_SNAPSHOT_DATA, snap.data)
