"""Errors of the MVCC store; messages are etcd's (`server/mvcc/kvstore.go`)."""

from __future__ import annotations


class MVCCError(Exception):
    """Base of MVCC errors."""


class CompactedError(MVCCError):
    """The requested revision is older than the store keeps. `compact_rev` is the store's
    compaction revision when the error was raised."""

    def __init__(self, compact_rev: int) -> None:
        super().__init__("mvcc: required revision has been compacted")
        self.compact_rev = compact_rev


class FutureRevError(MVCCError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, current_rev: int) -> None:
        super().__init__("mvcc: required revision is a future revision")
        self.current_rev = current_rev


class RevisionNotFoundError(MVCCError):
    """Internal: a key has no live version at the requested revision."""

    def __init__(self) -> None:
        super().__init__("mvcc: revision not found")
