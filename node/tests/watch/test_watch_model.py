"""Randomised checks against brute-force models: the watcher index, and the hub's delivery
guarantees (ordered, exactly once, no gaps, one revision never split, correct prev_kv) under
interleaved writes, creates, cancels, slow readers, small batch limits and compactions."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest
from petcd.mvcc.kv import EventType
from petcd.mvcc.kvstore import KVStore
from petcd.server import watch_hub
from petcd.server.watch_hub import WatchHub, WatchStream
from petcd.server.watcher import WatchResponse, WatchSpec
from petcd.server.watcher_group import WatcherGroup, prefix_end
from watch_helpers import drain

KEYS = [b"a", b"ab", b"abc", b"ac", b"b", b"ba", b"b\xff", b"c", b"\xff", b"\xff\xff"]


def _random_range(rng: random.Random) -> tuple[bytes, bytes | None]:
    k = rng.choice(KEYS)
    kind = rng.randrange(4)
    if kind == 0:
        return k, None
    if kind == 1:
        return k, b""
    if kind == 2:
        return k, prefix_end(k) or b""
    hi = rng.choice([x for x in KEYS if x > k] or [b""])
    return k, hi


def _contains(key: bytes, lo: bytes, end: bytes | None, probe: bytes) -> bool:
    if end is None:
        return probe == lo
    return probe >= lo and (not end or probe < end)


@pytest.mark.parametrize("seed", range(5))
def test_watcher_group_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    g: WatcherGroup[int] = WatcherGroup()
    live: dict[int, tuple[bytes, bytes | None]] = {}
    probes = [*KEYS, b"", b"aa", b"abcd", b"bb", b"zz", b"\xff\x00"]
    for i in range(400):
        if live and rng.random() < 0.35:
            w = rng.choice(sorted(live))
            assert g.remove(w, *live.pop(w))
            assert not g.remove(w, b"a", None)
        else:
            live[i] = _random_range(rng)
            g.add(i, *live[i])
        for p in probes:
            want = sorted(w for w, (k, e) in live.items() if _contains(k, k, e, p))
            got = list(g.match(p))
            assert sorted(got) == want and len(got) == len(set(got)), (p, live)
    assert len(g) == len(live)


@dataclass
class _Watch:
    stream: WatchStream
    wid: int
    key: bytes
    end: bytes | None
    start: int
    no_put: bool
    no_delete: bool
    canceled: bool = False
    got: list[WatchResponse] = field(default_factory=list)


@pytest.mark.parametrize("seed", range(8))
def test_hub_delivery_matches_model(
    seed: int, store: KVStore, hub: WatchHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(watch_hub, "MAX_PENDING_RESPONSES", rng.choice([2, 4, 128]))
    monkeypatch.setattr(watch_hub, "SYNC_MAX_REVS", rng.choice([1, 3, 1000]))
    monkeypatch.setattr(watch_hub, "SYNC_MAX_EVENTS", rng.choice([2, 5, 10000]))
    monkeypatch.setattr(watch_hub, "SYNC_MAX_WATCHERS", rng.choice([1, 3, 512]))
    compactions = seed % 2 == 1
    history: list[tuple[int, bytes, int, bytes]] = []  # (type, key, rev, value) in order
    state: dict[bytes, bytes] = {}
    versions: dict[tuple[bytes, int], bytes | None] = {}  # (key, rev) -> value live at rev
    streams = [hub.new_stream() for _ in range(3)]
    watches: dict[tuple[int, int], _Watch] = {}
    compacted_at = 0

    def collect(s: WatchStream) -> None:
        for r in drain(s):
            if r.watch_id >= 0 and not r.created:
                w = watches.get((id(s), r.watch_id))
                if w is not None:
                    w.got.append(r)

    for _step in range(500):
        op = rng.random()
        if op < 0.45:
            t = store.write()
            for k in rng.sample(KEYS, rng.randint(1, 3)):
                if k in state and rng.random() < 0.3:
                    t.delete_range(k)
                else:
                    t.put(k, b"v%d" % _step)
            changes = t.changes
            rev = t.end()
            if changes:
                for ev in changes:
                    v = ev.kv.value if ev.type is EventType.PUT else b""
                    history.append((int(ev.type), ev.kv.key, rev, v))
                    if ev.type is EventType.PUT:
                        state[ev.kv.key] = ev.kv.value
                    else:
                        state.pop(ev.kv.key, None)
                for k in KEYS:
                    versions[(k, rev)] = state.get(k)
                hub.on_changes(changes, rev)
        elif op < 0.6:
            s = rng.choice(streams)
            k, rend = _random_range(rng)
            # from a compaction revision, deletions at it are gone (as in etcd): start after
            lo = max(store.compact_rev + 1, 1)
            start = rng.choice([0, rng.randint(lo, store.rev + 3)])
            spec = WatchSpec(
                k,
                range_end=b"\x00" if rend == b"" else (rend or b""),
                start_revision=start,
                prev_kv=True,
                no_put=rng.random() < 0.15,
                no_delete=rng.random() < 0.15,
            )
            wid = s.create(spec)
            if wid >= 0:
                watches[(id(s), wid)] = _Watch(
                    s, wid, k, rend, start or store.rev + 1, spec.no_put, spec.no_delete
                )
        elif op < 0.75:
            collect(rng.choice(streams))
        elif op < 0.88:
            for _ in range(rng.randint(1, 3)):
                hub.sync_once()
        elif op < 0.93:
            mine = [w for w in watches.values() if not w.canceled]
            if mine:
                w = rng.choice(mine)
                collect(w.stream)
                w.canceled = w.stream.cancel(w.wid)
        elif compactions and store.rev > store.compact_rev + 1 and op < 0.95:
            compacted_at = rng.randint(max(store.compact_rev + 1, 1), store.rev)
            store.compact(compacted_at)
    for _ in range(10000):
        for s in streams:
            collect(s)
        if not hub.sync_once() and not any(len(s) for s in streams):
            break

    for w in watches.values():
        want = [
            (t, k, r)
            for t, k, r, _v in history
            if r >= w.start
            and _contains(w.key, w.key, w.end, k)
            and not (w.no_put and t == 0)
            and not (w.no_delete and t == 1)
        ]
        got_resps = [r for r in w.got if r.events]
        got = [(int(e.type), e.kv.key, e.kv.mod_revision) for r in got_resps for e in r.events]
        cancels = [r for r in w.got if r.canceled and r.compact_revision]
        if w.canceled or cancels:
            assert got == want[: len(got)], "a canceled watch got a prefix of its events"
        else:
            assert got == want
        if cancels:
            (c,) = cancels
            assert not c.events and c.revision == 0
            assert all(r.canceled for r in w.got[w.got.index(c) :])
        for a, b in itertools.pairwise(got_resps):
            assert a.events[-1].kv.mod_revision < b.events[0].kv.mod_revision
        for r in got_resps:
            for e in r.events:
                kv = e.kv
                if e.type is EventType.PUT and kv.create_revision == kv.mod_revision:
                    assert e.prev_kv is None
                elif e.prev_kv is not None:
                    assert e.prev_kv.value == versions.get((kv.key, kv.mod_revision - 1))
                else:
                    assert compactions, "prev_kv missing without any compaction"
