"""One Jepsen-style run: start a cluster, drive a workload under nemeses, heal, check, report.

Contract:

* the run's artefacts go to ``results/<run id>/``: ``history.jsonl`` (written as it happens),
  ``nemesis.json`` (fault windows), ``verdict.json``, ``summary.txt`` (the one summary line),
  ``logs/`` (member logs), ``throughput.png`` and ``latency.png``, for a violation the HTML
  timeline (``history.jsonl.html``) and ``violation-history.jsonl``; then the run's page
  ``index.html`` and the results directory's matrix ``index.html`` (:mod:`jepsen_style.pages`);
* ``concurrency`` slots run on one asyncio loop; slot ``w`` is bound to member ``w mod n`` and
  has one request in flight; an ``info`` completion retires its process (new id, new channel);
* every loop is bounded: no operation starts after the time limit, each request carries a
  deadline (and an outer asyncio timeout), the nemesis schedule stops before the end and the
  final heal always runs; the cluster is always stopped;
* the verdict: ``valid`` True / False (violation) / None (unknown, or the run broke).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cluster import Cluster, ClusterError, Member
from harness.impls import REPO_ROOT, slug
from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Generator, GeneratorOptions, Slot
from jepsen_style.linknemeses import check_members
from jepsen_style.nemesis import Nemesis, Schedule, make_nemeses
from jepsen_style.recorder import Recorder
from jepsen_style.workloads import Context, Verdict, Workload, WorkloadOptions, get_workload

RECONNECT_PAUSE = 0.1


@dataclass
class RunOptions:
    target: str = "petcd"
    backend: str = "local"
    bootstrap: str = "static"
    """How the Docker members find each other: static | discovery | dns (local: static)."""
    members: int = 3
    workload: str = "register"
    nemeses: tuple[str, ...] = ()
    time_limit: float = 60.0
    seed: int = 0
    concurrency: int = 30
    rate: float = 0.0
    keys_active: int = 3
    ops_per_key: int = 200
    request_timeout: float = 2.0
    serializable_reads: bool = False
    isolated_reads: bool = False
    quiet_start: float = 10.0
    fault_seconds: float = 6.0
    quiet_seconds: float = 6.0
    final_quiet: float = 8.0
    latency_ms: float = 100.0
    latency_jitter: float = 50.0
    check_timeout: float = 120.0
    results_dir: Path = REPO_ROOT / "results"
    run_id: str = ""
    progress: bool = True


@dataclass(slots=True)
class Sample:
    """One completed operation, for the plots: completion time (s since start), latency, type."""

    t: float
    latency: float
    type: str
    f: str


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    valid: bool | None
    summary: str
    verdict: dict[str, Any] = field(default_factory=dict)


def schedule_defaults(backend: str, time_limit: float) -> tuple[float, float, float, float]:
    """(quiet_start, fault_seconds, quiet_seconds, final_quiet) when none is given. Docker runs
    shorter than a minute get a tighter schedule, so a 30 s run still has two fault windows
    (one of each of two nemeses); everything else keeps RunOptions' defaults."""
    if backend == "docker" and time_limit < 60.0:
        return (5.0, 5.0, 4.0, 6.0)
    d = RunOptions()
    return (d.quiet_start, d.fault_seconds, d.quiet_seconds, d.final_quiet)


def make_cluster(opts: RunOptions, root: Path) -> Cluster:
    """A cluster of ``opts.members`` members of the target on the chosen backend (not
    started). The Docker backend has 3 (or 5) members booted by ``opts.bootstrap``, with the
    Toxiproxy overlay on every link (compose/README.md)."""
    if opts.backend == "local":
        from harness.localnet import ProxiedLocalCluster

        if opts.bootstrap != "static":
            raise ValueError(f"the local backend boots static clusters only, not "
                             f"{opts.bootstrap!r}: use --backend docker")
        return ProxiedLocalCluster(opts.target, root=root, size=opts.members)
    if opts.backend == "docker":
        from harness.docker_backend import DockerCluster

        check_members(opts.backend, opts.bootstrap, opts.members)
        return DockerCluster(opts.target, size=opts.members, proxied=True,
                             bootstrap=opts.bootstrap)
    raise ValueError(f"unknown backend {opts.backend!r} (local or docker)")


