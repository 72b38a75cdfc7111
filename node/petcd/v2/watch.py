"""v2 events, the event history and the watcher hub (etcd's v2store watcher_hub semantics).

- Every store modification produces one `Event` whose index (its node's modifiedIndex) is the
  store index after it; the history keeps the last `HISTORY_SIZE` of them.
- `WatcherHub.watch(key, recursive, stream, since, store_index)`: when an event at or after
  `since` for the key is still in the history, the watcher starts with it; `since` older than
  the history is error 401; otherwise the watcher waits for a future event.
- An event at path /a/b notifies watchers on "/", "/a" and "/a/b" (recursive ones for the
  parents); deleting or expiring a directory notifies watchers on every path under it. Events
  under hidden names ("_x") reach only watchers on that exact path.
- A watcher that falls `WATCHER_QUEUE` events behind is closed (its stream ends), as etcd's.
Everything runs on the event loop; nothing here blocks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

from petcd import errors
from petcd.v2 import errors as e2
from petcd.v2.errors import go_json

HISTORY_SIZE = 1000
WATCHER_QUEUE = 100


@dataclass(slots=True)
class Event:
    """One v2 event: action, node and previous node (NodeExtern dicts), store index."""

    action: str
    node: dict[str, Any]
    prev_node: dict[str, Any] | None = None
    etcd_index: int = 0
    refresh: bool = False
    path: str = ""
    """The internal path of the event's node ("/" for the root)."""
    prev_dir: bool = False

    @property
    def index(self) -> int:
        return int(self.node.get("modifiedIndex", 0))

    @property
    def created(self) -> bool:
        """Whether the HTTP answer is 201 Created (a create, or a set of a new key)."""
        return self.action == "create" or (self.action == "set" and self.prev_node is None)

    def to_json(self, no_value: bool = False) -> str:
        doc: dict[str, Any] = {"action": self.action}
        if not no_value:
            doc["node"] = self.node
            if self.prev_node is not None:
                doc["prevNode"] = self.prev_node
        return go_json(doc)

    def with_index(self, etcd_index: int) -> Event:
        return Event(self.action, self.node, self.prev_node, etcd_index, self.refresh, self.path,
                     self.prev_dir)


def _clean_dir(key: str) -> str:
    return key if key.endswith("/") else key + "/"


class EventHistory:
    """The last `HISTORY_SIZE` events, in index order."""

    def __init__(self, capacity: int = HISTORY_SIZE) -> None:
        self.events: deque[Event] = deque(maxlen=capacity)

    @property
    def start_index(self) -> int:
        return self.events[0].index if self.events else 0

    @property
    def last_index(self) -> int:
        return self.events[-1].index if self.events else 0

    def add(self, ev: Event) -> None:
        self.events.append(ev)

    def clear(self) -> None:
        self.events.clear()

    def scan(self, key: str, recursive: bool, index: int) -> Event | None:
        """First event at or after `index` that a watcher on `key` would see."""
        if index < self.start_index:
            raise e2.V2Error(
                e2.EVENT_INDEX_CLEARED,
                errors.V2_HISTORY_CLEARED.format(start=self.start_index, index=index),
            )
        if index > self.last_index:
            return None
        prefix = _clean_dir(key)
        for ev in self.events:
            if ev.index < index or ev.refresh:
                continue
            ok = ev.path == key or (recursive and ev.path.startswith(prefix))
            if ev.action in ("delete", "expire") and ev.prev_dir:
                ok = ok or key.startswith(ev.path)
            if ok:
                return ev
        return None


class Watcher:
    """One v2 watch: events arrive in `next()`; a non-stream watcher gets at most one."""

    def __init__(self, hub: WatcherHub, key: str, recursive: bool, stream: bool, since: int,
                 start_index: int) -> None:
        self.hub = hub
        self.key = key
        self.recursive = recursive
        self.stream = stream
        self.since = since
        self.start_index = start_index
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        self.removed = False

    def push(self, ev: Event) -> None:
        if len(self._queue) >= WATCHER_QUEUE:
            self.remove()
            return
        self._queue.append(ev)
        self._ready.set()

    def remove(self) -> None:
        """Stop receiving events; a waiting `next()` returns None."""
        if not self.removed:
            self.removed = True
            self.hub.detach(self)
        self.closed = True
        self._ready.set()

    async def next(self) -> Event | None:
        """The next event, or None once the watcher is closed and drained."""
        while not self._queue:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def notify(self, ev: Event, original_path: bool, deleted: bool) -> bool:
        if (self.recursive or original_path or deleted) and ev.index >= self.since:
            self.push(ev)
            return True
        return False


def is_hidden(watch_path: str, key_path: str) -> bool:
    """Whether `key_path` is hidden from a watcher on `watch_path` (a "_" name below it)."""
    if len(watch_path) > len(key_path):
        return False
    after = "/" + key_path[len(watch_path):]
    return "/_" in after.replace("//", "/")


class WatcherHub:
    """Watchers by path plus the event history."""

    def __init__(self) -> None:
        self.watchers: dict[str, list[Watcher]] = {}
        self.history = EventHistory()
        self.count = 0

    def watch(self, key: str, recursive: bool, stream: bool, since: int, store_index: int
              ) -> Watcher:
        try:
            ev = self.history.scan(key, recursive, since)
        except e2.V2Error as err:
            err.index = store_index
            raise
        w = Watcher(self, key, recursive, stream, since, store_index)
        if ev is not None:
            w.push(ev.with_index(store_index))
            w.removed = True
            if not stream:
                w.closed = True
                return w
            w.removed = False
        self.watchers.setdefault(key, []).append(w)
        self.count += 1
        return w

    def detach(self, w: Watcher) -> None:
        lst = self.watchers.get(w.key)
        if lst is not None and w in lst:
            lst.remove(w)
            self.count -= 1
            if not lst:
                del self.watchers[w.key]

    def add(self, ev: Event) -> None:
        """Record an event without notifying (refreshes)."""
        self.history.add(ev)

    def notify(self, ev: Event) -> None:
        self.history.add(ev)
        self.notify_watchers(ev, "/", False)
        cur = ""
        for seg in ev.path.split("/"):
            if seg:
                cur += "/" + seg
                self.notify_watchers(ev, cur, False)

    def notify_watchers(self, ev: Event, path: str, deleted: bool) -> None:
        lst = self.watchers.get(path)
        if not lst:
            return
        original = ev.path == path
        for w in list(lst):
            visible = original or not is_hidden(path, ev.path)
            if visible and w.notify(ev, original, deleted) and not w.stream:
                w.removed = True
                w.closed = True
                lst.remove(w)
                self.count -= 1
        if not lst:
            self.watchers.pop(path, None)

    def close_all(self) -> None:
        for lst in list(self.watchers.values()):
            for w in list(lst):
                w.remove()
