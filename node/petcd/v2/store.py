"""The v2 store: a tree of keys and directories with TTLs and a store index (etcd's v2store).

Contract:
- `index` (etcd's CurrentIndex, the X-Etcd-Index) grows by one per successful modification;
  a modified node's modifiedIndex is that new index. Failed operations change nothing.
- Writes (`set`, `create`, `update`, `compare_and_swap`, `delete`, `compare_and_delete`,
  `delete_expired`) are called only from the Raft apply, in log order, with expiry times
  decided by the proposer, so every member computes the same tree. Reads (`get`, `watch`)
  run locally on a member's copy.
- Each write records what it changed in `dirty` (path -> node, or None when removed) for the
  caller to persist in the same backend write as the entry's index; `load()` rebuilds the tree
  from those records. Errors are `V2Error`s with etcd's codes, causes and the index.
- `clock()` (ns since the epoch) is only used to render TTLs in answers.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from petcd import errors
from petcd.v2 import errors as e2
from petcd.v2.errors import V2Error
from petcd.v2.node import MIN_EXPIRE_NS, Node, event_node, extern, extern_get, with_fields
from petcd.v2.watch import Event, Watcher, WatcherHub

STAT_NAMES = (
    "getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
    "updateSuccess", "updateFail", "createSuccess", "createFail", "compareAndSwapSuccess",
    "compareAndSwapFail", "compareAndDeleteSuccess", "compareAndDeleteFail", "expireCount",
)


def clean_path(p: str) -> str:
    """Go's path.Clean(path.Join("/", p)): absolute, no "." / ".." / empty segments."""
    out: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


def _split(p: str) -> tuple[str, str]:
    d, _, name = p.rpartition("/")
    return d or "/", name


