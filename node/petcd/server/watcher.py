"""Watchers, watch requests and watch responses as the watch hub sees them (no protobuf).

This module and the hub never import the generated stubs: the gRPC adapter
(`petcd.grpc_api.watch`) converts `WatchSpec` from and `WatchResponse` to the wire messages, so
the hub can be tested in a process that also uses a client library's stubs.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from petcd.mvcc.kv import Event, EventType

if TYPE_CHECKING:
    from petcd.server.watch_hub import WatchStream

AUTO_WATCH_ID = 0
"""A create request with this watch_id asks the stream to pick one (etcd's AutoWatchID)."""

INVALID_WATCH_ID = -1
"""watch_id of refused creates and of progress responses not tied to one watcher."""



@dataclass(slots=True)
class WatchSpec:
    """A create request, with the fields of etcdserverpb.WatchCreateRequest (raw: `key` b""
    and `range_end` b"\\0" keep their etcd meanings; the stream normalises them)."""

    key: bytes
    range_end: bytes = b""
    start_revision: int = 0
    watch_id: int = AUTO_WATCH_ID
    prev_kv: bool = False
    progress_notify: bool = False
    fragment: bool = False
    no_put: bool = False
    no_delete: bool = False


@dataclass(slots=True)
class WatchResponse:
    """One response for a stream, as etcdserverpb.WatchResponse minus the header details:
    `revision` is the header revision. `events` is shared with other watchers and the store
    (never mutate). `fragment_ok` tells the adapter the watcher asked for fragmentation."""

    watch_id: int
    revision: int
    events: Sequence[Event] = ()
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""
    fragment_ok: bool = False


def approx_size(events: Sequence[Event]) -> int:
    """Rough wire size of `events` (buffer accounting only, not exact)."""
    n = 0
    for ev in events:
        kv = ev.kv
        n += len(kv.key) + len(kv.value) + 32
        p = ev.prev_kv
        if p is not None:
            n += len(p.key) + len(p.value) + 32
    return n


class State(enum.Enum):
    SYNCED = "synced"
    """In the hub's synced group: gets each new revision's events as it is committed."""
    UNSYNCED = "unsynced"
    """Behind (started in the past, or its stream was full): catches up from the store."""
    DONE = "done"
    """Canceled, compacted away, or its stream closed. Gets nothing more."""


@dataclass(eq=False, slots=True)
class Watcher:
    """One watch. Identity-hashed. Invariants:

    - it has been sent every matching event with revision < `min_rev`, and none >= `min_rev`;
    - `key`/`end` never change (`end` None: single key; b"": every key >= key; else [key, end));
    - `state` says which hub structure holds it; `restore` marks a synced watcher moved back to
      unsynced by a snapshot restore, whose `min_rev` may exceed the store's revision.
    """

    id: int
    stream: WatchStream
    key: bytes
    end: bytes | None
    min_rev: int
    prev_kv: bool = False
    progress_notify: bool = False
    fragment: bool = False
    no_put: bool = False
    no_delete: bool = False
    state: State = State.UNSYNCED
    restore: bool = False
    compact_seen: int = -1
    """The store's compaction revision when `min_rev` was last set (see `WatchHub`)."""
    progress_due: bool = True
    """etcd's per-watcher progress flag: True if no events went out since the last tick."""

    def keep(self, events: Sequence[Event]) -> Sequence[Event]:
        """`events` without the ones the watcher's filters drop (the same list if none)."""
        if not (self.no_put or self.no_delete):
            return events
        drop = EventType.PUT if self.no_put else None
        drop_del = EventType.DELETE if self.no_delete else None
        return [e for e in events if e.type is not drop and e.type is not drop_del]

    def contains(self, key: bytes) -> bool:
        if self.end is None:
            return key == self.key
        if key < self.key:
            return False
        return not self.end or key < self.end