class Run:
    """State of one run (see the module docstring)."""

    def __init__(self, opts: RunOptions, log: Callable[[str], None]) -> None:
        self.opts = opts
        self.log = log
        where = f"-{opts.bootstrap}" if opts.backend == "docker" else ""
        self.run_id = opts.run_id or time.strftime("%Y%m%dT%H%M%S") + (
            f"-{slug(opts.target)}{where}-{opts.workload}-s{opts.seed}")
        self.run_dir = opts.results_dir / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        wopts = WorkloadOptions(prefix=f"/jepsen/{self.run_id}",
                                serializable_reads=opts.serializable_reads,
                                isolated_reads=opts.isolated_reads,
                                check_timeout=opts.check_timeout)
        self.workload: Workload = get_workload(opts.workload, wopts)
        self.gen = Generator(GeneratorOptions(
            seed=opts.seed, concurrency=opts.concurrency, rate=opts.rate,
            time_limit=opts.time_limit, keys_active=opts.keys_active,
            ops_per_key=opts.ops_per_key))
        self.recorder = Recorder(self.run_dir / "history.jsonl", opts.concurrency)
        self.samples: list[Sample] = []
        self.schedule: Schedule | None = None
        self.nemeses: list[Nemesis] = []
        self.errors: list[str] = []
        self._t0 = time.monotonic()
        self._t0_ns = time.monotonic_ns()

    # ---- the load ------------------------------------------------------------------------------

    async def _slot(self, slot: Slot, cluster: Cluster) -> None:
        members = cluster.members
        member = members[slot.index % len(members)]
        process: int = slot.index
        url = self._client_url(cluster, member)
        client = EtcdClient(url, self.opts.request_timeout)
        hard = max(self.opts.request_timeout, self.workload.op_deadline) + 5.0
        try:
            while await self.gen.pace(slot):
                isolated = self.schedule.isolated if self.schedule else frozenset()
                ctx = Context(member.name, isolated, self.gen.key_index(slot))
                op = self.workload.next_op(slot, ctx)
                if op is None:
                    continue
                ev = self.recorder.invoke(process, op.f, op.key, op.value)
                try:
                    typ, value = await asyncio.wait_for(
                        self.workload.apply(client, op, slot), hard)
                except ClientError as err:
                    typ, value = self.workload.on_error(op, err), op.value
                except TimeoutError:
                    typ, value = "info", op.value
                done = self.recorder.complete(process, typ, value)
                self.samples.append(Sample((done.time - self._t0_ns) / 1e9,
                                           (done.time - ev.time) / 1e9, typ, op.f))
                if typ == "info":
                    # A reconnect pause: an unreachable member must not turn the slot into a
                    # hot loop of instantly failing requests and fresh processes.
                    await asyncio.sleep(RECONNECT_PAUSE)
                    await client.close()
                    process = self.recorder.retire(process)
                    client = EtcdClient(url, self.opts.request_timeout)
        finally:
            await client.close()

    def _client_url(self, cluster: Cluster, member: Member) -> str:
        """Where the load reaches `member`: through its client proxy when a nemesis slows the
        client links, else directly (a partition cuts peer links, never the clients')."""
        from jepsen_style.linknemeses import THROUGH_CLIENT_PROXIES

        proxied = getattr(cluster, "proxied_client_url", None)
        if proxied is not None and any(n in THROUGH_CLIENT_PROXIES for n in self.opts.nemeses):
            url: str = proxied(member)
            return url
        return member.client_url

    async def _progress(self) -> None:
        last = 0
        while True:
            await asyncio.sleep(2.0)
            n = len(self.samples)
            ok = sum(1 for s in self.samples[last:] if s.type == "ok")
            info = sum(1 for s in self.samples[last:] if s.type == "info")
            el = time.monotonic() - self.gen.start
            faults = ""
            if self.schedule and self.schedule.faults and self.schedule.faults[-1].end is None:
                faults = f" fault: {self.schedule.faults[-1].detail}"
            self.log(f"[{el:5.1f}/{self.opts.time_limit:g}s] ops {n} "
                     f"ok/s {ok / 2.0:.0f} info {info}{faults}")
            last = n

    async def _drive(self, cluster: Cluster) -> None:
        setup_clients = [EtcdClient(m.client_url, 5.0) for m in cluster.members]
        try:
            await self.workload.setup(setup_clients)
        finally:
            for c in setup_clients:
                await c.close()
        self.schedule = Schedule(
            cluster, self.nemeses, seed=self.opts.seed,
            quiet_start=self.opts.quiet_start, fault_seconds=self.opts.fault_seconds,
            quiet_seconds=self.opts.quiet_seconds, final_quiet=self.opts.final_quiet,
            log=self.log, targets=self.workload.nemesis_targets)
        self.gen.begin()
        self._t0 = self.gen.start
        self._t0_ns = time.monotonic_ns() - int((time.monotonic() - self._t0) * 1e9)
        progress = asyncio.create_task(self._progress()) if self.opts.progress else None
        nemesis = asyncio.create_task(self.schedule.run(self.gen.start, self.gen.deadline))
        try:
            await asyncio.gather(*(self._slot(s, cluster) for s in self.gen.slots))
        finally:
            if progress is not None:
                progress.cancel()
            try:
                await nemesis
            except ClusterError as exc:
                self.errors.append(str(exc))
        tear = [EtcdClient(m.client_url, 5.0) for m in cluster.members]
        try:
            await self.workload.teardown(tear)
        finally:
            for c in tear:
                await c.close()

    # ---- the whole run -------------------------------------------------------------------------

    def execute(self) -> RunResult:
        tmp = Path(tempfile.mkdtemp(prefix=f"jepsen-{slug(self.opts.target)}-"))
        cluster: Cluster | None = None
        recovered: bool | None = None
        try:
            from jepsen_style.linknemeses import check_supported

            check_supported(self.opts.nemeses, self.opts.backend)
            cluster = make_cluster(self.opts, tmp)
            self.nemeses = make_nemeses(self.opts.nemeses, self.opts.latency_ms,
                                        self.opts.latency_jitter)
            for nem in self.nemeses:  # before any load: a nemesis that cannot run refuses here
                prep = getattr(nem, "prepare", None)
                if prep is not None:
                    prep(cluster)
            self.log(f"run {self.run_id}: starting {self.opts.members}-member {self.opts.target} "
                     f"({self.opts.backend})")
            cluster.start()
            cluster.wait_healthy(60.0)
            learn = getattr(cluster, "learn_ids", None)
            if learn is not None:
                learn()
            asyncio.run(self._drive(cluster))
            try:
                cluster.wait_healthy(30.0)
                recovered = True
            except ClusterError as exc:
                recovered = False
                self.errors.append(f"not healthy after the final heal: {exc}")
        except Exception as exc:  # noqa: BLE001 -- the run broke: verdict unknown, reported
            self.errors.append(f"{type(exc).__name__}: {exc}")
            traceback.print_exc(file=sys.stderr)
        finally:
            self.recorder.close()
            if cluster is not None:
                self._save_container_logs(cluster)
                try:
                    cluster.stop()
                except Exception as exc:  # noqa: BLE001
                    self.errors.append(f"stop: {exc}")
                for nem in self.nemeses:
                    rel = getattr(nem, "release", None)
                    if rel is not None:
                        rel(cluster)
            self._copy_logs(tmp)
            shutil.rmtree(tmp, ignore_errors=True)
        return self._finish(recovered)

    def _save_container_logs(self, cluster: Cluster) -> None:
        """Docker members' logs (and the proxy's) into ``logs/``, before the containers go."""
        aux = getattr(cluster, "_aux_services", None)
        logs_of = getattr(cluster, "logs", None)
        if aux is None or logs_of is None:
            return
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        for m in [*cluster.members, *(Member(s, "", "") for s in aux())]:
            try:
                (logs / f"{m.name}.log").write_text(str(logs_of(m, lines=5000)))
            except Exception as exc:  # noqa: BLE001 -- logs are best effort; say why
                self.errors.append(f"logs of {m.name}: {exc}")

    def _copy_logs(self, root: Path) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(exist_ok=True)
        for p in sorted(root.glob("*.log")):
            shutil.copy(p, logs / p.name)

    def _finish(self, recovered: bool | None) -> RunResult:
        events = self.recorder.events
        t_check = time.monotonic()
        verdict: Verdict
        if events:
            try:
                verdict = self.workload.check(events, self.run_dir)
            except Exception as exc:  # noqa: BLE001 -- a broken check is an unknown verdict
                verdict = Verdict(None, {"error": f"check failed: {exc}"})
        else:
            verdict = Verdict(None, {"error": "no operations recorded"})
        check_s = time.monotonic() - t_check
        valid = verdict.valid
        if self.errors and valid is True:
            valid = None  # a run that broke cannot vouch for validity
        stats = self._stats()
        faults = [f.to_json(self._t0) for f in self.schedule.faults] if self.schedule else []
        (self.run_dir / "nemesis.json").write_text(json.dumps(faults, indent=1) + "\n")
        doc = {
            "run": self.run_id, "valid": valid, "target": self.opts.target,
            "backend": self.opts.backend, "bootstrap": self.opts.bootstrap,
            "workload": self.opts.workload,
            "latency_ms": self.opts.latency_ms, "latency_jitter": self.opts.latency_jitter,
            "nemesis": list(self.opts.nemeses), "seed": self.opts.seed,
            "time_limit": self.opts.time_limit, "concurrency": self.opts.concurrency,
            "serializable_reads": self.opts.serializable_reads,
            "isolated_reads": self.opts.isolated_reads,
            "recovered": recovered, "errors": self.errors, "stats": stats,
            "check_seconds": round(check_s, 3), "faults": faults,
            "final_heal": self.schedule.final_heal if self.schedule else {},
            "verdict": verdict.details,
            "report": None if verdict.report is None else str(verdict.report),
        }
        doc["members"] = self.opts.members
        doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (self.run_dir / "verdict.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
        try:
            from jepsen_style.plots import plot_run

            plot_run(self.samples, faults, self.run_dir, title=self.run_id)
        except Exception as exc:  # noqa: BLE001 -- plots are best effort; say why
            self.errors.append(f"plots: {exc}")
        word = {True: "VALID", False: "VIOLATION", None: "UNKNOWN"}[valid]
        summary = (
            f"{self.run_id}: {word} target={self.opts.target} backend={self.opts.backend} "
            f"bootstrap={self.opts.bootstrap} "
            f"workload={self.opts.workload}{' serializable' if self.opts.serializable_reads else ''}"
            f" nemesis={','.join(self.opts.nemeses) or 'none'} seed={self.opts.seed} "
            f"time={self.opts.time_limit:g}s ops={stats['ops']} ok={stats['ok']} "
            f"fail={stats['fail']} info={stats['info']} "
            f"ok/s={stats['ok_per_s']:.0f} ok/s-before-faults={stats['ok_per_s_before_faults']:.0f}"
            f" ok/s-during-faults={stats['ok_per_s_during_faults']:.0f}"
            f" faults={len(faults)} check={check_s:.1f}s"
            + (f" errors={len(self.errors)}" if self.errors else "")
        )
        (self.run_dir / "summary.txt").write_text(summary + "\n")
        try:  # the run's page and the matrix of its results directory (jepsen_style.pages)
            from jepsen_style.pages import publish_run

            publish_run(self.run_dir)
        except Exception as exc:  # noqa: BLE001 -- pages are best effort; the verdict stands
            self.log(f"pages: {type(exc).__name__}: {exc}")
        return RunResult(self.run_id, self.run_dir, valid, summary, doc)

    def _stats(self) -> dict[str, Any]:
        n = len(self.samples)
        by = {t: sum(1 for s in self.samples if s.type == t) for t in ("ok", "fail", "info")}
        span = max((s.t for s in self.samples), default=0.0)
        first_fault = None
        if self.schedule and self.schedule.faults:
            first_fault = self.schedule.faults[0].start - self._t0
        before = first_fault if first_fault is not None else span
        ok_before = sum(1 for s in self.samples if s.type == "ok" and s.t <= before)
        lat = sorted(s.latency for s in self.samples if s.type == "ok")
        windows = [(f.start - self._t0, (f.end if f.end is not None else f.start) - self._t0)
                   for f in (self.schedule.faults if self.schedule else [])]
        during_s = sum(max(0.0, b - a) for a, b in windows)
        ok_during = sum(1 for s in self.samples if s.type == "ok"
                        and any(a <= s.t <= b for a, b in windows))
        by_kind: dict[str, dict[str, float]] = {}
        for f in (self.schedule.faults if self.schedule else []):
            a, b = f.start - self._t0, (f.end if f.end is not None else f.start) - self._t0
            k = by_kind.setdefault(f.nemesis, {"seconds": 0.0, "ok": 0})
            k["seconds"] += max(0.0, b - a)
            k["ok"] += sum(1 for s in self.samples if s.type == "ok" and a <= s.t <= b)

        def q(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

        return {
            "ops": n, **by,
            "ok_per_s": by["ok"] / span if span else 0.0,
            "ok_per_s_before_faults": ok_before / before if before else 0.0,
            "ok_per_s_during_faults": ok_during / during_s if during_s else 0.0,
            "ok_during_faults": ok_during,
            "fault_seconds": round(during_s, 3),
            "ok_per_s_by_nemesis": {n: (k["ok"] / k["seconds"] if k["seconds"] else 0.0)
                                    for n, k in by_kind.items()},
            "ok_by_nemesis": {n: int(k["ok"]) for n, k in by_kind.items()},
            "first_fault_s": first_fault,
            "latency_ok_s": {"p50": q(0.5), "p99": q(0.99), "max": lat[-1] if lat else 0.0},
            "processes": self.recorder.processes_used,
        }


def run(opts: RunOptions, log: Callable[[str], None] | None = None) -> RunResult:
    """Execute one run; never raises for a broken cluster (the verdict is then unknown)."""
    def _err(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    return Run(opts, log or _err).execute()
