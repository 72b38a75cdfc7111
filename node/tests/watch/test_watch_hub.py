"""The watch hub against a real KVStore on a tmp LevelDB: creation, live delivery, catch-up,
victims (full streams), compaction, snapshot restore, progress, batching limits."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from petcd import errors
from petcd.mvcc.kv import EventType
from petcd.mvcc.kvstore import KVStore
from petcd.server import watch_hub
from petcd.server.watch_hub import WatchHub
from petcd.server.watcher import State, WatchSpec
from petcd.storage.backend import Backend
from watch_helpers import delete, drain, events, put, settle

PUT, DEL = int(EventType.PUT), int(EventType.DELETE)


def test_create_responses_and_ids(store: KVStore, hub: WatchHub) -> None:
    rev = put(store, hub, (b"a", b"1"))
    s = hub.new_stream()
    assert s.create(WatchSpec(b"a")) == 0
    assert s.create(WatchSpec(b"a", watch_id=5)) == 5
    assert s.create(WatchSpec(b"a", watch_id=5)) == -1
    assert s.create(WatchSpec(b"b", range_end=b"a")) == -1
    assert s.create(WatchSpec(b"a")) == 1
    rs = drain(s)
    assert [(r.watch_id, r.created, r.canceled, r.revision) for r in rs] == [
        (0, True, False, rev),
        (5, True, False, rev),
        (-1, True, True, rev),
        (-1, True, True, rev),
        (1, True, False, rev),
    ]
    assert (rs[2].cancel_reason, rs[3].cancel_reason) == (errors.WATCH_DUPLICATE_ID, errors.WATCH_EMPTY_RANGE)
    assert s.cancel(5) and not s.cancel(5)
    (r,) = drain(s)
    assert (r.watch_id, r.canceled, r.created) == (5, True, False)


def test_live_events_one_response_per_revision(store: KVStore, hub: WatchHub) -> None:
    s = hub.new_stream()
    s.create(WatchSpec(b"k", range_end=b"l"))  # prefix "k"
    s.create(WatchSpec(b"k1"))  # single key
    s.create(WatchSpec(b"k2", range_end=b"\x00"))  # from key
    s.create(WatchSpec(b"a", range_end=b"k15"))  # plain range
    drain(s)
    r1 = put(store, hub, (b"k1", b"x"), (b"k2", b"y"), (b"z", b"n"))
    r2 = delete(store, hub, b"k", b"l")
    rs = drain(s)
    assert events(rs, 0) == [(PUT, b"k1", r1), (PUT, b"k2", r1), (DEL, b"k1", r2), (DEL, b"k2", r2)]
    assert events(rs, 1) == [(PUT, b"k1", r1), (DEL, b"k1", r2)]
    assert events(rs, 2) == [(PUT, b"k2", r1), (PUT, b"z", r1), (DEL, b"k2", r2)]
    assert events(rs, 3) == [(PUT, b"k1", r1), (DEL, b"k1", r2)]
    per = [(r.watch_id, r.revision) for r in rs]
    assert len(per) == len(set(per)) == 8  # never two responses for one watch and revision
    for r in rs:
        assert {e.kv.mod_revision for e in r.events} == {r.revision}
    dele = next(e for r in rs if r.watch_id == 1 for e in r.events if e.type == EventType.DELETE)
    assert (dele.kv.value, dele.kv.create_revision, dele.kv.version) == (b"", 0, 0)


def test_filters_and_prev_kv(store: KVStore, hub: WatchHub) -> None:
    r0 = put(store, hub, (b"a", b"0"))
    s = hub.new_stream()
    s.create(WatchSpec(b"a", no_put=True, prev_kv=True))
    s.create(WatchSpec(b"a", no_delete=True, prev_kv=True))
    drain(s)
    r1 = put(store, hub, (b"a", b"1"))
    r2 = delete(store, hub, b"a")
    r3 = put(store, hub, (b"a", b"new"))
    rs = drain(s)
    assert events(rs, 0) == [(DEL, b"a", r2)]
    assert events(rs, 1) == [(PUT, b"a", r1), (PUT, b"a", r3)]
    by = {(r.watch_id, e.kv.mod_revision): e for r in rs for e in r.events}
    p1 = by[(1, r1)].prev_kv
    p2 = by[(0, r2)].prev_kv
    assert p1 is not None and (p1.value, p1.mod_revision) == (b"0", r0)
    assert p2 is not None and (p2.value, p2.mod_revision) == (b"1", r1)
    assert by[(1, r3)].prev_kv is None  # a creation has no previous version


def test_catch_up_then_live(store: KVStore, hub: WatchHub) -> None:
    revs = [put(store, hub, (b"k%d" % (i % 3), b"%d" % i)) for i in range(20)]
    s = hub.new_stream()
    s.create(WatchSpec(b"k", range_end=b"l", start_revision=revs[5], prev_kv=True))
    (created,) = drain(s)
    assert created.created and created.revision == revs[-1]
    live = put(store, hub, (b"k9", b"live"))  # lands while the watcher is still unsynced
    got = settle(hub, s)[s]
    assert [e[2] for e in events(got)] == revs[5:] + [live]
    assert hub.unsynced == {} and len(hub.synced) == 1
    r = put(store, hub, (b"k0", b"after"))
    assert events(drain(s)) == [(PUT, b"k0", r)]
    for resp in got:
        for e in resp.events:
            if e.kv.version > 1:
                assert e.prev_kv is not None and e.prev_kv.mod_revision < e.kv.mod_revision


def test_future_start_revision_waits(store: KVStore, hub: WatchHub) -> None:
    rev = put(store, hub, (b"a", b"1"))
    s = hub.new_stream()
    s.create(WatchSpec(b"a", start_revision=rev + 3))
    drain(s)
    put(store, hub, (b"a", b"2"))
    put(store, hub, (b"a", b"3"))
    assert drain(s) == []
    r = put(store, hub, (b"a", b"4"))
    assert events(drain(s)) == [(PUT, b"a", r)]


def test_full_stream_becomes_victim_and_catches_up(
    store: KVStore, hub: WatchHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_hub, "MAX_PENDING_RESPONSES", 4)
    slow, fast = hub.new_stream(), hub.new_stream()
    slow.create(WatchSpec(b"k", range_end=b"l"))
    fast.create(WatchSpec(b"k", range_end=b"l"))
    drain(slow)
    drain(fast)
    revs = []
    fast_got = []
    for i in range(30):  # writes never wait for the slow reader
        revs.append(put(store, hub, (b"k%d" % (i % 4), b"%d" % i), (b"x", b"%d" % i)))
        fast_got += drain(fast)
    assert [e[2] for e in events(fast_got)] == revs
    assert len(slow) == 4
    (w,) = slow.watchers.values()
    assert w.state is State.UNSYNCED and w.min_rev == revs[4]  # the first it missed
    assert not hub.sync_once()  # nothing to do while the client does not read
    got = settle(hub, slow)[slow]
    assert [e[2] for e in events(got)] == revs
    assert slow.watchers[w.id].state.value == "synced"  # (re-read: mypy narrowed it above)


def test_compaction_cancels_unsynced(store: KVStore, hub: WatchHub) -> None:
    revs = [put(store, hub, (b"a", b"%d" % i)) for i in range(5)]
    s = hub.new_stream()
    wid = s.create(WatchSpec(b"a", start_revision=revs[1]))
    store.compact(revs[3])
    rs = settle(hub, s)[s]
    assert [(r.watch_id, r.canceled, r.compact_revision, r.revision) for r in rs[1:]] == [
        (wid, True, revs[3], 0)
    ]
    assert s.watchers[wid].state is State.DONE
    assert s.cancel(wid)  # the id stays taken until canceled, as in etcd
    # at the compaction revision itself: the kept version is an event
    s.create(WatchSpec(b"a", start_revision=revs[3]))
    rs = settle(hub, s)[s]
    assert [e[2] for e in events(rs)] == revs[3:]


def test_progress_request_waits_for_unsynced(store: KVStore, hub: WatchHub) -> None:
    revs = [put(store, hub, (b"a", b"%d" % i)) for i in range(3)]
    s = hub.new_stream()
    s.request_progress()
    (p,) = drain(s)
    assert (p.watch_id, p.revision, p.events) == (-1, revs[-1], ())
    s.create(WatchSpec(b"a", start_revision=revs[0]))
    s.request_progress()
    assert [r.created for r in drain(s)] == [True]  # deferred: events still owed
    rs = settle(hub, s)[s]
    assert [e[2] for e in events(rs)] == revs
    assert (rs[-1].watch_id, rs[-1].revision, rs[-1].events) == (-1, revs[-1], ())


def test_progress_notify_tick(store: KVStore, hub: WatchHub) -> None:
    put(store, hub, (b"a", b"1"))
    s = hub.new_stream()
    s.create(WatchSpec(b"a", progress_notify=True))
    s.create(WatchSpec(b"b"))
    drain(s)
    s.progress_tick()
    rev = store.rev
    assert [(r.watch_id, r.revision, r.events) for r in drain(s)] == [(0, rev, ())]
    r = put(store, hub, (b"a", b"2"))
    s.progress_tick()  # an event went out since the last tick: elided
    assert [(x.watch_id, x.revision) for x in drain(s)] == [(0, r)]
    s.progress_tick()
    assert [(x.watch_id, x.revision, x.events) for x in drain(s)] == [(0, r, ())]


def test_batches_never_split_a_revision(
    store: KVStore, hub: WatchHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch_hub, "SYNC_MAX_REVS", 3)
    monkeypatch.setattr(watch_hub, "SYNC_MAX_EVENTS", 5)
    revs = []
    for i in range(12):
        n = 1 + i % 7  # some revisions bigger than the event limit
        revs.append(put(store, hub, *[(b"k%02d" % j, b"%d" % i) for j in range(n)]))
    s = hub.new_stream()
    s.create(WatchSpec(b"k", range_end=b"l", start_revision=1))
    rs = [r for r in settle(hub, s)[s] if r.events]
    seen = [e[2] for e in events(rs)]
    assert seen == [r for i, r in enumerate(revs) for _ in range(1 + i % 7)]
    assert len(rs) > 4
    for a, b in itertools.pairwise(rs):
        assert a.events[-1].kv.mod_revision < b.events[0].kv.mod_revision


def test_many_unsynced_share_rounds(store: KVStore, hub: WatchHub) -> None:
    revs = [put(store, hub, (b"k%d" % (i % 10), b"%d" % i)) for i in range(50)]
    s = hub.new_stream()
    for i in range(10):
        s.create(WatchSpec(b"k%d" % i, start_revision=revs[i * 3]))
    got = settle(hub, s)[s]
    for i in range(10):
        want = [r for j, r in enumerate(revs) if j % 10 == i and r >= revs[i * 3]]
        assert [e[2] for e in events(got, i)] == want


def test_restore_resyncs_from_new_store(tmp_path: Path, store: KVStore, hub: WatchHub) -> None:
    leader_be = Backend(tmp_path / "leader")
    leader = KVStore(leader_be)
    try:
        common = [(b"a", b"1"), (b"b", b"2")]
        for kv in common:
            put(store, hub, kv)
            t = leader.write()
            t.put(*kv)
            t.end()
        s = hub.new_stream()
        s.create(WatchSpec(b"a", range_end=b"c"))
        s.create(WatchSpec(b"b", start_revision=store.rev + 5))  # future
        drain(s)
        extra = []
        for i in range(6):
            t = leader.write()
            t.put(b"ab"[i % 2 : i % 2 + 1], b"L%d" % i)
            extra.append(t.end())
        store.backend.restore_from_bytes(leader_be.snapshot_bytes())
        store.reload()
        hub.on_restore()
        got = settle(hub, s)[s]
        assert events(got, 0) == [(PUT, b"ab"[i % 2 : i % 2 + 1], r) for i, r in enumerate(extra)]
        future = 3 + 5  # the future watcher's start revision
        assert [e[2] for e in events(got, 1)] == [
            r for i, r in enumerate(extra) if i % 2 == 1 and r >= future
        ]
        r = put(store, hub, (b"a", b"after"))
        assert events(drain(s), 0) == [(PUT, b"a", r)]
    finally:
        leader_be.close()


def test_close_removes_watchers(store: KVStore, hub: WatchHub) -> None:
    put(store, hub, (b"a", b"1"))
    s = hub.new_stream()
    s.create(WatchSpec(b"a"))
    s.create(WatchSpec(b"a", start_revision=1))
    s.close()
    assert len(hub.synced) == 0 and hub.unsynced == {}
    put(store, hub, (b"a", b"2"))
    assert s.pop() is None
