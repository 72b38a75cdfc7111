"""`python -m harness.bench`: throughput/latency/CPU of petcd vs etcd 3.5.1, interleaved.

One 3-member local cluster per implementation (default petcd and etcd-3.5) is started on
loopback and both stay up for the whole run. The cells (operation x requests in flight: put,
linearizable get, serializable get at 1, 16, 64, 256 by default) are run in `--rounds` rounds;
inside a round every cell runs once per implementation, back to back, in the order A B (odd
rounds B A), so each implementation meets the same background load and a cell's spread across
rounds is known. Clients spread over the three members; the idle cluster only heartbeats.

Per cell and round: req/s, p50/p99 latency, CPU ms per request summed over the three member
processes (utime+stime from /proc), the busiest member's core share; per implementation the
largest member's peak RSS (VmHWM). The 1-minute load average is read at start and end; a run
whose load average exceeds `LOADED_PER_CPU` x CPUs at either point is flagged `loaded`
(`--refuse-loaded` refuses to start instead). Results: a table on stdout and
`results/bench-<timestamp>.{txt,json}`. `run_bench()` is the API the regression gate calls.

The client is grpc.aio with petcd's generated stubs when importable, else aetcd. The Python
client can saturate before the server at high concurrency; both targets share that ceiling, so
ratios stay meaningful as a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from harness.cluster import ClusterError
from harness.impls import REPO_ROOT
from harness.local import LocalCluster

OPS = ("put", "get-linearizable", "get-serializable")
DEFAULT_INFLIGHT = (1, 16, 64, 256)
DEFAULT_ROUNDS = 3
LOADED_PER_CPU = 1.5
"""A run is flagged loaded when the 1-minute load average exceeds this many times the CPUs."""
KEYSPACE = 1000
VALUE = b"x" * 64
MAX_REQUESTS_PER_CELL = 2_000_000


def _rpc_error_types(with_aetcd: bool) -> tuple[type[BaseException], ...]:
    """The errors a request may raise. aetcd is imported only when it is the client: it
    registers its own etcdserverpb schema, which clashes with petcd's stubs in one process."""
    import grpc

    types: list[type[BaseException]] = [grpc.RpcError, asyncio.TimeoutError]
    if with_aetcd:
        try:
            from aetcd.exceptions import ClientError

            types.append(ClientError)
        except ImportError:
            pass
    return tuple(types)


_RPC_ERRORS: tuple[type[BaseException], ...] = ()


class KVClient(Protocol):
    async def put(self, key: bytes, value: bytes) -> None: ...
    async def get(self, key: bytes, serializable: bool) -> None: ...
    async def close(self) -> None: ...


def _load_stubs() -> tuple[Any, Any] | None:
    """petcd's generated etcdserverpb modules (rpc_pb2, rpc_pb2_grpc), if built."""
    for base in ("petcd.api.etcdserverpb", "petcd.api.gen.etcdserverpb"):
        try:
            pb = __import__(f"{base}.rpc_pb2", fromlist=["x"])
            grpc_mod = __import__(f"{base}.rpc_pb2_grpc", fromlist=["x"])
            return pb, grpc_mod
        except ImportError:
            continue
    return None


class GrpcClient:
    def __init__(self, url: str, stubs: tuple[Any, Any]) -> None:
        import grpc

        self.pb, grpc_mod = stubs
        self.channel = grpc.aio.insecure_channel(urlsplit(url).netloc)
        self.kv = grpc_mod.KVStub(self.channel)

    async def put(self, key: bytes, value: bytes) -> None:
        await self.kv.Put(self.pb.PutRequest(key=key, value=value), timeout=10)

    async def get(self, key: bytes, serializable: bool) -> None:
        await self.kv.Range(self.pb.RangeRequest(key=key, serializable=serializable), timeout=10)

    async def close(self) -> None:
        await self.channel.close()


