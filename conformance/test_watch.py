"""Watch API: etcdctl watch output, the raw Watch stream protocol (ids, created/canceled
responses, progress, compaction, filters, prev_kv, fragment) and the delivery guarantees
(ordered, exactly once, one response per revision, resumable, slow readers, leader loss).

The raw protocol tests use aetcd's generated stubs over grpc.aio (never petcd's: both register
the etcdserverpb protobuf package).
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
import pytest
from aetcd import rpc

from harness.cluster import Cluster
from harness.etcdctl import Etcdctl
from harness.impls import etcdctl_35
from harness.local import LocalCluster
from tests.support.timeouts import STEP

T = TypeVar("T")
COMPACTED = "etcdserver: mvcc: required revision has been compacted"


# ---- raw Watch streams ---------------------------------------------------------------------


class Raw:
    """A channel to one member with KV and Watch stubs; `watch()` opens streams on it."""

    def __init__(self, ch: grpc.aio.Channel) -> None:
        self.ch = ch
        self.kv = rpc.KVStub(ch)
        self.watch_stub = rpc.WatchStub(ch)

    async def put(self, key: bytes, value: bytes) -> int:
        rev: int = (await self.kv.Put(rpc.PutRequest(key=key, value=value), timeout=10)).header.revision
        return rev

    async def txn(self, ops: Sequence[Any]) -> int:
        resp = await self.kv.Txn(rpc.TxnRequest(success=list(ops)), timeout=10)
        rev: int = resp.header.revision
        return rev

    async def rev(self) -> int:
        rev: int = (await self.kv.Range(rpc.RangeRequest(key=b"\0"), timeout=10)).header.revision
        return rev

    def watch(self) -> Stream:
        return Stream(self.watch_stub.Watch())


class Stream:
    """One Watch stream; a pump task moves responses into a queue as they arrive (unless
    paused, to play a client that does not read)."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.q: asyncio.Queue[Any] = asyncio.Queue()
        self.reading = asyncio.Event()
        self.reading.set()
        self.task = asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                await self.reading.wait()
                r = await self.call.read()
                if r is grpc.aio.EOF:
                    return
                await self.q.put(r)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            return

    async def send(self, req: Any) -> None:
        await self.call.write(req)

    async def create(self, key: bytes, **kw: Any) -> Any:
        await self.send(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=key, **kw)))
        r = await self.next()
        assert r.created, r
        return r

    async def cancel(self, watch_id: int) -> None:
        await self.send(rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=watch_id)))

    async def progress(self) -> None:
        await self.send(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    async def next(self, timeout: float = STEP) -> Any:
        try:
            return await asyncio.wait_for(self.q.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no watch response within {timeout}s") from None

    async def quiet(self, within: float = 0.5) -> None:
        """Assert that nothing arrives within `within` seconds."""
        try:
            r = await asyncio.wait_for(self.q.get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected watch response: {r}")

    async def events(self, n: int, timeout: float = 30.0) -> list[Any]:
        """Responses until `n` events arrived in total (fails on fewer within `timeout`)."""
        deadline = time.monotonic() + timeout
        out: list[Any] = []
        got = 0
        while got < n:
            r = await self.next(max(deadline - time.monotonic(), 0.01))
            if r.events:
                out.append(r)
                got += len(r.events)
        assert got == n, f"wanted {n} events, got {got}"
        return out

    def close(self) -> None:
        self.task.cancel()
        self.call.cancel()


def _target(url: str) -> str:
    p = urlsplit(url)
    return f"{p.hostname}:{p.port}"


def run_raw(url: str, fn: Callable[[Raw], Awaitable[T]]) -> T:
    async def main() -> T:
        async with grpc.aio.insecure_channel(
            _target(url), options=[("grpc.max_receive_message_length", 64 << 20)]
        ) as ch:
            return await fn(Raw(ch))

    return asyncio.run(main())


@asynccontextmanager
async def watching(raw: Raw) -> AsyncIterator[Stream]:
    s = raw.watch()
    try:
        yield s
    finally:
        s.close()


def evs(resps: Sequence[Any]) -> list[tuple[str, bytes, int]]:
    """(type, key, mod_revision) of every event, in order."""
    return [
        ("DELETE" if e.type == 1 else "PUT", e.kv.key, e.kv.mod_revision)
        for r in resps
        for e in r.events
    ]


# ---- etcdctl watch -------------------------------------------------------------------------


class CtlWatch:
    """`etcdctl watch ...` as a running process; `lines(n)` waits for n stdout lines."""

    def __init__(self, endpoints: Sequence[str], *args: str) -> None:
        self.p = subprocess.Popen(
            [str(etcdctl_35()), f"--endpoints={','.join(endpoints)}", "watch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def lines(self, n: int, timeout: float = 20.0) -> list[str]:
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            try:
                line = self.q.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"etcdctl watch printed only {out}") from None
            if line is None:
                raise AssertionError(f"etcdctl watch exited after {out}")
            out.append(line)
        return out

    def stop(self) -> None:
        self.p.kill()
        self.p.wait(timeout=10)


def _history(etcdctl: Etcdctl, prefix: str) -> tuple[int, int]:
    """put a=1, b=2, a=3, del a, put other; returns (first revision, last prefix revision)."""
    first = 0
    for args in (("put", prefix + "a", "1"), ("put", prefix + "b", "2"), ("put", prefix + "a", "3")):
        doc = etcdctl(*args, "-w", "json").check().json()
        first = first or doc["header"]["revision"]
    last = etcdctl("del", prefix + "a", "-w", "json").check().json()["header"]["revision"]
    etcdctl("put", prefix.rstrip("/") + "-other", "x").check()
    return first, last


def test_etcdctl_watch_prefix_history(target: str, cluster: Cluster, etcdctl: Etcdctl,
                                      prefix: str) -> None:
    first, _ = _history(etcdctl, prefix)
    w = CtlWatch(cluster.endpoints, "--prefix", prefix, "--rev", str(first))
    try:
        got = w.lines(11)
    finally:
        w.stop()
    a, b = prefix + "a", prefix + "b"
    assert got == ["PUT", a, "1", "PUT", b, "2", "PUT", a, "3", "DELETE", a]


def test_etcdctl_watch_prev_kv_json(target: str, cluster: Cluster, etcdctl: Etcdctl,
                                    prefix: str) -> None:
    import json

    first, last = _history(etcdctl, prefix)
    w = CtlWatch(cluster.endpoints, "--prefix", prefix, "--rev", str(first + 2), "--prev-kv",
                 "-w", "json")
    try:
        doc = json.loads(w.lines(1)[0])
    finally:
        w.stop()
    events = doc["Events"]
    assert [e.get("type", 0) for e in events] == [0, 1]
    put, dele = events
    assert put["kv"]["mod_revision"] == first + 2 and put["kv"]["version"] == 2
    assert put["prev_kv"]["mod_revision"] == first and put["prev_kv"]["version"] == 1
    # a delete event carries only key and mod_revision; prev_kv is the deleted version
    assert set(dele["kv"]) == {"key", "mod_revision"} and dele["kv"]["mod_revision"] == last
    assert dele["prev_kv"]["mod_revision"] == first + 2
    assert doc["Header"]["revision"] >= last and not doc["Canceled"]


def test_etcdctl_watch_compacted(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    first, last = _history(etcdctl, prefix)
    etcdctl("compact", str(last)).check()
    res = etcdctl("watch", "--prefix", prefix, "--rev", str(first), timeout=20)
    assert res.rc == 5
    assert f"watch was canceled ({COMPACTED})" in res.stdout + res.stderr
    assert "Error: watch is canceled by the server" in res.stderr


def test_etcdctl_watch_live(target: str, cluster: Cluster, etcdctl: Etcdctl, prefix: str) -> None:
    key = prefix + "k"
    rev = etcdctl("get", key, "-w", "json").check().json()["header"]["revision"]
    # from rev + 1: the writes below are seen whether they land before or after the watch
    w = CtlWatch(cluster.endpoints, key, "--rev", str(rev + 1))
    try:
        etcdctl("put", key, "v1").check()
        etcdctl("del", key).check()
        got = w.lines(5)
    finally:
        w.stop()
    assert got == ["PUT", key, "v1", "DELETE", key]


# ---- protocol ------------------------------------------------------------------------------


def test_create_ids_cancel_progress(target: str, cluster: Cluster, prefix: str) -> None:
    key = (prefix + "a").encode()

    async def go(raw: Raw) -> None:
        rev = await raw.put(key, b"1")
        async with watching(raw) as s:
            r = await s.create(key)
            assert (r.watch_id, r.canceled, r.header.revision) == (0, False, rev)
            assert r.header.cluster_id and r.header.member_id and r.header.raft_term
            r = await s.create(key, watch_id=7)
            assert r.watch_id == 7 and not r.canceled
            r = await s.create(key, watch_id=7)
            assert (r.watch_id, r.canceled) == (-1, True)
            assert r.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
            r = await s.create((prefix + "b").encode(), range_end=key)
            assert (r.watch_id, r.canceled) == (-1, True)
            assert r.cancel_reason == "mvcc: watcher range is empty"
            r = await s.create(key)  # auto ids continue after the ones taken
            assert r.watch_id == 1
            await s.progress()
            r = await s.next()
            assert (r.watch_id, r.header.revision, len(r.events)) == (-1, rev, 0)
            await s.cancel(7)
            r = await s.next()
            assert (r.watch_id, r.canceled, r.created) == (7, True, False)
            await s.cancel(99)  # unknown id: no response
            rev2 = await raw.put(key, b"2")
            got = [await s.next(), await s.next()]
            assert sorted(x.watch_id for x in got) == [0, 1]
            for x in got:
                assert evs([x]) == [("PUT", key, rev2)] and x.header.revision == rev2
            await s.quiet()

    run_raw(cluster.members[0].client_url, go)


def test_compacted_watch_response(target: str, cluster: Cluster, prefix: str) -> None:
    key = (prefix + "a").encode()

    async def go(raw: Raw) -> None:
        r1 = await raw.put(key, b"1")
        r2 = await raw.put(key, b"2")
        await raw.kv.Compact(rpc.CompactionRequest(revision=r2), timeout=10)
        async with watching(raw) as s:
            await s.create(key, start_revision=r1)
            r = await s.next()
            assert (r.canceled, r.compact_revision, r.watch_id) == (True, r2, 0)
            assert r.header.revision == 0 and not r.events and not r.cancel_reason
            await s.cancel(0)  # the compacted watch keeps its id until canceled
            r = await s.next()
            assert (r.watch_id, r.canceled) == (0, True)
            # the compaction revision itself is still watchable (its kept versions included)
            await s.create(key, start_revision=r2)
            assert evs([await s.next()]) == [("PUT", key, r2)]
            r3 = await raw.put(key, b"3")
            assert evs([await s.next()]) == [("PUT", key, r3)]

    run_raw(cluster.members[0].client_url, go)


def test_filters_prev_kv_ranges(target: str, cluster: Cluster, prefix: str) -> None:
    p = prefix.encode()

    async def go(raw: Raw) -> None:
        async with watching(raw) as s:
            await s.create(p, range_end=b"\0", filters=[rpc.WatchCreateRequest.NOPUT],
                           prev_kv=True)
            await s.create(p + b"b", range_end=p + b"d",
                           filters=[rpc.WatchCreateRequest.NODELETE])
            await s.create(p + b"a")
            ra = await raw.put(p + b"a", b"1")
            rc = await raw.put(p + b"c", b"2")
            rd = (await raw.kv.DeleteRange(rpc.DeleteRangeRequest(key=p + b"a"),
                                           timeout=10)).header.revision
            got: dict[int, list[Any]] = {0: [], 1: [], 2: []}
            for _ in range(4):
                r = await s.next()
                got[r.watch_id].append(r)
            await s.quiet()
            assert evs(got[0]) == [("DELETE", p + b"a", rd)]
            (ev,) = got[0][0].events
            assert ev.prev_kv.value == b"1" and ev.prev_kv.mod_revision == ra
            assert ev.kv.value == b"" and ev.kv.create_revision == 0
            assert evs(got[1]) == [("PUT", p + b"c", rc)]
            assert evs(got[2]) == [("PUT", p + b"a", ra), ("DELETE", p + b"a", rd)]
            assert not got[2][0].events[0].HasField("prev_kv")

    run_raw(cluster.members[0].client_url, go)


def test_one_response_per_revision(target: str, cluster: Cluster, prefix: str) -> None:
    p = prefix.encode()

    async def go(raw: Raw) -> None:
        start = await raw.rev() + 1
        async with watching(raw) as live:
            await live.create(p, range_end=p + b"\xff", prev_kv=True)
            keys = [p + b"k%d" % i for i in range(5)]
            ops = [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=b"v")) for k in keys]
            r1 = await raw.txn(ops)
            r2 = (await raw.kv.DeleteRange(
                rpc.DeleteRangeRequest(key=p, range_end=p + b"\xff", prev_kv=True),
                timeout=10)).header.revision
            resps = [await live.next(), await live.next()]
            assert [r.header.revision for r in resps] == [r1, r2]
            assert evs(resps[:1]) == [("PUT", k, r1) for k in keys]
            assert evs(resps[1:]) == [("DELETE", k, r2) for k in keys]
            assert all(e.prev_kv.value == b"v" for e in resps[1].events)
        async with watching(raw) as hist:  # the same from history, still one per revision
            await hist.create(p, range_end=p + b"\xff", start_revision=start)
            resps = await hist.events(10)
            seen = [e.kv.mod_revision for r in resps for e in r.events]
            assert seen == [r1] * 5 + [r2] * 5
            for r in resps:
                assert not r.fragment

    run_raw(cluster.members[0].client_url, go)


def test_resume_from_any_revision(target: str, cluster: Cluster, prefix: str) -> None:
    p = prefix.encode()

    async def go(raw: Raw) -> None:
        writes = []
        for i in range(30):
            k = p + b"k%d" % (i % 7)
            writes.append((k, await raw.put(k, b"%d" % i)))
        for start in (writes[0][1], writes[9][1], writes[29][1]):
            async with watching(raw) as s:
                await s.create(p, range_end=p + b"\xff", start_revision=start)
                want = [("PUT", k, r) for k, r in writes if r >= start]
                assert evs(await s.events(len(want))) == want
                await s.quiet(0.3)

    run_raw(cluster.members[1].client_url, go)


def test_fragment(target: str, cluster: Cluster, prefix: str) -> None:
    """A revision bigger than --max-request-bytes + 512KiB (default 2MiB) is split only when
    the watcher asked for fragments; fragments carry fragment=true except the last."""
    p = prefix.encode()
    big = b"x" * (700 * 1024)

    async def go(raw: Raw) -> None:
        for i in range(4):
            await raw.put(p + b"%d" % i, big)
        async with watching(raw) as s:
            await s.create(p, range_end=p + b"\xff", prev_kv=True, fragment=True)
            await s.create(p, range_end=p + b"\xff", prev_kv=True)
            rev = (await raw.kv.DeleteRange(rpc.DeleteRangeRequest(key=p, range_end=p + b"\xff"),
                                            timeout=10)).header.revision
            frags: list[Any] = []
            whole: list[Any] = []
            while not whole or not frags or frags[-1].fragment:
                r = await s.next()
                (frags if r.watch_id == 0 else whole).append(r)
            assert len(whole) == 1 and len(whole[0].events) == 4 and not whole[0].fragment
            assert len(frags) > 1
            assert [f.fragment for f in frags] == [True] * (len(frags) - 1) + [False]
            assert evs(frags) == [("DELETE", p + b"%d" % i, rev) for i in range(4)]
            assert all(f.header.revision == rev for f in frags)
            assert all(e.prev_kv.value == big for f in frags for e in f.events)

    run_raw(cluster.members[0].client_url, go)


def test_slow_reader_gets_everything(target: str, cluster: Cluster, prefix: str) -> None:
    """A client that stops reading does not block writes or other watchers, and later gets
    every event exactly once, in order."""
    p = prefix.encode()
    n_txn, per_txn, size = 150, 8, 4096

    async def go(raw: Raw) -> None:
        async with watching(raw) as slow, watching(raw) as fast:
            await slow.create(p, range_end=p + b"\xff")
            await fast.create(p, range_end=p + b"\xff")
            slow.reading.clear()
            revs = []
            for i in range(n_txn):
                ops = [rpc.RequestOp(request_put=rpc.PutRequest(key=p + b"%03d-%d" % (i, j),
                                                                value=b"v" * size))
                       for j in range(per_txn)]
                revs.append(await raw.txn(ops))
            fast_resps = await fast.events(n_txn * per_txn, timeout=60)
            assert [r.header.revision for r in fast_resps] == revs
            slow.reading.set()
            slow_resps = await slow.events(n_txn * per_txn, timeout=60)
            seen = [e.kv.mod_revision for r in slow_resps for e in r.events]
            assert seen == [r for r in revs for _ in range(per_txn)]
            keys = [e.kv.key for r in slow_resps for e in r.events]
            assert len(set(keys)) == len(keys)
            await slow.quiet(0.3)

    run_raw(cluster.members[0].client_url, go)


PROGRESS_INTERVAL = "500ms"


def test_progress_notify(target: str, cluster_factory: Callable[..., LocalCluster],
                         monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("PETCD_WATCH_PROGRESS_NOTIFY_INTERVAL", "0.5")
    c = cluster_factory(
        3, extra_args=(f"--experimental-watch-progress-notify-interval={PROGRESS_INTERVAL}",)
    )
    key = (prefix + "a").encode()

    async def go(raw: Raw) -> None:
        async with watching(raw) as s:
            rev = await raw.put(key, b"1")
            await s.create(key, progress_notify=True)
            await s.create(key + b"-other")  # no progress_notify: never gets one
            r = await s.next(timeout=5)
            assert (r.watch_id, len(r.events), r.header.revision) == (0, 0, rev)
            rev2 = await raw.put(key + b"-x", b"1")  # not watched, but advances the revision
            r = await s.next(timeout=5)
            assert (r.watch_id, len(r.events), r.header.revision) == (0, 0, rev2)

    run_raw(c.members[0].client_url, go)


def test_watch_survives_leader_kill(target: str, fresh_cluster: LocalCluster,
                                    prefix: str) -> None:
    """A watch on a member that stays up sees every acknowledged write exactly once, in
    order, across the old leader's death, and the same events as a watch of the history."""
    c = fresh_cluster
    leader = c.leader()
    survivor = next(m for m in c.members if m != leader)
    p = prefix.encode()
    total, kill_at = 120, 40

    async def go(raw: Raw) -> None:
        start = await raw.rev() + 1
        async with watching(raw) as s:
            await s.create(p, range_end=p + b"\xff", prev_kv=True)
            acked: list[tuple[bytes, int]] = []
            for i in range(total):
                if i == kill_at:
                    await asyncio.to_thread(c.kill, leader)
                k = p + b"k%d" % (i % 10)
                deadline = time.monotonic() + 30
                while True:  # retry through the election; an unacked put may still land
                    try:
                        acked.append((k, await raw.put(k, b"%d" % i)))
                        break
                    except grpc.aio.AioRpcError:
                        assert time.monotonic() < deadline, "no new leader"
                        await asyncio.sleep(0.1)
            end = acked[-1][1]
            live: list[Any] = []
            while not live or live[-1].header.revision < end:
                r = await s.next(timeout=30)
                if r.events:
                    live.append(r)
        got = evs(live)
        revs = [r for _, _, r in got]
        assert revs == sorted(revs) and len(set(revs)) == len(revs)
        assert {(k, r) for _, k, r in got} >= set(acked)
        async with watching(raw) as h:
            await h.create(p, range_end=p + b"\xff", start_revision=start, prev_kv=True)
            hist = await h.events(len(got), timeout=30)
        assert evs(hist) == got
        assert [e.prev_kv for r in hist for e in r.events] == [
            e.prev_kv for r in live for e in r.events
        ]

    run_raw(survivor.client_url, go)
