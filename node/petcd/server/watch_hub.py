"""The watch hub: every watcher of a member and how events reach them (etcd's
`server/mvcc/watchable_store.go` and `watcher.go`, on asyncio).

Watchers are in one of two groups (see `watcher.State`):
- synced: caught up with the store. `on_changes` (a `server.kv_listeners` entry, called right
  after each committed write txn) hands each synced watcher the events of that revision that it
  watches, as ONE response, found through a `WatcherGroup` index (no scan of all watchers).
- unsynced: behind. Watchers that start in the past, whose stream was full when a revision came
  (etcd's "victims"), or that a snapshot restore pushed back. The sync task (`run`) reads their
  events from the store (`KVStore.events_between`) in bounded windows (at most SYNC_MAX_REVS
  revisions and about SYNC_MAX_EVENTS events per round, never splitting a revision), sends each
  window as one response, and moves a watcher back to synced once it reached the store's
  revision. A watcher below the compaction revision is canceled with `compact_revision` set
  (not marked canceled if that revision is 0, as in etcd, but it gets nothing more); so is
  one exactly AT it if that compaction happened after the watcher got there, because compaction
  drops the tombstones at its revision and the watcher would silently miss those
deletions (etcd 3.5.1 serves it and loses them; a watch created at the compaction revision is
served as in etcd).

Guarantees, per watcher: events in revision order, each matching event exactly once, no gaps,
all events of one revision in one response (the adapter may fragment a response only if the
watcher asked for it). Why: a watcher's `min_rev` is the first revision it has not been sent;
everything here runs on the event loop without awaiting between reading the store and
enqueueing, so a watcher moving to synced at store revision R gets exactly the live revisions
> R. A slow client never blocks writes: a full stream turns its watchers unsynced at the
revision they missed, and they catch up from the store once the client reads again.

Each stream's queue is bounded (MAX_PENDING_RESPONSES responses or MAX_PENDING_BYTES);
control responses (created, canceled, progress) always go in, but the adapter stops reading
requests while the queue is CTRL_SLACK past its bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from petcd import errors
from petcd.mvcc.kv import Event, EventType, KeyValue
from petcd.mvcc.kvstore import FROM_KEY, KVStore
from petcd.server.watcher import (
    AUTO_WATCH_ID,
    INVALID_WATCH_ID,
    State,
    Watcher,
    WatchResponse,
    WatchSpec,
    approx_size,
)
from petcd.server.watcher_group import WatcherGroup
from petcd.storage import failpoints

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

PROGRESS_NOTIFY_INTERVAL = 600.0
"""Seconds between progress notifications to idle synced watchers that asked for them (etcd:
10 minutes, plus up to 10% jitter per stream). The server's
`options.watch_progress_notify_interval` (--experimental-watch-progress-notify-interval, else
PETCD_WATCH_PROGRESS_NOTIFY_INTERVAL: config.Settings) overrides it."""

MIN_PROGRESS_NOTIFY_INTERVAL = 0.1
"""etcd raises shorter intervals to 100ms."""

MAX_PENDING_RESPONSES = 128
"""Responses a stream may hold before its watchers turn unsynced (etcd's chanBufLen)."""

MAX_PENDING_BYTES = 16 << 20
"""Approximate bytes of events a stream may hold before its watchers turn unsynced."""

CTRL_SLACK = 16
"""Control responses beyond the bound before the adapter stops reading requests."""

SYNC_MAX_WATCHERS = 512
"""Unsynced watchers served per sync round (etcd's maxWatchersPerSync)."""

SYNC_MAX_REVS = 1000
"""Revisions read from the store per sync round (etcd's watchBatchMaxRevs)."""

SYNC_MAX_EVENTS = 10000
"""Events read from the store per sync round (a single bigger revision is read whole)."""

SYNC_INTERVAL = 0.1
"""Seconds between sync rounds when nothing asked for one (a safety net; etcd: 100ms)."""


class WatchStream:
    """The watchers of one client stream and its outgoing queue (etcd's watchStream).

    Single-threaded: call everything on the event loop. Responses come out of `get`/`pop` in
    the order they were produced; a watch's `created` response precedes its events, a cancel's
    response follows the watch's last events.
    """

    def __init__(self, hub: WatchHub) -> None:
        self._hub = hub
        self.watchers: dict[int, Watcher] = {}
        self._next_id = 0
        self._queue: deque[tuple[WatchResponse, int]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.unsynced = 0
        """How many of this stream's watchers are unsynced."""
        self._progress_pending = False
        self.closed = False

    # -- requests ---------------------------------------------------------------------------

    def create(self, spec: WatchSpec) -> int:
        """Create a watch; queue its `created` response (canceled with etcd's reason if the
        range is empty or the id is taken). Returns the watch id, or -1 if refused."""
        hub = self._hub
        key = spec.key or b"\x00"
        end: bytes | None
        if not spec.range_end:
            end = None
        elif spec.range_end == FROM_KEY:
            end = b""
        else:
            end = spec.range_end
        cur = hub.store.rev
        wid = spec.watch_id
        err = ""
        if end and key >= end or self.closed:
            err = errors.WATCH_EMPTY_RANGE
        elif wid == AUTO_WATCH_ID:
            while self._next_id in self.watchers:
                self._next_id += 1
            wid = self._next_id
            self._next_id += 1
        elif wid in self.watchers:
            err = errors.WATCH_DUPLICATE_ID
        if err:
            self._push(
                WatchResponse(INVALID_WATCH_ID, cur, created=True, canceled=True, cancel_reason=err)
            )
            return INVALID_WATCH_ID
        start = spec.start_revision or cur + 1
        w = Watcher(
            id=wid,
            stream=self,
            key=key,
            end=end,
            min_rev=start,
            prev_kv=spec.prev_kv,
            progress_notify=spec.progress_notify,
            fragment=spec.fragment,
            no_put=spec.no_put,
            no_delete=spec.no_delete,
            compact_seen=hub.store.compact_rev,
        )
        self.watchers[wid] = w
        self._push(WatchResponse(wid, cur, created=True))
        hub._add(w)
        return wid

    def cancel(self, wid: int) -> bool:
        """Cancel watch `wid` and queue its `canceled` response; False (and nothing queued) if
        the stream has no such watch, as etcd."""
        w = self.watchers.pop(wid, None)
        if w is None or self.closed:
            return False
        self._hub._remove(w)
        self._push(WatchResponse(wid, self._hub.store.rev, canceled=True))
        return True

    def request_progress(self) -> None:
        """Queue a progress response (watch_id -1, header revision = store revision) once
        every watcher of the stream is synced, so the revision never runs ahead of events still
        owed to an unsynced watcher (etcd >= 3.5.8; 3.5.1 sent it at once)."""
        if self.unsynced:
            self._progress_pending = True
        else:
            self._push(WatchResponse(INVALID_WATCH_ID, self._hub.store.rev))

    def progress_tick(self) -> None:
        """The periodic progress notification: an empty response at the store revision for
        each synced watcher with progress_notify that got no events since the last tick."""
        rev = self._hub.store.rev
        for w in self.watchers.values():
            if not w.progress_notify:
                continue
            if w.progress_due and w.state is State.SYNCED and self.has_room():
                self._push(WatchResponse(w.id, rev))
            w.progress_due = True

    def close(self) -> None:
        """Drop every watcher and the queue; `get` returns None from now on."""
        if self.closed:
            return
        self.closed = True
        for w in self.watchers.values():
            self._hub._remove(w)
        self.watchers.clear()
        self._queue.clear()
        self._bytes = 0
        self._ready.set()
        self._room.set()

    # -- queue ------------------------------------------------------------------------------

    def has_room(self) -> bool:
        return len(self._queue) < MAX_PENDING_RESPONSES and self._bytes < MAX_PENDING_BYTES

    def __len__(self) -> int:
        return len(self._queue)

    def _push(self, resp: WatchResponse, size: int = 0) -> None:
        if self.closed:
            return
        self._queue.append((resp, size))
        self._bytes += size
        self._ready.set()
        if len(self._queue) >= MAX_PENDING_RESPONSES + CTRL_SLACK:
            self._room.clear()

    def _sent_all_progress(self) -> None:
        if self._progress_pending and not self.unsynced:
            self._progress_pending = False
            self._push(WatchResponse(INVALID_WATCH_ID, self._hub.store.rev))

    def pop(self) -> WatchResponse | None:
        """The next queued response, or None."""
        if not self._queue:
            return None
        resp, size = self._queue.popleft()
        self._bytes -= size
        if len(self._queue) < MAX_PENDING_RESPONSES + CTRL_SLACK:
            self._room.set()
        if self.unsynced and self.has_room():
            self._hub.want_sync()
        return resp

    async def get(self, timeout: float | None = None) -> WatchResponse | None:
        """Wait up to `timeout` seconds (None: forever) for the next response; None on
        timeout or once closed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._queue:
            if self.closed:
                return None
            self._ready.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._ready.wait(), remaining)
            except TimeoutError:
                return None
        return self.pop()

    async def wait_room(self) -> None:
        """Return once the queue is back under its bound plus CTRL_SLACK (request backpressure)."""
        await self._room.wait()


class WatchHub:
    """All watchers of one member over `store`. See the module docstring."""

    def __init__(self, store: KVStore, progress_interval: float = PROGRESS_NOTIFY_INTERVAL) -> None:
        self.store = store
        self.progress_interval = max(progress_interval, MIN_PROGRESS_NOTIFY_INTERVAL)
        """Seconds between a stream's progress-notify ticks (before jitter)."""
        self.synced: WatcherGroup[Watcher] = WatcherGroup()
        self.unsynced: dict[Watcher, None] = {}
        """Insertion-ordered set; sync rounds serve the oldest first and rotate the rest."""
        self._seen_rev = store.rev
        self._wake = asyncio.Event()

    def new_stream(self) -> WatchStream:
        return WatchStream(self)

    # -- group membership -------------------------------------------------------------------

    def _add(self, w: Watcher) -> None:
        if w.min_rev > self.store.rev:
            w.state = State.SYNCED
            self.synced.add(w, w.key, w.end)
        else:
            self._enter_unsynced(w)
            self.want_sync()

    def _enter_unsynced(self, w: Watcher) -> None:
        w.state = State.UNSYNCED
        self.unsynced[w] = None
        w.stream.unsynced += 1

    def _leave_unsynced(self, w: Watcher, state: State) -> None:
        del self.unsynced[w]
        w.state = state
        w.restore = False
        w.stream.unsynced -= 1
        if state is State.SYNCED:
            self.synced.add(w, w.key, w.end)
        w.stream._sent_all_progress()

    def _remove(self, w: Watcher) -> None:
        if w.state is State.SYNCED:
            self.synced.remove(w, w.key, w.end)
            w.state = State.DONE
        elif w.state is State.UNSYNCED:
            self._leave_unsynced(w, State.DONE)

    # -- live events ------------------------------------------------------------------------

    def on_changes(self, changes: list[Event], rev: int) -> None:
        """kv listener: deliver revision `rev`'s `changes` to the synced watchers."""
        self._seen_rev = rev
        if not self.synced.members:
            return
        match = self.synced.match
        per: dict[Watcher, list[Event]] = {}
        for ev in changes:
            for w in match(ev.kv.key):
                got = per.get(w)
                if got is None:
                    per[w] = [ev]
                else:
                    got.append(ev)
        prev_cache: dict[int, Event] = {}
        for w, evs in per.items():
            if w.min_rev > rev:  # starts at a future revision
                continue
            stream = w.stream
            if not stream.has_room():
                # etcd's victim: catch up from the store once the client reads again
                self.synced.remove(w, w.key, w.end)
                w.min_rev = rev
                w.compact_seen = self.store.compact_rev
                self._enter_unsynced(w)
                continue
            self._send(w, evs, rev, prev_cache)

    def _send(
        self, w: Watcher, evs: Sequence[Event], rev: int, prev_cache: dict[int, Event]
    ) -> None:
        kept = w.keep(evs)
        if not kept:
            return
        if w.prev_kv:
            kept = [self._with_prev(ev, prev_cache) for ev in kept]
        w.progress_due = False
        w.stream._push(WatchResponse(w.id, rev, kept, fragment_ok=w.fragment), approx_size(kept))

    def _with_prev(self, ev: Event, cache: dict[int, Event]) -> Event:
        """`ev` with prev_kv: the key's version at mod_revision - 1, as etcd's watch server
        reads it (none for a creation or if that revision is compacted)."""
        got = cache.get(id(ev))
        if got is not None:
            return got
        kv = ev.kv
        prev: KeyValue | None = None
        if not (ev.type is EventType.PUT and kv.create_revision == kv.mod_revision):
            r = kv.mod_revision - 1
            if r > 0 and r >= self.store.compact_rev:
                prev = self.store.get(kv.key, r)
        out = Event(ev.type, kv, prev)
        cache[id(ev)] = out
        return out

    # -- catching up ------------------------------------------------------------------------

    def want_sync(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """The sync task: serve unsynced watchers whenever asked (and every SYNC_INTERVAL),
        yielding to the event loop between rounds."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), SYNC_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            while True:
                if d := failpoints.check(failpoints.BEFORE_SYNC_WATCHERS):
                    await asyncio.sleep(d)  # delays this task only, as etcd's syncWatchersLoop
                if not self.sync_once():
                    break
                await asyncio.sleep(0)

    def sync_once(self) -> bool:
        """One sync round (etcd's syncWatchers). Returns True if it served any watcher (more
        work may be ready), False if no unsynced watcher can take events now."""
        store = self.store
        cur, compact = store.rev, store.compact_rev
        chosen: list[Watcher] = []
        for w in self.unsynced:
            if w.stream.has_room():
                chosen.append(w)
                if len(chosen) >= SYNC_MAX_WATCHERS:
                    break
        if not chosen:
            return False
        active: list[Watcher] = []
        for w in chosen:
            if w.min_rev > cur:
                # moved back by a restore while waiting for a future revision
                self._leave_unsynced(w, State.SYNCED)
            elif w.min_rev < compact or (w.min_rev == compact and w.compact_seen < compact):
                self._leave_unsynced(w, State.DONE)
                # etcd's sendLoop sets canceled = (CompactRevision != 0): after a compaction
                # AT revision 0 (accepted when nothing was compacted yet) a watcher from a
                # negative start gets an empty, uncanceled response and nothing more.
                w.stream._push(
                    WatchResponse(w.id, 0, canceled=compact != 0, compact_revision=compact)
                )
            else:
                active.append(w)
        if active:
            self._catch_up(active, cur)
        return True

    def _catch_up(self, active: list[Watcher], cur: int) -> None:
        lo = max(1, min(w.min_rev for w in active))
        hi = min(cur, lo + SYNC_MAX_REVS - 1)
        key, end = _bounds(active)
        evs = self.store.events_between(lo, hi, key, end, limit=SYNC_MAX_EVENTS)
        if len(evs) >= SYNC_MAX_EVENTS:
            last = evs[-1].kv.mod_revision
            cut = len(evs)
            while cut and evs[cut - 1].kv.mod_revision == last:
                cut -= 1
            if cut:  # drop the last revision: it may be partial
                evs = evs[:cut]
                hi = last - 1
            else:  # one revision bigger than the limit: read it whole
                evs = self.store.events_between(last, last, key, end)
                hi = last
        per: dict[Watcher, list[Event]] = {}
        if len(active) == 1:
            w0 = active[0]
            per[w0] = [ev for ev in evs if ev.kv.mod_revision >= w0.min_rev]
        else:
            group: WatcherGroup[Watcher] = WatcherGroup()
            for w in active:
                group.add(w, w.key, w.end)
            for ev in evs:
                r = ev.kv.mod_revision
                for w in group.match(ev.kv.key):
                    if r >= w.min_rev:
                        got = per.get(w)
                        if got is None:
                            per[w] = [ev]
                        else:
                            got.append(ev)
        prev_cache: dict[int, Event] = {}
        for w in active:
            if w.min_rev > hi:  # this round's window ended before the watcher's revision
                self._rotate(w)
                continue
            got = per.get(w)
            if got:
                self._send(w, got, cur, prev_cache)
            w.min_rev = hi + 1
            w.compact_seen = self.store.compact_rev
            if hi >= cur:
                self._leave_unsynced(w, State.SYNCED)
            else:
                self._rotate(w)

    def _rotate(self, w: Watcher) -> None:
        del self.unsynced[w]
        self.unsynced[w] = None

    # -- snapshot restore -------------------------------------------------------------------

    def on_restore(self) -> None:
        """restore listener: the store was replaced; every synced watcher has seen the old
        store's revisions and catches up on the rest from the new store."""
        floor = self._seen_rev + 1
        for w in list(self.synced.members):
            self.synced.remove(w, w.key, w.end)
            if floor > w.min_rev:
                w.min_rev = floor
                w.compact_seen = -1  # the new store's compaction came after this revision
            w.restore = True
            self._enter_unsynced(w)
        self._seen_rev = self.store.rev
        self.want_sync()


def _bounds(ws: Sequence[Watcher]) -> tuple[bytes, bytes | None]:
    """A key range covering every watcher of `ws`, as `events_between` takes it."""
    if len(ws) == 1:
        w = ws[0]
        return w.key, None if w.end is None else (w.end or FROM_KEY)
    lo = min(w.key for w in ws)
    hi = b""
    for w in ws:
        if w.end == b"":
            return lo, FROM_KEY
        e = w.key + b"\x00" if w.end is None else w.end
        hi = max(hi, e)
    return lo, hi


def install(server: EtcdServer) -> None:
    """Installer (`assembly.INSTALLERS`): hang a hub on `server.watch_hub` and wire it to the server."""
    interval = server.options.watch_progress_notify_interval
    hub = WatchHub(server.store, PROGRESS_NOTIFY_INTERVAL if interval is None else float(interval))
    server.kv_listeners.append(hub.on_changes)
    server.restore_listeners.append(hub.on_restore)
    server.add_task("watch-sync", hub.run)
    server.watch_hub = hub


def hub_of(server: EtcdServer) -> WatchHub:
    """The hub `install` put on `server` (RuntimeError if the watch feature is not installed)."""
    hub = server.watch_hub
    if hub is None:
        raise RuntimeError("watch hub not installed")
    return hub
