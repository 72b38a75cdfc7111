"""`python -m harness.bench`: throughput/latency of petcd vs etcd 3.5.1 on the same topology.

For each implementation (default: petcd, then etcd-3.5) a fresh 3-member local cluster is
started on loopback, then each cell (operation x in-flight requests) runs for a bounded time:
put, linearizable get, serializable get at 1, 16, 64 and 256 requests in flight. Clients spread
over the three members. Results go to stdout and `results/bench-<timestamp>.{txt,json}`.

The client is grpc.aio with petcd's generated stubs when importable, else aetcd. Note that the
Python client itself can saturate before the server does at high concurrency; both targets
share that ceiling, so ratios stay meaningful as a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from harness.cluster import ClusterError
from harness.impls import REPO_ROOT
from harness.local import LocalCluster

OPS = ("put", "get-linearizable", "get-serializable")
DEFAULT_INFLIGHT = (1, 16, 64, 256)
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
    impl: str
    op: str
    inflight: int
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
    cells: list[Cell] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    peak_rss_mib: dict[str, list[float]] = field(default_factory=dict)
    """Per implementation, each member's peak resident memory over the whole run (VmHWM)."""
    load_start: str = ""
    load_end: str = ""
    """System load averages around the run: other work on the box skews req/s."""


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


async def _run_cell(clients: list[KVClient], cell: Cell, seconds: float,
                    pids: list[int | None]) -> None:
    cpu0 = [_cpu_seconds(p) for p in pids]
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    counter = 0

    def op_for(c: KVClient) -> Callable[[bytes], Awaitable[None]]:
        if cell.op == "put":
            return lambda k: c.put(k, VALUE)
        ser = cell.op == "get-serializable"
        return lambda k: c.get(k, ser)

    async def worker(i: int) -> None:
        nonlocal counter
        fn = op_for(clients[i % len(clients)])
        while time.monotonic() < deadline and counter < MAX_REQUESTS_PER_CELL:
            counter += 1
            key = b"bench/k%d" % (counter % KEYSPACE)
            t0 = time.perf_counter()
            try:
                await fn(key)
            except _RPC_ERRORS as exc:  # any RPC failure counts; the first is reported
                cell.errors += 1
                if not cell.first_error:
                    cell.first_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(cell.inflight)))
    cell.seconds = time.monotonic() - start
    cpu = [_cpu_seconds(p) - c0 for p, c0 in zip(pids, cpu0, strict=True)]
    latencies.sort()
    cell.requests = len(latencies)
    cell.rps = cell.requests / cell.seconds if cell.seconds else 0.0
    cell.p50_ms = _pct(latencies, 0.50) * 1000
    cell.p99_ms = _pct(latencies, 0.99) * 1000
    if cell.requests:
        cell.server_cpu_ms_per_req = sum(cpu) * 1000 / cell.requests
    if cpu and cell.seconds:
        cell.leader_cpu_share = max(cpu) / cell.seconds


async def _bench_cluster(urls: list[str], impl: str, inflight: list[int], seconds: float,
                         run: Run, stubs: tuple[Any, Any] | None,
                         pids: list[int | None]) -> None:
    clients: list[KVClient] = [GrpcClient(u, stubs) if stubs else AetcdClient(u) for u in urls]
    try:
        # Seed the keyspace so gets hit real keys.
        for i in range(KEYSPACE):
            await clients[0].put(b"bench/k%d" % i, VALUE)
        for op in OPS:
            for n in inflight:
                cell = Cell(impl, op, n)
                await _run_cell(clients, cell, seconds, pids)
                run.cells.append(cell)
                err = f" errors={cell.errors} ({cell.first_error})" if cell.errors else ""
                print(f"  {impl:9} {op:17} inflight={n:<4} {cell.rps:9.0f} req/s "
                      f"p50={cell.p50_ms:7.2f}ms p99={cell.p99_ms:7.2f}ms "
                      f"cpu={cell.server_cpu_ms_per_req:5.2f}ms/req "
                      f"busiest={cell.leader_cpu_share:4.2f}core{err}", flush=True)
    finally:
        for c in clients:
            await c.close()


