"""The measurements of `harness.scale`, one implementation's cluster at a time.

Every function here drives one 3-member cluster through grpc.aio channels (`Conn`, one per
member, petcd's generated stubs) and returns plain dataclasses; ordering, interleaving,
budget and output are `harness.scale`'s. Timed request loops are `harness.bench.timed_load`
(the bench's load generator), CPU is read from /proc as the bench does.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

from harness import bench
from harness.cluster import ClusterError
from harness.local import LocalCluster

VALUE_BYTES = 1024
VALUE = b"v" * VALUE_BYTES
"""The watched key's value (the store's values are `value()`)."""


def value() -> bytes:
    """A fresh random 1 KiB value: incompressible, so LevelDB's block compression (petcd)
    does not make its disk figures incomparable with bbolt's (etcd, uncompressed)."""
    return os.urandom(VALUE_BYTES)

MAX_RECV_BYTES = 256 * 1024 * 1024
"""Client receive limit: a range over 10k keys of 1 KiB is ~10 MiB (grpc's default is 4)."""
FILL_RETRIES = 5
LEASE_TTL = 3600
"""Long enough that no lease expires (and is revoked through Raft) during a run."""
KEEPALIVE_WINDOW = 64
"""Keep-alive requests in flight per stream."""
WATCHERS_PER_STREAM = 100
SNAPSHOT_LOG_LINE = "applying snapshot"
"""What both etcd 3.5 and petcd log when a member installs a leader's snapshot."""


class ScaleError(RuntimeError):
    """A measurement could not be taken (e.g. a key could not be written after retries)."""


class Mismatch(Exception):
    """A response that answered but not with what was asked (counted as an error)."""


RPC_ERRORS: tuple[type[BaseException], ...] = (grpc.RpcError, asyncio.TimeoutError, Mismatch)


def key(i: int) -> bytes:
    """The i-th key; zero-padded so byte order is numeric order (ranges are key spans)."""
    return b"scale/k%08d" % i


class Conn:
    """One grpc.aio channel to one member, with the stubs scale uses."""

    def __init__(self, url: str, stubs: tuple[Any, Any]) -> None:
        self.pb, rpc = stubs
        self.url = url
        self.channel = grpc.aio.insecure_channel(
            urlsplit(url).netloc, options=[("grpc.max_receive_message_length", MAX_RECV_BYTES)])
        self.kv = rpc.KVStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.lease = rpc.LeaseStub(self.channel)
        self.cluster = rpc.ClusterStub(self.channel)
        self.maint = rpc.MaintenanceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()


def rss_mib(pid: int | None) -> float:
    """Current resident memory (VmRSS) of a live process in MiB, 0 when unreadable."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def disk_mib(path: Path) -> float:
    """Space the files under `path` take on disk (allocated blocks, as `du`), in MiB."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue  # removed while we walked (a WAL segment rotated)
    return total / (1024 * 1024)


def pids(cluster: LocalCluster) -> list[int | None]:
    return [cluster.pid(m) for m in cluster.members]


def members_rss(cluster: LocalCluster) -> list[float]:
    return [rss_mib(cluster.pid(m)) for m in cluster.members]


def members_disk(cluster: LocalCluster) -> list[float]:
    return [disk_mib(cluster.data_dir(m)) for m in cluster.members]


# ---- fill and the per-checkpoint cells --------------------------------------------------------

async def fill(conns: Sequence[Conn], start: int, stop: int, inflight: int, deadline: float,
               say: Callable[[str], None], label: str) -> int:
    """Write keys [start, stop) with `inflight` workers over the members; stop taking new keys
    at `deadline` (monotonic). Returns n such that every key below n is written."""
    nxt = start
    t0 = time.monotonic()
    last_say = t0

    async def worker(i: int) -> None:
        nonlocal nxt, last_say
        conn = conns[i % len(conns)]
        while nxt < stop and time.monotonic() < deadline:
            k, nxt = nxt, nxt + 1
            for attempt in range(FILL_RETRIES):
                try:
                    await conn.kv.Put(conn.pb.PutRequest(key=key(k), value=value()), timeout=30)
                    break
                except RPC_ERRORS as exc:
                    if attempt == FILL_RETRIES - 1:
                        raise ScaleError(f"{label}: put of key {k} failed {FILL_RETRIES} "
                                         f"times: {exc}") from exc
            now = time.monotonic()
            if now - last_say >= 10:
                last_say = now
                say(f"[scale]   {label}: {nxt}/{stop} keys "
                    f"({(nxt - start) / (now - t0):.0f} keys/s)")

    await asyncio.gather(*(worker(i) for i in range(inflight)))
    return nxt


