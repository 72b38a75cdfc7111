"""The read side of durable Raft state (`Storage`) and an in-memory implementation.

Invariant of `MemoryStorage`: `_ents[0]` is a dummy entry carrying the index and term of the last
compaction/snapshot point; real entries follow contiguously. first_index() is `_ents[0].index + 1`.
"""

from __future__ import annotations

from typing import Protocol

from .types import (
    EMPTY_HARD_STATE,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)

NO_LIMIT = 1 << 62
"""Use as max_size to mean "no size limit"."""

ENTRY_OVERHEAD = 16
"""Approximate encoded bytes per entry beyond its data, used for size limits."""


class StorageError(Exception):
    """Base class of storage errors the Raft core understands."""


class CompactedError(StorageError):
    """Requested index is at or below the compaction point."""


class UnavailableError(StorageError):
    """Requested index is beyond the last stored entry."""


class SnapshotOutOfDateError(StorageError):
    """Snapshot being applied or created is older than the current one."""


class SnapshotTemporarilyUnavailableError(StorageError):
    """A snapshot is being produced; the caller should retry later."""


def entry_size(e: Entry) -> int:
    return len(e.data) + ENTRY_OVERHEAD


def limit_size(ents: list[Entry], max_size: int) -> list[Entry]:
    """Longest prefix of `ents` within `max_size` bytes, but never fewer than one entry."""
    if len(ents) <= 1 or max_size >= NO_LIMIT:
        return ents
    size = entry_size(ents[0])
    for i in range(1, len(ents)):
        size += entry_size(ents[i])
        if size > max_size:
            return ents[:i]
    return ents


class Storage(Protocol):
    """Durable state as last persisted by the driver. Read by the core, never written by it."""

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries [lo, hi), at least one if any, limited to max_size bytes."""
        ...

    def term(self, i: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


class MemoryStorage:
    """Storage held in memory. `conf_state` bootstraps membership of a fresh cluster."""

    __slots__ = ("_ents", "_hard_state", "_snapshot")

    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard_state = EMPTY_HARD_STATE
        self._snapshot = Snapshot(SnapshotMetadata(conf_state=conf_state or ConfState()))
        self._ents: list[Entry] = [Entry()]

    # --- read side -------------------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise CompactedError(f"index {lo} compacted (first is {offset + 1})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"entries hi {hi} beyond last index {self.last_index()}")
        if len(self._ents) == 1:
            raise UnavailableError("no entries")
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise CompactedError(f"index {i} compacted")
        if i - offset >= len(self._ents):
            raise UnavailableError(f"index {i} unavailable")
        return self._ents[i - offset].term

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    # --- write side (the driver's) -----------------------------------------------------------
    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace all state with `snap`. Raises SnapshotOutOfDateError if it is not newer."""
        if snap.metadata.index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError("snapshot out of date")
        self._snapshot = snap
        self._ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, i: int, cs: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the application at applied index `i` (does not compact)."""
        if i <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError("snapshot out of date")
        if i > self.last_index():
            raise UnavailableError(f"snapshot index {i} beyond last index {self.last_index()}")
        offset = self._ents[0].index
        cs = cs if cs is not None else self._snapshot.metadata.conf_state
        self._snapshot = Snapshot(SnapshotMetadata(i, self._ents[i - offset].term, cs), data)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard entries up to and including `compact_index` (which must be applied)."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise CompactedError(f"index {compact_index} already compacted")
        if compact_index > self.last_index():
            raise UnavailableError(f"compact {compact_index} beyond last {self.last_index()}")
        i = compact_index - offset
        head = Entry(term=self._ents[i].term, index=self._ents[i].index)
        self._ents = [head, *self._ents[i + 1 :]]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, truncating any stored suffix they conflict with.

        `entries` must be contiguous and must not leave a gap after the last stored entry.
        """
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise ValueError(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )
        del self._ents[offset:]
        self._ents.extend(entries)