def _table(run: Run, impls: list[str]) -> str:
    by = {(c.impl, c.op, c.inflight): c for c in run.cells}
    head = f"{'op':17} {'inflight':>8}"
    for impl in impls:
        head += f" | {impl + ' req/s':>16} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10}"
    if len(impls) == 2:
        head += f" | {impls[0] + '/' + impls[1]:>14}"
    lines = [f"bench {run.started}  client={run.client}  {run.seconds_per_cell:g}s per cell",
             (f"load average (1/5/15 min) at start {run.load_start}, at end {run.load_end}; "
              f"{os.cpu_count()} CPUs"),
             "cpu ms/req: CPU time of all members per request (robust to other load)",
             head, "-" * len(head)]
    keys = sorted({(c.op, c.inflight) for c in run.cells}, key=lambda k: (OPS.index(k[0]), k[1]))
    for op, n in keys:
        row = f"{op:17} {n:>8}"
        rates: list[float | None] = []
        for impl in impls:
            c = by.get((impl, op, n))
            if c is None:
                row += f" | {'n/a':>16} {'':>8} {'':>8} {'':>10}"
                rates.append(None)
            else:
                row += (f" | {c.rps:16.0f} {c.p50_ms:8.2f} {c.p99_ms:8.2f}"
                        f" {c.server_cpu_ms_per_req:10.3f}")
                rates.append(c.rps)
        if len(impls) == 2:
            a, b = rates
            row += f" | {a / b:14.3f}" if a is not None and b else f" | {'n/a':>14}"
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impls", default="petcd,etcd-3.5", help="comma-separated, in run order")
    ap.add_argument("--inflight", default=",".join(map(str, DEFAULT_INFLIGHT)))
    ap.add_argument("--seconds", type=float, default=5.0, help="time per cell (default 5)")
    ap.add_argument("--out", default=str(REPO_ROOT / "results"))
    args = ap.parse_args(argv)
    impls = [s.strip() for s in args.impls.split(",") if s.strip()]
    inflight = [int(x) for x in args.inflight.split(",")]
    if args.seconds <= 0 or args.seconds > 600 or not all(0 < n <= 4096 for n in inflight):
        ap.error("--seconds must be in (0, 600] and --inflight values in 1..4096")
    stubs = _load_stubs()
    global _RPC_ERRORS
    _RPC_ERRORS = _rpc_error_types(with_aetcd=stubs is None)
    run = Run(time.strftime("%Y%m%d-%H%M%S"), "grpc.aio+petcd stubs" if stubs else "aetcd",
              args.seconds)
    run.load_start = _loadavg()
    total = len(impls) * len(OPS) * len(inflight)
    print(f"[bench] {total} cells x {args.seconds:g}s, client={run.client}", flush=True)
    for impl in impls:
        cluster = LocalCluster(impl, size=3)
        print(f"[bench] starting 3-member {impl} cluster", flush=True)
        try:
            cluster.start()
            cluster.wait_healthy(timeout=60)
            pids = [cluster.pid(m) for m in cluster.members]
            asyncio.run(
                _bench_cluster(cluster.endpoints, impl, inflight, args.seconds, run, stubs, pids)
            )
            run.peak_rss_mib[impl] = [_peak_rss_mib(cluster.pid(m)) for m in cluster.members]
        except (ClusterError, OSError) as exc:
            why = str(exc).splitlines()[0]
            run.failures[impl] = why
            print(f"[bench] {impl} failed: {why}", flush=True)
        finally:
            cluster.stop()
    run.load_end = _loadavg()
    text = _table(run, impls)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    txt, js = out / f"bench-{run.started}.txt", out / f"bench-{run.started}.json"
    txt.write_text(text)
    js.write_text(json.dumps(asdict(run), indent=2) + "\n")
    print("\n" + text + f"[bench] wrote {txt} and {js}", flush=True)
    return 1 if len(run.failures) == len(impls) else 0


if __name__ == "__main__":
    sys.exit(main())