async def put_cell(conns: Sequence[Conn], nkeys: int, inflight: int, seconds: float,
                   member_pids: Sequence[int | None], rng: random.Random) -> bench.Timing:
    """Overwrites of random existing keys (1 KiB values)."""
    def request(i: int, _n: int) -> Awaitable[object]:
        c = conns[i % len(conns)]
        rv: Awaitable[object] = c.kv.Put(
            c.pb.PutRequest(key=key(rng.randrange(nkeys)), value=value()), timeout=10)
        return rv

    return await bench.timed_load(request, inflight, seconds, member_pids, catch=RPC_ERRORS)


async def get_cell(conns: Sequence[Conn], nkeys: int, inflight: int, seconds: float,
                   member_pids: Sequence[int | None], rng: random.Random) -> bench.Timing:
    """Linearizable gets of random existing keys."""
    def request(i: int, _n: int) -> Awaitable[object]:
        c = conns[i % len(conns)]
        rv: Awaitable[object] = c.kv.Range(c.pb.RangeRequest(key=key(rng.randrange(nkeys))),
                                           timeout=10)
        return rv

    return await bench.timed_load(request, inflight, seconds, member_pids, catch=RPC_ERRORS)


async def range_cell(conns: Sequence[Conn], span: int, seconds: float,
                     member_pids: Sequence[int | None], max_reps: int = 50) -> bench.Timing:
    """One linearizable range over keys [0, span) at a time (values included), members in
    turn; a response without exactly `span` keys counts as an error."""
    async def request(i: int, n: int) -> None:
        c = conns[n % len(conns)]
        resp = await c.kv.Range(c.pb.RangeRequest(key=key(0), range_end=key(span)), timeout=60)
        if resp.count != span or len(resp.kvs) != span:
            raise Mismatch(f"range over {span} keys gave count={resp.count} kvs={len(resp.kvs)}")

    return await bench.timed_load(request, 1, seconds, member_pids, max_requests=max_reps,
                                  catch=RPC_ERRORS)


# ---- watch fan-out ----------------------------------------------------------------------------

@dataclass
class WatchResult:
    impl: str
    watchers: int
    puts: int = 0
    delivered: int = 0
    expected: int = 0
    seconds: float = 0.0
    """From the first put to the last event received (or the drain timeout)."""
    events_per_s: float = 0.0
    client_cpu_share: float = 0.0
    """Cores this (single, Python) client process used: near 1.0, the client is the ceiling."""
    put_errors: int = 0
    load_start: str = ""
    load_end: str = ""