class Store:
    """One member's v2 store. Not thread-safe: used only from the event loop."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock
        self.root = Node("/", 0, 0, children={})
        self.index = 0
        self.hub = WatcherHub()
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)
        self.dirty: dict[str, Node | None] = {}
        self._ttl_heap: list[tuple[int, int, Node]] = []
        self._seq = 0

    # -- reads ------------------------------------------------------------------------------

    def _walk(self, path: str) -> Node:
        cur = self.root
        for seg in path.split("/"):
            if not seg:
                continue
            if cur.children is None:
                raise V2Error(e2.NOT_DIR, cur.path, self.index)
            nxt = cur.children.get(seg)
            if nxt is None:
                parent = cur.path.rstrip("/")
                raise V2Error(e2.KEY_NOT_FOUND, f"{parent}/{seg}", self.index)
            cur = nxt
        return cur

    def get(self, path: str, recursive: bool, sort: bool) -> Event:
        path = clean_path(path)
        try:
            n = self._walk(path)
        except V2Error:
            self.stats["getsFail"] += 1
            raise
        self.stats["getsSuccess"] += 1
        node = {**event_node(path, n.modified, n.created),
                **extern_get(n, recursive, sort, self.clock())}
        node = with_fields(node)
        return Event("get", node, None, self.index, path=path)

    def watch(self, path: str, recursive: bool, stream: bool, since: int) -> Watcher:
        path = clean_path(path)
        if since == 0:
            since = self.index + 1
        return self.hub.watch(path, recursive, stream, since, self.index)

    def next_expiry(self) -> int:
        """The earliest expiry time (ns) of a live TTL node, or 0 when there is none."""
        while self._ttl_heap:
            exp, _, n = self._ttl_heap[0]
            if n.removed or n.expire_ns != exp:
                heapq.heappop(self._ttl_heap)
                continue
            return exp
        return 0

    def json_stats(self) -> dict[str, int]:
        return {**self.stats, "watchers": self.hub.count}

    # -- internals --------------------------------------------------------------------------

    def _repr(self, n: Node) -> dict[str, Any]:
        return extern(n, False, False, self.clock())

    def _track_ttl(self, n: Node) -> None:
        if not n.permanent:
            self._seq += 1
            heapq.heappush(self._ttl_heap, (n.expire_ns, self._seq, n))

    def _mark(self, n: Node) -> None:
        self.dirty[n.path] = n

    def _remove(self, n: Node, dir_ok: bool, recursive: bool,
                on_path: Callable[[str], None] | None) -> None:
        """etcd's node.Remove: detach `n` (and its subtree) from the tree."""
        if n.is_dir:
            if not dir_ok:
                raise V2Error(e2.NOT_FILE, n.path, self.index)
            assert n.children is not None
            if n.children and not recursive:
                raise V2Error(e2.DIR_NOT_EMPTY, n.path, self.index)
            for child in list(n.children.values()):
                self._remove(child, True, True, on_path)
        parent = n.parent
        if parent is not None and parent.children is not None and \
                parent.children.get(n.name) is n:
            del parent.children[n.name]
            n.removed = True
            self.dirty[n.path] = None
            if on_path is not None:
                on_path(n.path)

    def _check_writable(self, path: str) -> None:
        if path == "/":
            raise V2Error(e2.ROOT_RONLY, "/", self.index)

    def _parent_dir(self, dir_path: str, next_index: int) -> Node:
        """Walk to `dir_path`, creating missing directories (etcd's checkDir)."""
        cur = self.root
        for seg in dir_path.split("/"):
            if not seg:
                continue
            assert cur.children is not None
            nxt = cur.children.get(seg)
            if nxt is None:
                path = cur.path.rstrip("/") + "/" + seg
                nxt = Node(path, next_index, next_index, children={}, parent=cur)
                cur.children[seg] = nxt
                self._mark(nxt)
            elif not nxt.is_dir:
                raise V2Error(e2.NOT_DIR, nxt.path, self.index)
            cur = nxt
        return cur

    def _create(self, path: str, is_dir: bool, value: str, unique: bool, replace: bool,
                expire_ns: int, action: str) -> Event:
        cur, nxt = self.index, self.index + 1
        if unique:
            path += f"/{nxt:020d}"
        path = clean_path(path)
        self._check_writable(path)
        if expire_ns < MIN_EXPIRE_NS:
            expire_ns = 0
        dir_path, name = _split(path)
        parent = self._parent_dir(dir_path, nxt)
        assert parent.children is not None
        node = event_node(path, nxt, nxt)
        prev: dict[str, Any] | None = None
        existing = parent.children.get(name)
        if existing is not None:
            if not replace:
                raise V2Error(e2.NODE_EXIST, path, cur)
            if existing.is_dir:
                raise V2Error(e2.NOT_FILE, path, cur)
            prev = self._repr(existing)
            self._remove(existing, False, False, None)
        n = Node(path, nxt, nxt, "" if is_dir else value, {} if is_dir else None, expire_ns,
                 parent)
        parent.children[name] = n
        self._mark(n)
        self._track_ttl(n)
        r = self._repr(n)
        node = with_fields(node, value=r.get("value"), dir=r.get("dir"),
                           expiration=r.get("expiration"), ttl=r.get("ttl"))
        self.index = nxt
        return Event(action, node, prev, nxt, path=path)

    def _deleted_notifier(self, ev: Event) -> Callable[[str], None]:
        def notify(p: str) -> None:
            self.hub.notify_watchers(ev, p, True)
        return notify

    def _counted(self, ok: str, fail: str, fn: Callable[[], Event]) -> Event:
        try:
            ev = fn()
        except V2Error:
            self.stats[fail] += 1
            raise
        self.stats[ok] += 1
        return ev

    # -- writes (Raft apply only) -----------------------------------------------------------

    def create(self, path: str, is_dir: bool, value: str, unique: bool, expire_ns: int) -> Event:
        def op() -> Event:
            return self._create(path, is_dir, value, unique, False, expire_ns, "create")
        ev = self._counted("createSuccess", "createFail", op)
        self.hub.notify(ev)
        return ev

    def set(self, path: str, is_dir: bool, value: str, expire_ns: int, refresh: bool) -> Event:
        def op() -> Event:
            try:
                n: Node | None = self._walk(clean_path(path))
            except V2Error as err:
                if err.code != e2.KEY_NOT_FOUND:
                    raise
                if refresh:
                    raise
                n = None
            val = n.value if refresh and n is not None else value
            return self._create(path, is_dir, val, False, True, expire_ns, "set")
        ev = self._counted("setsSuccess", "setsFail", op)
        self._publish(ev, refresh)
        return ev

    def _publish(self, ev: Event, refresh: bool) -> None:
        if refresh:
            ev.refresh = True
            self.hub.add(ev)
        else:
            self.hub.notify(ev)

    def _set_ttl(self, n: Node, expire_ns: int) -> None:
        n.expire_ns = expire_ns if expire_ns >= MIN_EXPIRE_NS else 0
        self._track_ttl(n)

    def update(self, path: str, value: str, expire_ns: int, refresh: bool) -> Event:
        path = clean_path(path)

        def op() -> Event:
            self._check_writable(path)
            nxt = self.index + 1
            n = self._walk(path)
            if n.is_dir and value:
                raise V2Error(e2.NOT_FILE, path, self.index)
            if n.is_dir:
                # etcd writes a value into the directory and fails after the checks; its error
                # is a plain one, reported as a Raft internal error without an index.
                raise V2Error(e2.RAFT_INTERNAL, errors.V2_NOT_A_FILE.format(path=path), 0)
            prev = self._repr(n)
            if not refresh:
                n.value = value
            n.modified = nxt
            self._set_ttl(n, expire_ns)
            self._mark(n)
            r = self._repr(n)
            node = with_fields(event_node(path, nxt, n.created), value=n.value,
                               expiration=r.get("expiration"), ttl=r.get("ttl"))
            self.index = nxt
            return Event("update", node, prev, nxt, path=path)
        ev = self._counted("updateSuccess", "updateFail", op)
        self._publish(ev, refresh)
        return ev

    def compare_and_swap(self, path: str, prev_value: str, prev_index: int, value: str,
                         expire_ns: int, refresh: bool) -> Event:
        path = clean_path(path)

        def op() -> Event:
            self._check_writable(path)
            n = self._walk(path)
            if n.is_dir:
                raise V2Error(e2.NOT_FILE, path, self.index)
            ok, cause = n.compare(prev_value, prev_index)
            if not ok:
                raise V2Error(e2.TEST_FAILED, cause, self.index)
            self.index += 1
            prev = self._repr(n)
            if not refresh:
                n.value = value
            n.modified = self.index
            self._set_ttl(n, expire_ns)
            self._mark(n)
            r = self._repr(n)
            node = with_fields(event_node(path, self.index, n.created), value=n.value,
                               expiration=r.get("expiration"), ttl=r.get("ttl"))
            return Event("compareAndSwap", node, prev, self.index, path=path)
        ev = self._counted("compareAndSwapSuccess", "compareAndSwapFail", op)
        self._publish(ev, refresh)
        return ev

    def delete(self, path: str, is_dir: bool, recursive: bool) -> Event:
        path = clean_path(path)

        def op() -> Event:
            self._check_writable(path)
            n = self._walk(path)
            nxt = self.index + 1
            node = event_node(path, nxt, n.created)
            if n.is_dir:
                node = with_fields(node, dir=True)
            ev = Event("delete", node, self._repr(n), nxt, path=path, prev_dir=n.is_dir)
            self._remove(n, is_dir or recursive, recursive,
                         lambda p: self.hub.notify_watchers(ev, p, True))
            self.index = nxt
            return ev
        ev = self._counted("deleteSuccess", "deleteFail", op)
        self.hub.notify(ev)
        return ev

    def compare_and_delete(self, path: str, prev_value: str, prev_index: int) -> Event:
        path = clean_path(path)

        def op() -> Event:
            n = self._walk(path)
            if n.is_dir:
                raise V2Error(e2.NOT_FILE, path, self.index)
            ok, cause = n.compare(prev_value, prev_index)
            if not ok:
                raise V2Error(e2.TEST_FAILED, cause, self.index)
            self.index += 1
            ev = Event("compareAndDelete", event_node(path, self.index, n.created),
                       self._repr(n), self.index, path=path)
            self._remove(n, False, False, lambda p: self.hub.notify_watchers(ev, p, True))
            return ev
        ev = self._counted("compareAndDeleteSuccess", "compareAndDeleteFail", op)
        self.hub.notify(ev)
        return ev

    def delete_expired(self, cutoff_ns: int) -> list[Event]:
        """Remove every node whose expiry is at or before `cutoff_ns` (a SYNC entry)."""
        out: list[Event] = []
        while True:
            exp = self.next_expiry()
            if exp == 0 or exp > cutoff_ns:
                return out
            _, _, n = heapq.heappop(self._ttl_heap)
            self.index += 1
            node = event_node(n.path, self.index, n.created)
            if n.is_dir:
                node = with_fields(node, dir=True)
            ev = Event("expire", node, self._repr(n), self.index, path=n.path, prev_dir=n.is_dir)
            self._remove(n, True, True, self._deleted_notifier(ev))
            self.stats["expireCount"] += 1
            self.hub.notify(ev)
            out.append(ev)

    # -- persistence ------------------------------------------------------------------------

    @staticmethod
    def encode_node(n: Node) -> bytes:
        doc: dict[str, Any] = {"c": n.created, "m": n.modified}
        if n.is_dir:
            doc["d"] = 1
        else:
            doc["v"] = n.value
        if n.expire_ns:
            doc["e"] = n.expire_ns
        return json.dumps(doc, separators=(",", ":")).encode()

    def load(self, index: int, records: Iterable[tuple[str, bytes]]) -> None:
        """Rebuild the tree from persisted (path, encoded node) records, parents first."""
        self.root = Node("/", 0, 0, children={})
        self.index = index
        self._ttl_heap = []
        self.dirty = {}
        self.hub.history.clear()
        for path, raw in sorted(records):
            doc = json.loads(raw)
            dir_path, name = _split(path)
            try:
                parent = self._walk(dir_path)
            except V2Error:
                continue  # an orphan cannot be reached; skip it rather than fail to start
            if parent.children is None:
                continue
            n = Node(path, int(doc["c"]), int(doc["m"]), str(doc.get("v", "")),
                     {} if doc.get("d") else None, int(doc.get("e", 0)), parent)
            parent.children[name] = n
            self._track_ttl(n)
