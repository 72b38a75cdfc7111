"""`python -m harness.scale` (`make scale`, `python -m harness scale`): how cost grows with the data.

petcd beside etcd 3.5.1 (`--impls`, the first is the one under study), 3-member local clusters
on loopback started as the bench starts them and both up for the whole run. Every step runs
once per implementation back to back, the order swapped from one step to the next (A B, B A,
...), so both meet the same background load.

- Growth: the store is filled with 1 KiB values up to each checkpoint (10k, 100k, 1M keys by
  default, capped by `--max-keys`). At each: RSS of every member and on-disk size of every
  data dir (right after the fill), then put (overwrites of random keys) and linearizable get
  throughput / p50 / p99 / CPU ms per request at `--inflight`, and the latency of one range
  over `--range-keys` (10k) keys. Filling stops at the `--budget-minutes` budget (time is kept
  for the steps below): the run says where and why.
- A new member catching up: once the store has `--snapshot-keys` keys (or at the end), a fourth
  member is added and timed until it serves the cluster's revision, then removed. The
  clusters run with `--snapshot-count` (default 10000, lower than etcd's 100000) so the
  leader's log is compacted and the member is sent a snapshot (the table says whether it was).
- Watch fan-out: 1, 100, 1000 watchers on one key, events per second delivered.
- Lease keep-alive throughput with 10k leases (granted first; their grant rate is shown too).

The 1-minute load average is read at the start and end of every step; a step (and the run)
whose load average exceeds `bench.LOADED_PER_CPU` x CPUs at either end is flagged LOADED.
Output in `results/scale/<YYYYmmdd-HHMMSS>/`: scale.md (the tables, with notes where the first
implementation's curve bends and the second's does not), scale.json (everything) and PNG plots.
The client is one Python process (grpc.aio): its ceiling is shared by both implementations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

from harness import bench, scale_ops
from harness.cluster import ClusterError
from harness.impls import REPO_ROOT
from harness.local import LocalCluster
from harness.scale_ops import CatchUp, Conn, LeaseResult, WatchResult

DEFAULT_CHECKPOINTS = (10_000, 100_000, 1_000_000)
DEFAULT_WATCHERS = (1, 100, 1000)
CATCHUP_ERRORS: tuple[type[BaseException], ...] = (
    scale_ops.ScaleError, ClusterError, OSError, *scale_ops.RPC_ERRORS)


@dataclass
class Options:
    impls: list[str] = field(default_factory=lambda: ["petcd", "etcd-3.5"])
    max_keys: int = 1_000_000
    checkpoints: list[int] = field(default_factory=list)
    budget_minutes: float = 30.0
    seconds: float = 5.0
    inflight: int = 64
    range_keys: int = 10_000
    watchers: list[int] = field(default_factory=lambda: list(DEFAULT_WATCHERS))
    watch_events: int = 200_000
    leases: int = 10_000
    snapshot_keys: int = 100_000
    snapshot_count: int = 10_000
    seed: int = 1

    def plan(self) -> list[int]:
        """The checkpoints to grow through, ascending, the last one `max_keys`."""
        cps = self.checkpoints or [c for c in DEFAULT_CHECKPOINTS if c < self.max_keys]
        return sorted({c for c in cps if 0 < c <= self.max_keys} | {self.max_keys})


@dataclass
class Point:
    """One implementation at one checkpoint."""

    impl: str
    target_keys: int
    keys: int = 0
    fill_seconds: float = 0.0
    fill_keys_per_s: float = 0.0
    rss_mib: list[float] = field(default_factory=list)
    disk_mib: list[float] = field(default_factory=list)
    put: bench.Timing = field(default_factory=bench.Timing)
    get: bench.Timing = field(default_factory=bench.Timing)
    range_keys: int = 0
    range: bench.Timing = field(default_factory=bench.Timing)
    load_start: str = ""
    load_end: str = ""


@dataclass
class ScaleRun:
    started: str
    options: Options
    cpus: int
    client: str = "grpc.aio+petcd stubs"
    load_start: str = ""
    load_end: str = ""
    loaded: bool = False
    points: list[Point] = field(default_factory=list)
    watch: list[WatchResult] = field(default_factory=list)
    lease: list[LeaseResult] = field(default_factory=list)
    catchup: list[CatchUp] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    stopped: str = ""
    """Why growing stopped before `max_keys` (empty when every checkpoint was reached)."""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def impls(self) -> list[str]:
        return [i for i in self.options.impls if i not in self.failures]

    def is_loaded(self, *loads: str) -> bool:
        return any(bench.load1(x) > bench.LOADED_PER_CPU * self.cpus for x in loads)


class _Step:
    """The load average around one step (`start`, `end`); flags the run if it was loaded."""

    def __init__(self, run: ScaleRun) -> None:
        self.run, self.start, self.end = run, "", ""

    def __enter__(self) -> Self:
        self.start = bench._loadavg()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = bench._loadavg()
        if self.run.is_loaded(self.start, self.end):
            self.run.loaded = True

    def stamp(self, rec: Any) -> None:
        """Copy the loads onto a result record (its load_start / load_end)."""
        rec.load_start, rec.load_end = self.start, self.end


class Scaler:
    """Runs the steps over the clusters (module docstring)."""

    def __init__(self, run: ScaleRun, clusters: dict[str, LocalCluster], stubs: tuple[Any, Any],
                 say: Callable[[str], None], deadline: float) -> None:
        self.run, self.opts, self.clusters, self.stubs, self.say = run, run.options, clusters, stubs, say
        self.deadline = deadline
        self.conns = {i: [Conn(u, stubs) for u in c.endpoints] for i, c in clusters.items()}
        self.keys = dict.fromkeys(clusters, 0)
        self.fill_rate = dict.fromkeys(clusters, 300.0)  # keys/s; a guess until measured
        self.rng = random.Random(run.options.seed)
        self.turn = 0

    def order(self) -> list[str]:
        """The implementations in this step's order: A B, then B A, then A B ..."""
        self.turn += 1
        names = list(self.clusters)
        return names if self.turn % 2 else names[::-1]

    async def close(self) -> None:
        for cs in self.conns.values():
            for c in cs:
                await c.close()

    def reserve(self, catch_up: bool = True) -> float:
        """A rough time the steps after growing need (seconds), to keep from the budget."""
        o, n = self.opts, len(self.clusters)
        watch = len(o.watchers) * n * (2 * o.seconds + 5)
        lease = sum(o.leases / max(r, 50.0) + o.seconds + 5 for r in self.fill_rate.values())
        catch = 0.0 if self.run.catchup or not catch_up else n * (max(self.keys.values()) / 2000 + 15)
        return watch + lease + catch

    def catch_up_timeout(self) -> float:
        """What a member may take to catch up: the budget left after the later steps (at
        least a minute, at most ten)."""
        left = self.deadline - time.monotonic() - self.reserve(catch_up=False)
        return min(600.0, max(60.0, left / len(self.clusters)))

    def cells_time(self) -> float:
        return len(self.clusters) * (2 * self.opts.seconds + 10)

    async def grow(self) -> None:
        plan = self.opts.plan()
        for n, cp in enumerate(plan):
            need = sum((cp - self.keys[i]) / self.fill_rate[i] for i in self.clusters)
            left = self.deadline - time.monotonic() - self.reserve()
            if n and need + self.cells_time() > left:
                self.run.stopped = (f"stopped growing at {max(self.keys.values())} keys: the next "
                                    f"checkpoint ({cp} keys) needs ~{need:.0f}s of filling, "
                                    f"{max(left, 0):.0f}s of the budget left")
                self.say(f"[scale] {self.run.stopped}")
                return
            self.say(f"[scale] checkpoint {cp} keys ({n + 1}/{len(plan)}); "
                     f"load average {bench._loadavg()}")
            points = {i: Point(i, cp) for i in self.clusters}
            for impl in self.order():
                await self.fill_to(points[impl], cp)
            for impl in self.order():
                await self.cells(points[impl], "put")
            for impl in self.order():
                await self.cells(points[impl], "get")
            for impl in self.order():
                await self.cells(points[impl], "range")
            self.run.points.extend(points.values())
            if any(p.keys < cp for p in points.values()):
                self.run.stopped = (f"stopped growing at {max(self.keys.values())} keys: the "
                                    f"budget ran out while filling to {cp}")
                self.say(f"[scale] {self.run.stopped}")
                return
            if not self.run.catchup and cp >= self.opts.snapshot_keys:
                await self.catch_up()

    async def fill_to(self, point: Point, target: int) -> None:
        impl = point.impl
        with _Step(self.run) as step:
            t0 = time.monotonic()
            start = self.keys[impl]
            hard = self.deadline - self.reserve() / 2
            self.keys[impl] = await scale_ops.fill(self.conns[impl], start, target,
                                                   self.opts.inflight, hard, self.say, impl)
            point.keys = self.keys[impl]
            point.fill_seconds = time.monotonic() - t0
            if point.keys > start and point.fill_seconds > 0:
                point.fill_keys_per_s = (point.keys - start) / point.fill_seconds
                self.fill_rate[impl] = point.fill_keys_per_s
            cluster = self.clusters[impl]
            point.rss_mib = scale_ops.members_rss(cluster)
            point.disk_mib = scale_ops.members_disk(cluster)
        step.stamp(point)
        self.say(f"[scale]   {impl:9} {point.keys:>8} keys, filled at {point.fill_keys_per_s:6.0f}"
                 f" keys/s; RSS {max(point.rss_mib):6.0f} MiB, disk {max(point.disk_mib):6.0f}"
                 f" MiB (largest member)")

    async def cells(self, point: Point, what: str) -> None:
        impl, conns = point.impl, self.conns[point.impl]
        pids = scale_ops.pids(self.clusters[impl])
        load0 = bench._loadavg()
        if what == "put":
            point.put = t = await scale_ops.put_cell(conns, point.keys, self.opts.inflight,
                                                     self.opts.seconds, pids, self.rng)
        elif what == "get":
            point.get = t = await scale_ops.get_cell(conns, point.keys, self.opts.inflight,
                                                     self.opts.seconds, pids, self.rng)
        else:
            point.range_keys = min(self.opts.range_keys, point.keys)
            point.range = t = await scale_ops.range_cell(conns, point.range_keys,
                                                         self.opts.seconds, pids)
        point.load_end = bench._loadavg()
        if self.run.is_loaded(load0, point.load_end):
            self.run.loaded = True
        err = f" errors={t.errors} ({t.first_error})" if t.errors else ""
        label = f"range/{point.range_keys}" if what == "range" else what
        self.say(f"[scale]   {impl:9} {point.keys:>8} keys {label:11} {t.rps:8.1f} req/s "
                 f"p50={t.p50_ms:8.2f}ms p99={t.p99_ms:8.2f}ms "
                 f"cpu={t.server_cpu_ms_per_req:6.2f}ms/req{err}")

    async def catch_up(self) -> None:
        for impl in self.order():
            keys = self.keys[impl]
            self.say(f"[scale] {impl}: a new member catching up on {keys} keys ...")
            rec = CatchUp(impl, keys)
            with _Step(self.run) as step:
                try:
                    rec = await scale_ops.catch_up(self.clusters[impl], self.conns[impl],
                                                   self.stubs, keys, timeout=self.catch_up_timeout())
                except CATCHUP_ERRORS as exc:
                    rec.error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            step.stamp(rec)
            self.run.catchup.append(rec)
            how = "via a snapshot" if rec.via_snapshot else "from the log (no snapshot)"
            self.say(f"[scale]   {impl:9} caught up on {rec.keys} keys (revision {rec.revision}) "
                     f"in {rec.seconds:.1f}s {how}" if not rec.error else
                     f"[scale]   {impl:9} catch-up failed: {rec.error}")

    async def watch(self) -> None:
        for w in self.opts.watchers:
            for impl in self.order():
                with _Step(self.run) as step:
                    rec = await scale_ops.watch_fanout(self.conns[impl], impl, w,
                                                       self.opts.seconds, self.opts.watch_events,
                                                       drain_s=max(30.0, 4 * self.opts.seconds))
                step.stamp(rec)
                self.run.watch.append(rec)
                self.say(f"[scale]   {impl:9} watchers={w:<5} {rec.events_per_s:9.0f} events/s "
                         f"({rec.delivered}/{rec.expected} delivered in {rec.seconds:.1f}s, "
                         f"client {rec.client_cpu_share:.2f} core)")

    async def lease(self) -> None:
        for impl in self.order():
            self.say(f"[scale] {impl}: granting {self.opts.leases} leases, then keep-alives ...")
            with _Step(self.run) as step:
                rec = await scale_ops.lease_keepalive(self.conns[impl], impl, self.opts.leases,
                                                      self.opts.seconds,
                                                      scale_ops.pids(self.clusters[impl]))
            step.stamp(rec)
            self.run.lease.append(rec)
            self.say(f"[scale]   {impl:9} {rec.leases} leases granted at {rec.grant.rps:.0f}/s; "
                     f"{rec.rps:.0f} keep-alives/s p99={rec.p99_ms:.2f}ms errors={rec.errors}")


