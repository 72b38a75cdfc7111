"""Write to a store the way the server does (commit, then tell the hub) and read streams."""

from __future__ import annotations

from petcd.mvcc.kvstore import KVStore
from petcd.server.watch_hub import WatchHub, WatchStream
from petcd.server.watcher import WatchResponse


def put(store: KVStore, hub: WatchHub, *kvs: tuple[bytes, bytes]) -> int:
    """One txn putting every (key, value); returns its revision."""
    t = store.write()
    for k, v in kvs:
        t.put(k, v)
    changes = t.changes
    rev = t.end()
    if changes:
        hub.on_changes(changes, rev)
    return rev


def delete(store: KVStore, hub: WatchHub, key: bytes, end: bytes | None = None) -> int:
    t = store.write()
    t.delete_range(key, end)
    changes = t.changes
    rev = t.end()
    if changes:
        hub.on_changes(changes, rev)
    return rev


def drain(s: WatchStream) -> list[WatchResponse]:
    out = []
    while (r := s.pop()) is not None:
        out.append(r)
    return out


def settle(hub: WatchHub, *streams: WatchStream) -> dict[WatchStream, list[WatchResponse]]:
    """Drain every stream and run sync rounds until nothing is left to do (bounded)."""
    got: dict[WatchStream, list[WatchResponse]] = {s: [] for s in streams}
    for _ in range(10000):
        moved = False
        for s in streams:
            rs = drain(s)
            got[s] += rs
            moved = moved or bool(rs)
        if not hub.sync_once() and not moved:
            return got
    raise AssertionError("hub did not settle")


def events(resps: list[WatchResponse], wid: int | None = None) -> list[tuple[int, bytes, int]]:
    """(type, key, mod_revision) of the events in `resps` (of watch `wid` if given)."""
    return [
        (int(e.type), e.kv.key, e.kv.mod_revision)
        for r in resps
        if wid is None or r.watch_id == wid
        for e in r.events
    ]
