"""Per-key revision history, as etcd's keyIndex (`server/mvcc/key_index.go`).

A key's history is a list of generations. A generation is the run of revisions from a creation
to (and including) the deletion that ends it; the last generation is the live one and may be
empty (the key is currently deleted). Example, put(1) put(2) del(3) put(4) del(5):

    [ {1, 2, 3(tombstone)}, {4, 5(tombstone)}, {} ]

Invariants:
- revisions strictly increase across the whole history; `modified` is the last one;
- every generation but the last is non-empty and ends with its tombstone;
- `ver` of a generation counts the revisions ever put in it (compaction drops revisions, not
  versions), so version of revs[i] is `ver - (len(revs) - 1 - i)`.
"""

from __future__ import annotations

from .errors import RevisionNotFoundError
from .revision import Revision

_ZERO = Revision(0, 0)


class Generation:
    __slots__ = ("created", "revs", "ver")

    def __init__(self, ver: int = 0, created: Revision = _ZERO, revs: list[Revision] | None = None):
        self.ver = ver
        self.created = created
        self.revs: list[Revision] = [] if revs is None else revs

    def is_empty(self) -> bool:
        return not self.revs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Generation):
            return NotImplemented
        return self.ver == other.ver and self.revs == other.revs

    def __repr__(self) -> str:
        return f"Generation(ver={self.ver}, created={tuple(self.created)}, revs={self.revs})"


class KeyIndex:
    """Revision history of one key. Mutated only by the store's single writer."""

    __slots__ = ("generations", "key", "modified")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.modified = _ZERO
        self.generations: list[Generation] = [Generation()]

    def put(self, rev: Revision) -> None:
        """Record a new version at `rev` (> modified) in the live generation."""
        if rev <= self.modified:
            raise ValueError(f"put with a non-increasing revision {rev} <= {self.modified}")
        g = self.generations[-1]
        if not g.revs:
            g.created = rev
        g.revs.append(rev)
        g.ver += 1
        self.modified = rev

    def restore(self, created: Revision, modified: Revision, ver: int) -> None:
        """Seed an empty index from one stored version (used when reloading from disk)."""
        if self.generations[-1].revs or len(self.generations) != 1:
            raise ValueError("restore on a non-empty key index")
        self.modified = modified
        self.generations = [Generation(ver, created, [modified])]

    def tombstone(self, rev: Revision) -> None:
        """Record a deletion at `rev` and start a new empty generation.

        Raises RevisionNotFoundError if the key is not live.
        """
        if not self.generations[-1].revs:
            raise RevisionNotFoundError()
        self.put(rev)
        self.generations.append(Generation())

    def get(self, at_rev: int) -> tuple[Revision, Revision, int] | None:
        """(modified, created, version) of the key as of main revision `at_rev`, or None if the
        key did not exist then (never created, deleted, or compacted away)."""
        g = self.find_generation(at_rev)
        if g is None:
            return None
        revs = g.revs
        for i in range(len(revs) - 1, -1, -1):
            r = revs[i]
            if r.main <= at_rev:
                return r, g.created, g.ver - (len(revs) - 1 - i)
        return None

    def live(self) -> tuple[Revision, Revision, int] | None:
        """Same as `get(modified.main)`, cheaply: the latest version, None if deleted."""
        g = self.generations[-1]
        if not g.revs:
            return None
        return g.revs[-1], g.created, g.ver

    def find_generation(self, rev: int) -> Generation | None:
        """The generation that holds the key's state at `rev`, None if it was not live."""
        gens = self.generations
        last = len(gens) - 1
        for i in range(last, -1, -1):
            g = gens[i]
            if not g.revs:
                continue
            if i != last and g.revs[-1].main <= rev:
                return None  # rev is at or after this generation's tombstone
            if g.revs[0].main <= rev:
                return g
        return None

    def since(self, rev: int) -> list[Revision]:
        """Revisions with main >= `rev`, one per main revision (the highest sub)."""
        since = Revision(rev, 0)
        gens = self.generations
        gi = len(gens) - 1
        while gi > 0:
            g = gens[gi]
            if g.revs and since > g.created:
                break
            gi -= 1
        out: list[Revision] = []
        last = 0
        for g in gens[gi:]:
            for r in g.revs:
                if since > r:
                    continue
                if r.main == last:
                    out[-1] = r
                    continue
                out.append(r)
                last = r.main
        return out

    def _do_compact(self, at_rev: int, available: set[Revision]) -> tuple[int, int]:
        """Generation index and rev index (-1: none) of the newest revision <= at_rev that
        compaction keeps; adds it to `available`."""
        gens = self.generations
        gi = 0
        # skip generations whose tombstone is at or below at_rev
        while gi < len(gens) - 1 and gens[gi].revs[-1].main <= at_rev:
            gi += 1
        revs = gens[gi].revs
        for ri in range(len(revs) - 1, -1, -1):
            if revs[ri].main <= at_rev:
                available.add(revs[ri])
                return gi, ri
        return gi, -1

    def compact(self, at_rev: int, available: set[Revision]) -> None:
        """Drop revisions <= at_rev except the newest; drop that too if it is a tombstone.
        Adds the kept revision (if any) to `available`. Emptied generations are removed; the
        caller removes the whole index when `is_empty()` afterwards."""
        gi, ri = self._do_compact(at_rev, available)
        g = self.generations[gi]
        if g.revs:
            if ri != -1:
                del g.revs[:ri]
            if len(g.revs) == 1 and gi != len(self.generations) - 1:
                available.discard(g.revs[0])  # a lone tombstone is not kept
                gi += 1
        if gi:
            del self.generations[:gi]

    def keep(self, at_rev: int, available: set[Revision]) -> None:
        """Add to `available` the revision compact(at_rev) would keep, without changing self."""
        if self.is_empty():
            return
        gi, ri = self._do_compact(at_rev, available)
        g = self.generations[gi]
        if g.revs and ri == len(g.revs) - 1 and gi != len(self.generations) - 1:
            available.discard(g.revs[ri])

    def is_empty(self) -> bool:
        return len(self.generations) == 1 and not self.generations[0].revs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyIndex):
            return NotImplemented
        return (
            self.key == other.key
            and self.modified == other.modified
            and self.generations == other.generations
        )

    def __repr__(self) -> str:
        return f"KeyIndex({self.key!r}, modified={tuple(self.modified)}, {self.generations})"
