"""Entries and snapshot the core has accepted but the driver has not yet persisted.

Invariant: `entries[i].index == offset + i`; if `snapshot` is set, `offset == snapshot index + 1`
or later. Entries here supersede those in storage at the same index.
"""

from __future__ import annotations

from .types import Entry, Snapshot


class Unstable:
    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == i:
                return self.snapshot.metadata.term
            return None
        k = i - self.offset
        if k >= len(self.entries):
            return None
        return self.entries[k].term

    def stable_to(self, i: int, t: int) -> None:
        """Entries up to `i` (with term `t`) are persisted; forget them if still ours."""
        gt = self.maybe_term(i)
        if gt is None or gt != t or i < self.offset:
            # Either already stable, or the entry was replaced after the Ready was produced.
            return
        del self.entries[: i + 1 - self.offset]
        self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, s: Snapshot) -> None:
        self.offset = s.metadata.index + 1
        self.entries = []
        self.snapshot = s

    def truncate_and_append(self, ents: list[Entry]) -> None:
        first = ents[0].index
        if first == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif first <= self.offset:
            # Replaces everything unstable; storage entries >= first are overridden by these.
            self.offset = first
            self.entries = list(ents)
        else:
            del self.entries[first - self.offset :]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        if lo < self.offset or hi > self.offset + len(self.entries) or lo > hi:
            raise ValueError(
                f"unstable.slice[{lo},{hi}) out of bound [{self.offset},"
                f"{self.offset + len(self.entries)}]"
            )
        return self.entries[lo - self.offset : hi - self.offset]