async def _steps(run: ScaleRun, clusters: dict[str, LocalCluster], stubs: tuple[Any, Any],
                 say: Callable[[str], None], deadline: float) -> None:
    scaler = Scaler(run, clusters, stubs, say, deadline)  # grpc.aio channels: inside the loop
    try:
        await scaler.grow()
        if not scaler.run.catchup:
            await scaler.catch_up()
        scaler.say("[scale] watch fan-out")
        await scaler.watch()
        scaler.say("[scale] lease keep-alive")
        await scaler.lease()
    finally:
        await scaler.close()


def run_scale(opts: Options, say: Callable[[str], None] | None = None) -> ScaleRun:
    """Run every step (module docstring) and return the `ScaleRun`; writes no files."""
    from harness import scale_report

    out = say or (lambda msg: print(msg, flush=True))
    t0 = time.monotonic()
    run = ScaleRun(time.strftime("%Y%m%d-%H%M%S"), opts, os.cpu_count() or 1)
    run.load_start = bench._loadavg()
    run.loaded = run.is_loaded(run.load_start)
    stubs = bench._load_stubs()
    if stubs is None:
        run.failures["*"] = "petcd's generated stubs are not importable (run scripts/setup.sh)"
        return run
    out(f"[scale] {', '.join(opts.impls)}: up to {opts.max_keys} keys (checkpoints "
        f"{opts.plan()}), budget {opts.budget_minutes:g} min; load average {run.load_start}"
        f" on {run.cpus} CPUs" + (" (LOADED)" if run.loaded else ""))
    clusters: dict[str, LocalCluster] = {}
    try:
        bench.start_clusters(opts.impls, clusters, run.failures, out,
                             extra_args=(f"--snapshot-count={opts.snapshot_count}",), tag="scale")
        if clusters:
            asyncio.run(_steps(run, clusters, stubs, out, t0 + opts.budget_minutes * 60))
    finally:
        for cluster in clusters.values():
            cluster.stop()
    run.load_end = bench._loadavg()
    run.loaded = run.loaded or run.is_loaded(run.load_end)
    run.seconds = time.monotonic() - t0
    run.notes = scale_report.bend_notes(run)
    return run


