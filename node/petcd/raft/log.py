"""The Raft log: persisted entries (Storage) followed by unstable ones.

Invariants: `applied <= committed <= last_index()`; `committed` never decreases; entries at or
below `committed` are never truncated (doing so would be a safety violation and raises).
"""

from __future__ import annotations

from .storage import NO_LIMIT, CompactedError, Storage, UnavailableError, limit_size
from .types import Entry, Snapshot
from .unstable import Unstable


class RaftLogError(AssertionError):
    """An internal invariant of the log was about to be violated."""


class RaftLog:
    __slots__ = ("applied", "committed", "max_next_ents_size", "storage", "unstable")

    def __init__(self, storage: Storage, max_next_ents_size: int = NO_LIMIT) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applied = first - 1
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, unstable={len(self.unstable.entries)})"
        )

    # --- indexes and terms -----------------------------------------------------------------
    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def term(self, i: int) -> int:
        """Term of entry `i`; raises CompactedError / UnavailableError outside the log."""
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        dummy = self.first_index() - 1
        if i < dummy:
            raise CompactedError(f"index {i} compacted")
        if i > self.last_index():
            raise UnavailableError(f"index {i} unavailable")
        return self.storage.term(i)

    def zero_term(self, i: int) -> int:
        """Term of entry `i`, or 0 if it is not in the log."""
        try:
            return self.term(i)
        except (CompactedError, UnavailableError):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, i: int, t: int) -> bool:
        try:
            return self.term(i) == t
        except (CompactedError, UnavailableError):
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """Is a log ending at (term, lasti) at least as up to date as ours (§5.4.1)?"""
        lt = self.last_term()
        return term > lt or (term == lt and lasti >= self.last_index())

    # --- appending -----------------------------------------------------------------------
    def find_conflict(self, ents: list[Entry]) -> int:
        """Index of the first entry in `ents` whose term differs from ours (0: none)."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Largest (i, term(i)) with i <= index and term(i) <= term; stops at the log start."""
        while index > 0:
            try:
                t = self.term(index)
            except (CompactedError, UnavailableError):
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: list[Entry]
    ) -> int | None:
        """Follower side of MsgApp. Returns the new last index of the appended range, or None
        if our entry at `index` does not have `log_term` (the leader must back off)."""
        if not self.match_term(index, log_term):
            return None
        lastnewi = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise RaftLogError(f"entry {ci} conflicts with committed entry {self.committed}")
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, lastnewi))
        return lastnewi

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise RaftLogError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    # --- reading -------------------------------------------------------------------------
    def unstable_entries(self) -> list[Entry]:
        return self.unstable.entries

    def next_ents(self) -> list[Entry]:
        """Committed entries not yet applied."""
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return self.slice(off, self.committed + 1, self.max_next_ents_size)
        return []

    def has_next_ents(self) -> bool:
        return self.committed + 1 > max(self.applied + 1, self.first_index())

    def has_pending_snapshot(self) -> bool:
        return self.unstable.snapshot is not None

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i: int, max_size: int) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        """Every entry still in the log (for tests and debugging)."""
        while True:
            try:
                return self.entries(self.first_index(), NO_LIMIT)
            except CompactedError:
                continue  # raced with compaction in storage; retry

    def slice(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries [lo, hi) limited to max_size bytes. Raises CompactedError below the log."""
        if lo > hi:
            raise RaftLogError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise CompactedError(f"index {lo} compacted")
        if hi > self.last_index() + 1:
            raise RaftLogError(f"slice[{lo},{hi}) out of bound [{fi},{self.last_index()}]")
        if lo == hi:
            return []
        off = self.unstable.offset
        ents: list[Entry] = []
        if lo < off:
            top = min(hi, off)
            stored = self.storage.entries(lo, top, max_size)
            if len(stored) < top - lo:
                return stored  # size limit hit inside storage
            ents = stored
        if hi > off:
            uns = self.unstable.slice(max(lo, off), hi)
            ents = ents + uns if ents else uns
        return limit_size(ents, max_size)

    # --- commit / apply / stable ---------------------------------------------------------
    def commit_to(self, tocommit: int) -> None:
        if self.committed < tocommit:
            if self.last_index() < tocommit:
                raise RaftLogError(
                    f"tocommit({tocommit}) is out of range [lastIndex({self.last_index()})]"
                )
            self.committed = tocommit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit up to `max_index` only if that entry is from `term` (§5.4.2)."""
        if max_index > self.committed and self.zero_term(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise RaftLogError(
                f"applied({i}) is out of range [prevApplied({self.applied}), "
                f"committed({self.committed})]"
            )
        self.applied = i

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    def restore(self, s: Snapshot) -> None:
        self.committed = s.metadata.index
        self.unstable.restore(s)
