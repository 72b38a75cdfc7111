"""The v2 store on its own: index arithmetic, errors, watches, TTL expiry and persistence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from petcd.v2 import errors as e2
from petcd.v2.errors import V2Error
from petcd.v2.node import NS, rfc3339nano, ttl_seconds
from petcd.v2.store import Store, clean_path

T0 = 1_800_000_000 * NS


def _store() -> Store:
    return Store(clock=lambda: T0)


def test_index_grows_by_one_per_write_and_not_on_failure() -> None:
    s = _store()
    assert s.set("/a", False, "1", 0, False).node["modifiedIndex"] == 1
    assert s.create("/q", False, "x", True, 0).node["key"] == "/q/00000000000000000002"
    with pytest.raises(V2Error) as err:
        s.create("/a", False, "2", False, 0)
    assert (err.value.code, err.value.cause, err.value.index) == (e2.NODE_EXIST, "/a", 2)
    assert s.index == 2
    ev = s.update("/a", "3", 0, False)
    assert (ev.action, ev.node["value"], ev.prev_node) == (
        "update", "3", {"key": "/a", "value": "1", "modifiedIndex": 1, "createdIndex": 1})
    assert s.index == 3


def test_compare_failures_name_both_sides() -> None:
    s = _store()
    s.set("/k", False, "one", 0, False)
    with pytest.raises(V2Error) as err:
        s.compare_and_swap("/k", "two", 5, "x", 0, False)
    assert err.value.cause == "[two != one] [5 != 1]"
    with pytest.raises(V2Error) as err:
        s.compare_and_delete("/k", "", 7)
    assert err.value.cause == "[7 != 1]"


def test_directory_rules() -> None:
    s = _store()
    s.set("/d/x", False, "1", 0, False)
    calls: list[tuple[Callable[[], object], int]] = [
        (lambda: s.delete("/d", False, False), e2.NOT_FILE),
        (lambda: s.delete("/d", True, False), e2.DIR_NOT_EMPTY),
        (lambda: s.set("/d/x/y", False, "v", 0, False), e2.NOT_DIR),
        (lambda: s.set("/", False, "v", 0, False), e2.ROOT_RONLY),
        (lambda: s.get("/nope", False, False), e2.KEY_NOT_FOUND),
    ]
    for call, code in calls:
        with pytest.raises(V2Error) as err:
            call()
        assert err.value.code == code
    ev = s.delete("/d", False, True)
    assert ev.node == {"key": "/d", "dir": True, "modifiedIndex": 2, "createdIndex": 1}


def test_ttl_rendering_and_expiry() -> None:
    s = _store()
    ev = s.set("/t", False, "v", T0 + 1500 * NS // 1000, False)
    assert ev.node["ttl"] == 2 and ev.node["expiration"] == rfc3339nano(T0 + 1500 * NS // 1000)
    assert s.next_expiry() == T0 + 1500 * NS // 1000
    assert s.delete_expired(T0) == []
    gone = s.delete_expired(T0 + 2 * NS)
    assert [e.action for e in gone] == ["expire"] and s.next_expiry() == 0
    assert ttl_seconds(T0 - NS // 2, T0) == 0 and ttl_seconds(T0 + 1, T0) == 1


def test_persisted_records_rebuild_the_same_tree() -> None:
    s = _store()
    s.set("/a/b/c", False, "1", 0, False)
    s.set("/a/t", False, "2", T0 + 10 * NS, False)
    s.create("/a/b/c2", True, "", False, 0)
    s.delete("/a/b/c", False, False)
    records = {p: Store.encode_node(n) for p, n in s.dirty.items() if n is not None}
    t = _store()
    t.load(s.index, records.items())
    assert t.get("/", True, True).node == s.get("/", True, True).node
    assert t.index == s.index and t.next_expiry() == T0 + 10 * NS


def test_clean_path_is_go_path_clean() -> None:
    assert [clean_path(p) for p in ("", "/", "a//b/", "/a/../../b", "./x/.")] == [
        "/", "/", "/a/b", "/b", "/x"]


def test_watchers() -> None:
    async def main() -> None:
        s = _store()
        w = s.watch("/dir", True, False, 0)
        hidden = s.watch("/dir", True, False, 0)
        s.set("/dir/_h", False, "x", 0, False)
        s.set("/dir/sub/k", False, "x", 0, False)
        ev = await asyncio.wait_for(w.next(), 1)
        # the first event is under a hidden name, so the recursive watcher on /dir skips it
        assert ev is not None and ev.node["key"] == "/dir/sub/k"
        assert await asyncio.wait_for(w.next(), 1) is None
        assert (await asyncio.wait_for(hidden.next(), 1)) is not None
        old = s.watch("/dir/sub/k", False, False, 1)
        assert (await asyncio.wait_for(old.next(), 1)) is not None
        for _ in range(1000):
            s.set("/spam", False, "x", 0, False)
        with pytest.raises(V2Error) as err:
            s.watch("/x", False, False, 1)
        assert err.value.code == e2.EVENT_INDEX_CLEARED

    asyncio.run(main())