def write(run: ScaleRun, out_root: Path) -> Path:
    """Write scale.md, scale.json and the plots under `out_root/<started>/`; returns that dir."""
    from harness import scale_plots, scale_report

    out = out_root / run.started
    out.mkdir(parents=True, exist_ok=True)
    data = asdict(run)
    data["impls"] = run.impls
    (out / "scale.json").write_text(json.dumps(data, indent=2) + "\n")
    pngs = scale_plots.plot(run, out)
    (out / "scale.md").write_text(scale_report.markdown(run, [p.name for p in pngs]))
    return out


def load(path: Path) -> ScaleRun:
    """A run back from its scale.json (e.g. to render it again with newer report code)."""
    data = json.loads(path.read_text())

    def timing(d: dict[str, Any]) -> bench.Timing:
        return bench.Timing(**d)

    def point(d: dict[str, Any]) -> Point:
        d = dict(d)
        for cell in ("put", "get", "range"):
            d[cell] = timing(d[cell])
        return Point(**d)

    def lease(d: dict[str, Any]) -> LeaseResult:
        return LeaseResult(**{**d, "grant": timing(d["grant"])})

    fields = {k: v for k, v in data.items() if k not in ("impls",)}
    run = ScaleRun(**{**fields, "options": Options(**data["options"]),
                      "points": [point(d) for d in data["points"]],
                      "watch": [WatchResult(**d) for d in data["watch"]],
                      "lease": [lease(d) for d in data["lease"]],
                      "catchup": [CatchUp(**d) for d in data["catchup"]]})
    return run