class AetcdClient:
    def __init__(self, url: str) -> None:
        import aetcd

        parts = urlsplit(url)
        self.client = aetcd.Client(parts.hostname or "127.0.0.1", parts.port or 2379, timeout=10)

    async def put(self, key: bytes, value: bytes) -> None:
        await self.client.put(key, value)

    async def get(self, key: bytes, serializable: bool) -> None:
        await self.client.get(key, serializable=serializable)

    async def close(self) -> None:
        await self.client.close()


@dataclass
class Cell:
    """One measurement: one implementation, operation and concurrency, in one round."""

    impl: str
    op: str
    inflight: int
    round: int = 0
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    first_error: str = ""
    server_cpu_ms_per_req: float = 0.0
    """CPU time (user+system) all members spent per successful request. Unlike req/s this
    barely moves when other work shares the machine, so it is the number to compare across
    runs on a loaded box."""
    leader_cpu_share: float = 0.0
    """Fraction of one core the busiest member used during the cell (near 1.0: that member's
    event loop is the bottleneck)."""


@dataclass
class Run:
    started: str
    client: str
    seconds_per_cell: float
    rounds: int = 1
    impls: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    peak_rss_mib: dict[str, list[float]] = field(default_factory=dict)
    """Per implementation, each member's peak resident memory over the whole run (VmHWM)."""
    load_start: str = ""
    load_end: str = ""
    """System load averages (1/5/15 min) around the run: other work on the box skews req/s."""
    cpus: int = 0
    loaded: bool = False
    """True when the 1-minute load average exceeded LOADED_PER_CPU x cpus at start or end."""

    def series(self, impl: str, op: str, inflight: int, attr: str = "rps") -> list[float]:
        """`attr` of one cell over the rounds, in round order."""
        return [float(getattr(c, attr)) for c in sorted(self.cells, key=lambda c: c.round)
                if (c.impl, c.op, c.inflight) == (impl, op, inflight)]

    def ratios(self, op: str, inflight: int, attr: str = "rps") -> list[float]:
        """Per round, `attr` of impls[0] over impls[1] (rounds where either is 0 left out)."""
        a, b = (self.series(i, op, inflight, attr) for i in self.impls[:2])
        return [x / y for x, y in zip(a, b, strict=False) if x > 0 and y > 0]


def spread(values: Sequence[float]) -> float:
    """Relative spread of repeated measurements: (max - min) / median (0 for fewer than 2)."""
    if len(values) < 2:
        return 0.0
    med = statistics.median(values)
    return (max(values) - min(values)) / med if med else 0.0


def load1(text: str) -> float:
    """The 1-minute figure of a `_loadavg()` string (0.0 when unknown)."""
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return 0.0


def _peak_rss_mib(pid: int | None) -> float:
    """VmHWM of a live process in MiB (0 when it cannot be read, e.g. not on Linux)."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _cpu_seconds(pid: int | None) -> float:
    """utime+stime of a live process in seconds (0 when it cannot be read)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0


_CLK_TCK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def _pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    idx = min(len(sorted_vals) - 1, int(q * len(sorted_vals)))
    return sorted_vals[idx]


