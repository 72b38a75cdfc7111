"""End to end on a real 3-member petcd cluster (harness `LocalCluster`) with the aetcd client:
watches on a follower, many watches sharing one client stream, and a follower that falls so far
behind that it is sent a snapshot (its watchers resync from the restored store).

This module imports aetcd, so it never imports petcd's generated stubs (both register the
etcdserverpb protobuf package).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aetcd
import pytest

from harness.local import LocalCluster
from tests.support.clusters import running

T = TypeVar("T")


def _run(url: str, fn: Callable[[Any], Awaitable[T]]) -> T:
    p = urlsplit(url)

    async def main() -> T:
        async with aetcd.Client(p.hostname or "127.0.0.1", p.port or 2379, timeout=15) as c:
            return await fn(c)

    return asyncio.run(main())


CATCHUP_ENTRIES = 500
"""Entries a leader keeps behind its snapshot (PETCD_SNAPSHOT_CATCHUP_ENTRIES; etcd's 5000)."""


@pytest.fixture
def petcd_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    monkeypatch.setenv("PETCD_SNAPSHOT_CATCHUP_ENTRIES", str(CATCHUP_ENTRIES))
    with running("petcd", size=3, extra_args=("--snapshot-count=200",)) as c:
        yield c


async def _collect(watch: Any, n: int, timeout: float) -> list[Any]:
    out: list[Any] = []

    async def go() -> None:
        async for ev in watch:
            out.append(ev)
            if len(out) >= n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


def test_follower_watches_share_one_stream(petcd_cluster: LocalCluster) -> None:
    c = petcd_cluster
    leader = c.leader()
    follower = next(m for m in c.members if m != leader)

    async def go(client: Any) -> None:
        base = (await client.put(b"/e2e/seed", b"0")).header.revision
        prefix = await client.watch_prefix(b"/e2e/", prev_kv=True)
        single = await client.watch(b"/e2e/k3")
        hist = await client.watch_prefix(b"/e2e/", start_revision=base)
        revs = [(await client.put(b"/e2e/k%d" % (i % 5), b"%d" % i)).header.revision
                for i in range(40)]
        got_prefix = await _collect(prefix, 40, 30)
        got_single = await _collect(single, 8, 30)
        got_hist = await _collect(hist, 41, 30)
        assert [e.kv.mod_revision for e in got_prefix] == revs
        assert [e.kv.mod_revision for e in got_single] == revs[3::5]
        assert [e.kv.mod_revision for e in got_hist] == [base, *revs]
        for i, e in enumerate(got_prefix):
            if i >= 5:  # overwrites carry the version before
                assert e.prev_kv is not None and e.prev_kv.value == b"%d" % (i - 5)
        for w in (prefix, single, hist):
            await w.cancel()

    _run(follower.client_url, go)


def test_watchers_resync_after_snapshot_restore(petcd_cluster: LocalCluster) -> None:
    """Pause a follower while the leader writes past its raft log (snapshot-count 200 plus the
    CATCHUP_ENTRIES kept for catch-up), so the follower is sent a snapshot; its watcher still
    gets every event exactly once, in order.

    Writes go one at a time: the leader batches concurrent proposals into one MsgApp, and its
    window of 256 unacknowledged MsgApps to the paused follower (sitting in socket buffers)
    could then hold every write, so the follower would catch up from them without a snapshot.
    One write per MsgApp bounds what it can receive before the compaction point to 256."""
    c = petcd_cluster
    leader = c.leader()
    follower = next(m for m in c.members if m != leader)
    n_writes = 256 + CATCHUP_ENTRIES + 2 * 200 + 200

    async def writer(client: Any) -> list[int]:
        revs: list[int] = []
        for i in range(n_writes):
            r = await client.put(b"/snap/k%d" % (i % 50), b"%d" % i)
            revs.append(r.header.revision)
        return revs

    async def go(fclient: Any) -> None:
        start = (await fclient.put(b"/snap/start", b"s")).header.revision
        w = await fclient.watch_prefix(b"/snap/", start_revision=start)
        first = await _collect(w, 1, 10)
        assert first[0].kv.mod_revision == start
        await asyncio.to_thread(c.pause, follower)
        try:
            p = urlsplit(leader.client_url)
            async with aetcd.Client(p.hostname or "", p.port or 0, timeout=30) as lc:
                revs = await writer(lc)
        finally:
            await asyncio.to_thread(c.resume, follower)
        got = await _collect(w, n_writes, 120)
        assert [e.kv.mod_revision for e in got] == revs
        await w.cancel()

    t0 = time.monotonic()
    _run(follower.client_url, go)
    assert time.monotonic() - t0 < 300
    log = c.log_path(follower).read_text(errors="replace")
    assert "applying snapshot" in log, "the follower caught up without a snapshot"