def render(out: Path) -> Path:
    """Rewrite scale.md (notes recomputed) and the plots of the run saved in `out`."""
    from harness import scale_plots, scale_report

    run = load(out / "scale.json")
    run.notes = scale_report.bend_notes(run)
    pngs = scale_plots.plot(run, out)
    (out / "scale.md").write_text(scale_report.markdown(run, [p.name for p in pngs]))
    return out


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.scale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Options()
    ap.add_argument("--impls", default=",".join(d.impls), help="comma-separated; interleaved")
    ap.add_argument("--max-keys", type=int, default=d.max_keys)
    ap.add_argument("--checkpoints", default="",
                    help="comma-separated key counts (default 10000,100000,1000000 below "
                         "--max-keys, then --max-keys)")
    ap.add_argument("--budget-minutes", type=float, default=d.budget_minutes)
    ap.add_argument("--seconds", type=float, default=d.seconds, help="time per timed cell")
    ap.add_argument("--inflight", type=int, default=d.inflight)
    ap.add_argument("--range-keys", type=int, default=d.range_keys)
    ap.add_argument("--watchers", default=",".join(map(str, d.watchers)))
    ap.add_argument("--watch-events", type=int, default=d.watch_events,
                    help="events due per watch cell at most (puts x watchers)")
    ap.add_argument("--leases", type=int, default=d.leases)
    ap.add_argument("--snapshot-keys", type=int, default=d.snapshot_keys,
                    help="catch a new member up once the store has this many keys")
    ap.add_argument("--snapshot-count", type=int, default=d.snapshot_count,
                    help="every member's --snapshot-count")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--out", default=str(REPO_ROOT / "results" / "scale"))
    ap.add_argument("--render", metavar="DIR",
                    help="measure nothing: rewrite DIR/scale.md and plots from DIR/scale.json")
    args = ap.parse_args(argv)
    if args.render:
        out = render(Path(args.render))
        print((out / "scale.md").read_text() + f"\n[scale] rewrote {out}", flush=True)
        return 0
    try:
        opts = Options(impls=[s.strip() for s in args.impls.split(",") if s.strip()],
                       max_keys=args.max_keys, checkpoints=_ints(args.checkpoints),
                       budget_minutes=args.budget_minutes, seconds=args.seconds,
                       inflight=args.inflight, range_keys=args.range_keys,
                       watchers=_ints(args.watchers), watch_events=args.watch_events,
                       leases=args.leases, snapshot_keys=args.snapshot_keys,
                       snapshot_count=args.snapshot_count, seed=args.seed)
    except ValueError:
        ap.error("--checkpoints and --watchers take comma-separated integers")
    positive: Sequence[tuple[str, float]] = [
        ("--max-keys", opts.max_keys), ("--budget-minutes", opts.budget_minutes),
        ("--seconds", opts.seconds), ("--inflight", opts.inflight),
        ("--range-keys", opts.range_keys), ("--watch-events", opts.watch_events),
        ("--leases", opts.leases), ("--snapshot-count", opts.snapshot_count),
        *[("--watchers", float(w)) for w in opts.watchers]]
    if bad := [name for name, v in positive if v <= 0]:
        ap.error(f"{', '.join(sorted(set(bad)))} must be positive")
    if not opts.impls:
        ap.error("--impls is empty")
    run = run_scale(opts)
    if "*" in run.failures:
        print(f"[scale] {run.failures['*']}", flush=True)
        return 1
    out = write(run, Path(args.out))
    print("\n" + (out / "scale.md").read_text() + f"\n[scale] wrote {out}", flush=True)
    return 1 if not run.impls else 0


if __name__ == "__main__":
    sys.exit(main())