@dataclass
class Timing:
    """What `timed_load` measured (the per-request figures of a `Cell`)."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    first_error: str = ""
    server_cpu_ms_per_req: float = 0.0
    leader_cpu_share: float = 0.0


async def timed_load(request: Callable[[int, int], Awaitable[object]], inflight: int,
                     seconds: float, pids: Sequence[int | None],
                     max_requests: int = MAX_REQUESTS_PER_CELL,
                     catch: tuple[type[BaseException], ...] | None = None) -> Timing:
    """`inflight` workers call `request(worker, n)` (n counts requests from 1) back to back
    for `seconds` (or `max_requests` in all); latency of the successful ones, RPC errors
    (`catch`, default the bench client's) counted with the first kept, CPU of the processes
    `pids` per successful request."""
    t = Timing()
    rpc_errors = _RPC_ERRORS if catch is None else catch
    cpu0 = [_cpu_seconds(p) for p in pids]
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    counter = 0

    async def worker(i: int) -> None:
        nonlocal counter
        while time.monotonic() < deadline and counter < max_requests:
            counter += 1
            t0 = time.perf_counter()
            try:
                await request(i, counter)
            except rpc_errors as exc:  # any RPC failure counts; the first is reported
                t.errors += 1
                if not t.first_error:
                    t.first_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(inflight)))
    t.seconds = time.monotonic() - start
    cpu = [_cpu_seconds(p) - c0 for p, c0 in zip(pids, cpu0, strict=True)]
    latencies.sort()
    t.requests = len(latencies)
    t.rps = t.requests / t.seconds if t.seconds else 0.0
    t.p50_ms = _pct(latencies, 0.50) * 1000
    t.p99_ms = _pct(latencies, 0.99) * 1000
    if t.requests:
        t.server_cpu_ms_per_req = sum(cpu) * 1000 / t.requests
    if cpu and t.seconds:
        t.leader_cpu_share = max(cpu) / t.seconds
    return t


async def _run_cell(clients: list[KVClient], cell: Cell, seconds: float,
                    pids: list[int | None]) -> None:
    ser = cell.op == "get-serializable"

    def request(i: int, n: int) -> Awaitable[None]:
        c, key = clients[i % len(clients)], b"bench/k%d" % (n % KEYSPACE)
        return c.put(key, VALUE) if cell.op == "put" else c.get(key, ser)

    t = await timed_load(request, cell.inflight, seconds, pids)
    for f in fields(Timing):
        setattr(cell, f.name, getattr(t, f.name))


async def _seed(client: KVClient) -> None:
    """Fill the keyspace so gets hit real keys."""
    for i in range(KEYSPACE):
        await client.put(b"bench/k%d" % i, VALUE)


def _say_cell(cell: Cell, say: Callable[[str], None]) -> None:
    err = f" errors={cell.errors} ({cell.first_error})" if cell.errors else ""
    say(f"  r{cell.round} {cell.impl:9} {cell.op:17} inflight={cell.inflight:<4} "
        f"{cell.rps:9.0f} req/s p50={cell.p50_ms:7.2f}ms p99={cell.p99_ms:7.2f}ms "
        f"cpu={cell.server_cpu_ms_per_req:5.2f}ms/req "
        f"busiest={cell.leader_cpu_share:4.2f}core{err}")


async def _interleaved(clusters: dict[str, LocalCluster], cells: list[tuple[str, int]],
                       rounds: int, seconds: float, run: Run, stubs: tuple[Any, Any] | None,
                       say: Callable[[str], None]) -> None:
    clients: dict[str, list[KVClient]] = {
        impl: [GrpcClient(u, stubs) if stubs else AetcdClient(u) for u in c.endpoints]
        for impl, c in clusters.items()}
    pids = {impl: [c.pid(m) for m in c.members] for impl, c in clusters.items()}
    try:
        for impl in clusters:
            await _seed(clients[impl][0])
        order = list(clusters)
        for r in range(1, rounds + 1):
            say(f"[bench] round {r}/{rounds}")
            for op, n in cells:
                for impl in (order if r % 2 else order[::-1]):
                    cell = Cell(impl, op, n, round=r)
                    await _run_cell(clients[impl], cell, seconds, pids[impl])
                    run.cells.append(cell)
                    _say_cell(cell, say)
    finally:
        for cs in clients.values():
            for c in cs:
                await c.close()


def start_clusters(impls: Sequence[str], clusters: dict[str, LocalCluster],
                   failures: dict[str, str], say: Callable[[str], None],
                   extra_args: tuple[str, ...] = (), tag: str = "bench") -> None:
    """Start a healthy 3-member local cluster per implementation (members get `extra_args`)
    and add it to `clusters` as soon as it runs, so the caller's cleanup stops every one even
    if this is interrupted. One that cannot start is stopped and recorded in `failures`."""
    for impl in impls:
        cluster = LocalCluster(impl, size=3, extra_args=extra_args)
        say(f"[{tag}] starting 3-member {impl} cluster")
        try:
            clusters[impl] = cluster
            cluster.start()
            cluster.wait_healthy(timeout=60)
        except (ClusterError, OSError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            failures[impl] = why
            say(f"[{tag}] {impl} failed: {why}")
            del clusters[impl]
            cluster.stop()


def run_bench(impls: Sequence[str] = ("petcd", "etcd-3.5"), ops: Sequence[str] = OPS,
              inflight: Sequence[int] = DEFAULT_INFLIGHT, rounds: int = DEFAULT_ROUNDS,
              seconds: float = 5.0, say: Callable[[str], None] | None = None,
              refuse_loaded: bool = False) -> Run:
    """Run the interleaved bench (module docstring) and return its `Run`; writes no files.

    Clusters that cannot start are recorded in `Run.failures` (the other implementations are
    still measured). With `refuse_loaded`, a loaded box (see `LOADED_PER_CPU`) gives a Run with
    `loaded` set, `failures["*"]` saying why, and no cells.
    """
    out = say or (lambda msg: print(msg, flush=True))
    stubs = _load_stubs()
    global _RPC_ERRORS
    _RPC_ERRORS = _rpc_error_types(with_aetcd=stubs is None)
    run = Run(time.strftime("%Y%m%d-%H%M%S"), "grpc.aio+petcd stubs" if stubs else "aetcd",
              seconds, rounds=rounds, impls=list(impls), cpus=os.cpu_count() or 1)
    run.load_start = _loadavg()
    limit = LOADED_PER_CPU * run.cpus
    run.loaded = load1(run.load_start) > limit
    if run.loaded and refuse_loaded:
        run.failures["*"] = f"refused: load average {run.load_start} > {limit:g}"
        run.load_end = run.load_start
        return run
    cells = [(op, n) for op in ops for n in inflight]
    out(f"[bench] {len(cells)} cells x {len(impls)} impls x {rounds} rounds x {seconds:g}s, "
        f"interleaved; client={run.client}; load average {run.load_start}")
    clusters: dict[str, LocalCluster] = {}
    try:
        start_clusters(impls, clusters, run.failures, out)
        if clusters:
            asyncio.run(_interleaved(clusters, cells, rounds, seconds, run, stubs, out))
            for impl, cluster in clusters.items():
                run.peak_rss_mib[impl] = [_peak_rss_mib(cluster.pid(m)) for m in cluster.members]
    finally:
        for cluster in clusters.values():
            cluster.stop()
    run.load_end = _loadavg()
    run.loaded = run.loaded or load1(run.load_end) > limit
    return run


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(run: Run) -> str:
    """The human-readable table of a run: medians over rounds, with the ratio's spread."""
    impls = run.impls
    head = f"{'op':17} {'inflight':>8}"
    for impl in impls:
        head += f" | {impl + ' req/s':>16} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10}"
    if len(impls) == 2:
        head += f" | {impls[0] + '/' + impls[1]:>14} {'spread':>7}"
    flag = (f"  ** LOADED (1-min load above {LOADED_PER_CPU:g} x {run.cpus} CPUs): "
            "absolute figures are skewed; compare ratios **" if run.loaded else "")
    lines = [(f"bench {run.started}  client={run.client}  {run.seconds_per_cell:g}s per cell, "
             f"{run.rounds} interleaved rounds (medians shown)"),
             (f"load average (1/5/15 min) at start {run.load_start}, at end {run.load_end}; "
              f"{run.cpus} CPUs{flag}"),
             ("cpu ms/req: CPU time of all members per request (robust to other load); "
             "spread: (max-min)/median of the per-round ratios"),
             head, "-" * len(head)]
    keys = sorted({(c.op, c.inflight) for c in run.cells}, key=lambda k: (OPS.index(k[0]), k[1]))
    for op, n in keys:
        row = f"{op:17} {n:>8}"
        for impl in impls:
            rps = run.series(impl, op, n)
            if not rps:
                row += f" | {'n/a':>16} {'':>8} {'':>8} {'':>10}"
                continue
            row += (f" | {_med(rps):16.0f} {_med(run.series(impl, op, n, 'p50_ms')):8.2f}"
                    f" {_med(run.series(impl, op, n, 'p99_ms')):8.2f}"
                    f" {_med(run.series(impl, op, n, 'server_cpu_ms_per_req')):10.3f}")
        if len(impls) == 2:
            ratios = run.ratios(op, n)
            row += (f" | {_med(ratios):14.3f} {spread(ratios):7.2f}" if ratios
                    else f" | {'n/a':>14} {'':>7}")
        lines.append(row)
    mem = {impl: max(v) for impl, v in run.peak_rss_mib.items() if v and max(v) > 0}
    if mem:
        parts = [f"{impl} {mib:.0f} MiB" for impl, mib in mem.items()]
        line = "peak RSS of the largest member: " + ", ".join(parts)
        if len(impls) == 2 and all(i in mem for i in impls):
            line += f"  ({impls[0]}/{impls[1]} = {mem[impls[0]] / mem[impls[1]]:.2f})"
        lines.append(line)
    for impl, why in run.failures.items():
        lines.append(f"{impl}: not measured: {why}")
    return "\n".join(lines) + "\n"


def write(run: Run, out_dir: Path) -> tuple[Path, Path]:
    """Write `bench-<started>.txt` (the table) and `.json` (every cell) under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    txt, js = out_dir / f"bench-{run.started}.txt", out_dir / f"bench-{run.started}.json"
    txt.write_text(table(run))
    js.write_text(json.dumps(asdict(run), indent=2) + "\n")
    return txt, js


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impls", default="petcd,etcd-3.5", help="comma-separated; A,B interleaved")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--inflight", default=",".join(map(str, DEFAULT_INFLIGHT)))
    ap.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                    help=f"interleaved rounds per cell (default {DEFAULT_ROUNDS})")
    ap.add_argument("--seconds", type=float, default=5.0, help="time per cell (default 5)")
    ap.add_argument("--refuse-loaded", action="store_true",
                    help=f"exit 3 without measuring when load1 > {LOADED_PER_CPU:g} x CPUs")
    ap.add_argument("--out", default=str(REPO_ROOT / "results"))
    args = ap.parse_args(argv)
    impls = [s.strip() for s in args.impls.split(",") if s.strip()]
    ops = [s.strip() for s in args.ops.split(",") if s.strip()]
    try:
        inflight = [int(x) for x in args.inflight.split(",")]
    except ValueError:
        ap.error("--inflight takes comma-separated integers")
    if args.seconds <= 0 or args.seconds > 600 or not all(0 < n <= 4096 for n in inflight):
        ap.error("--seconds must be in (0, 600] and --inflight values in 1..4096")
    if not 1 <= args.rounds <= 20:
        ap.error("--rounds must be in 1..20")
    if bad := [op for op in ops if op not in OPS]:
        ap.error(f"unknown --ops {bad} (choose from {', '.join(OPS)})")
    run = run_bench(impls, ops, inflight, args.rounds, args.seconds,
                    refuse_loaded=args.refuse_loaded)
    if "*" in run.failures:
        print(f"[bench] {run.failures['*']}", flush=True)
        return 3
    txt, js = write(run, Path(args.out))
    print("\n" + table(run) + f"[bench] wrote {txt} and {js}", flush=True)
    return 1 if len(run.failures) == len(impls) else 0


if __name__ == "__main__":
    sys.exit(main())