async def watch_fanout(conns: Sequence[Conn], impl: str, watchers: int, seconds: float,
                       max_events: int, drain_s: float) -> WatchResult:
    """`watchers` watchers on one key (spread over the members, up to WATCHERS_PER_STREAM per
    stream) while a writer puts to it (4 in flight) for `seconds` or until max_events would
    be due; then waits up to `drain_s` for every event. events/s = delivered / time."""
    res = WatchResult(impl, watchers)
    wkey = b"scale/watched"
    pb = conns[0].pb
    calls: list[Any] = []
    sizes = [min(WATCHERS_PER_STREAM, watchers - s) for s in range(0, watchers, WATCHERS_PER_STREAM)]
    delivered = 0
    last_event = 0.0
    target: int | None = None
    done = asyncio.Event()
    try:
        for n, size in enumerate(sizes):
            call = conns[n % len(conns)].watch.Watch()
            calls.append(call)
            for _ in range(size):
                await call.write(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=wkey)))
            created = 0
            while created < size:
                resp = await asyncio.wait_for(call.read(), timeout=30)
                if resp is grpc.aio.EOF:
                    raise ScaleError(f"{impl}: watch stream ended while creating watchers")
                created += int(resp.created)

        async def reader(call: Any) -> None:
            nonlocal delivered, last_event
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    return
                if resp.events:
                    delivered += len(resp.events)
                    last_event = time.monotonic()
                    if target is not None and delivered >= target:
                        done.set()

        readers = [asyncio.create_task(reader(c)) for c in calls]
        cpu0, t0 = time.process_time(), time.monotonic()

        def put(i: int, _n: int) -> Awaitable[object]:
            c = conns[i % len(conns)]
            rv: Awaitable[object] = c.kv.Put(c.pb.PutRequest(key=wkey, value=VALUE), timeout=10)
            return rv

        t = await bench.timed_load(put, 4, seconds, [], max_requests=max(1, max_events // watchers),
                                   catch=RPC_ERRORS)
        res.puts, res.put_errors = t.requests, t.errors
        target = res.expected = t.requests * watchers
        if delivered >= target:
            done.set()
        try:
            await asyncio.wait_for(done.wait(), timeout=drain_s)
        except TimeoutError:
            last_event = time.monotonic()  # count the whole wait: what arrived by its end
        res.delivered = delivered
        res.seconds = max(last_event - t0, 1e-9)
        res.events_per_s = delivered / res.seconds
        res.client_cpu_share = (time.process_time() - cpu0) / max(time.monotonic() - t0, 1e-9)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    finally:
        for call in calls:
            call.cancel()
    return res


# ---- lease keep-alive -------------------------------------------------------------------------

@dataclass
class LeaseResult:
    impl: str
    leases: int = 0
    grant: bench.Timing = field(default_factory=bench.Timing)
    keepalives: int = 0
    errors: int = 0
    """Keep-alive responses with TTL <= 0 (lease not found) plus stream failures."""
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_ms_per_req: float = 0.0
    load_start: str = ""
    load_end: str = ""


async def lease_keepalive(conns: Sequence[Conn], impl: str, leases: int, seconds: float,
                          member_pids: Sequence[int | None], streams_per_member: int = 2
                          ) -> LeaseResult:
    """Grant `leases` leases (TTL LEASE_TTL, 64 in flight), then keep all of them alive
    round-robin over `streams_per_member` LeaseKeepAlive streams per member, KEEPALIVE_WINDOW
    requests in flight on each, for `seconds`: keep-alives answered per second."""
    res = LeaseResult(impl)
    ids: list[int] = []

    async def grant(i: int, _n: int) -> None:
        c = conns[i % len(conns)]
        ids.append((await c.lease.LeaseGrant(c.pb.LeaseGrantRequest(TTL=LEASE_TTL), timeout=10)).ID)

    res.grant = await bench.timed_load(grant, 64, 3600, member_pids, max_requests=leases,
                                       catch=RPC_ERRORS)
    res.leases = len(ids)
    if not ids:
        return res
    nstreams = min(len(ids), streams_per_member * len(conns))
    shares = [ids[s::nstreams] for s in range(nstreams)]
    latencies: list[float] = []
    stop = asyncio.Event()
    calls: list[Any] = []

    async def run_stream(conn: Conn, mine: list[int]) -> None:
        call = conn.lease.LeaseKeepAlive()
        calls.append(call)
        # Fewer in flight than leases on the stream, so a free one is always there to send.
        window = asyncio.Semaphore(max(1, min(KEEPALIVE_WINDOW, len(mine) - 1)))
        sent: dict[int, float] = {}

        async def reader() -> None:
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    return
                t0 = sent.pop(resp.ID, None)
                if resp.TTL <= 0 or t0 is None:
                    res.errors += 1
                else:
                    res.keepalives += 1
                    latencies.append(time.perf_counter() - t0)
                window.release()
                if stop.is_set() and not sent:
                    return

        rtask = asyncio.create_task(reader())
        try:
            turn = itertools.cycle(mine)
            while True:
                await window.acquire()
                if stop.is_set():
                    break
                lid = next(turn)
                while lid in sent:
                    lid = next(turn)
                sent[lid] = time.perf_counter()
                await call.write(conn.pb.LeaseKeepAliveRequest(ID=lid))
            if sent:
                await asyncio.wait_for(rtask, timeout=30)
        except (TimeoutError, grpc.RpcError):
            res.errors += 1
        finally:
            rtask.cancel()
            call.cancel()

    cpu0 = [bench._cpu_seconds(p) for p in member_pids]
    t0 = time.monotonic()
    tasks = [asyncio.create_task(run_stream(conns[s % len(conns)], share))
             for s, share in enumerate(shares)]
    await asyncio.sleep(seconds)  # the measurement window itself, not a synchronisation
    stop.set()
    _done, stuck = await asyncio.wait(tasks, timeout=60)
    for task in stuck:  # a stream whose server stopped answering
        task.cancel()
        res.errors += 1
    await asyncio.gather(*tasks, return_exceptions=True)
    res.seconds = time.monotonic() - t0
    cpu = sum(bench._cpu_seconds(p) - c for p, c in zip(member_pids, cpu0, strict=True))
    latencies.sort()
    res.rps = res.keepalives / res.seconds if res.seconds else 0.0
    res.p50_ms = bench._pct(latencies, 0.5) * 1000
    res.p99_ms = bench._pct(latencies, 0.99) * 1000
    if res.keepalives:
        res.server_cpu_ms_per_req = cpu * 1000 / res.keepalives
    return res


# ---- a new member catching up -----------------------------------------------------------------

@dataclass
class CatchUp:
    impl: str
    keys: int = 0
    revision: int = 0
    seconds: float = 0.0
    """From starting the new member's process to it serving the leader's revision."""
    via_snapshot: bool = False
    """The new member logged installing a snapshot (else it replayed the log)."""
    snapshot_lines: list[str] = field(default_factory=list)
    """The first lines of its log that mention a snapshot (the evidence for via_snapshot)."""
    rss_mib: float = 0.0
    disk_mib: float = 0.0
    error: str = ""
    load_start: str = ""
    load_end: str = ""


async def _revision(conn: Conn) -> int:
    resp = await conn.maint.Status(conn.pb.StatusRequest(), timeout=5)
    return int(resp.header.revision)


async def catch_up(cluster: LocalCluster, conns: Sequence[Conn], stubs: tuple[Any, Any],
                   keys: int, timeout: float, name: str = "m4") -> CatchUp:
    """Add a member (MemberAdd, then start it with --initial-cluster-state existing), time it
    until it serves the cluster's revision, then remove it again (MemberRemove) so the
    cluster is back to its three members."""
    res = CatchUp(cluster.impl.name, keys)
    pb = conns[0].pb
    res.revision = max([await _revision(c) for c in conns])
    new = cluster.plan_member(name)
    added = await conns[0].cluster.MemberAdd(pb.MemberAddRequest(peerURLs=[new.peer_url]),
                                             timeout=30)
    initial = ",".join([f"{m.name}={m.peer_url}" for m in cluster.members]
                       + [f"{new.name}={new.peer_url}"])
    t0 = time.monotonic()
    cluster.join(new, initial)
    conn = Conn(new.client_url, stubs)
    try:
        while True:
            try:
                if await _revision(conn) >= res.revision:
                    break
            except RPC_ERRORS:
                pass  # not serving yet
            if time.monotonic() - t0 > timeout:
                raise ClusterError(f"{name} did not reach revision {res.revision} in {timeout}s")
            if not cluster.is_running(new):
                raise ClusterError(f"{name} exited: {cluster.log_tail(new, 10)}")
            await asyncio.sleep(0.05)  # polling the member's revision under a deadline
        res.seconds = time.monotonic() - t0
        log = cluster.log_path(new).read_text(errors="replace")
        res.via_snapshot = SNAPSHOT_LOG_LINE in log
        res.snapshot_lines = [ln[:300] for ln in log.splitlines() if "snapshot" in ln.lower()][:5]
        res.rss_mib = rss_mib(cluster.pid(new))
        res.disk_mib = disk_mib(cluster.data_dir(new))
    finally:
        await conn.close()
        try:
            await conns[0].cluster.MemberRemove(pb.MemberRemoveRequest(ID=added.member.ID),
                                                timeout=30)
        finally:
            cluster.forget(new)
    return res
