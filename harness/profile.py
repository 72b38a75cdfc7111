"""`python -m harness.profile` (`make profile`): one bench cell with py-spy on two members.

Starts a 3-member local petcd, seeds the bench keyspace, warms up, then runs one bench cell
(`--op`, default put, `--inflight`, default 64) for `--seconds` while py-spy (`record --format
raw`) samples the leader and one follower. Writes to `results/profiles/<time>/`:

- `<role>.svg`: a flame graph of the member's Python stacks;
- `<role>.raw.txt`: py-spy's collapsed stacks (only with `--keep-raw`: large);
- `top20.txt`: the run's figures (req/s, CPU ms per request over all members, per member and
  per thread, load average) and, per profiled member, the top 20 frames by own and by
  inclusive samples.

By default only the thread holding the GIL is sampled (py-spy `--gil`): that is the Python
work, the part petcd's code decides. py-spy's idle filter counts threads blocked in C (a
thread pool's queue, grpc's poller, an fsync) as busy, so without `--gil` waits crowd the
tables; `--all-threads` samples them anyway, and the per-thread CPU from /proc says how the
member's CPU really splits. `--native` adds C frames.

py-spy must be able to ptrace the members (root, or CAP_SYS_PTRACE / kernel.yama.ptrace_scope
0); the sampler's own CPU is not counted in the members' CPU. Sampling pauses the member for a
few microseconds per sample (py-spy's default blocking mode), so CPU ms per request under the
profiler reads slightly higher than in `harness.bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import bench, flamegraph
from harness.cluster import ClusterError, Member
from harness.impls import REPO_ROOT
from harness.local import LocalCluster

SPY_START_TIMEOUT = 15.0
SPY_EXIT_TIMEOUT = 60.0
WARMUP_SECONDS = 2.0


class ProfileError(RuntimeError):
    """The profile could not be taken (py-spy missing or refused, cluster did not start)."""


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (utime+stime) per thread of `pid`: "main" (the event loop) and the others
    summed by thread name (/proc comm; grpc's C threads are named, Python's are not)."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue  # the thread ended
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        # Python threads carry the process's name; the main thread runs the event loop.
        name = "main" if tid == str(pid) else f"thread {name}"
        fields = stat.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / bench._CLK_TCK
    return out


def thread_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def py_spy() -> str:
    """The py-spy executable: next to this interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("py-spy")
    if found is None:
        raise ProfileError("py-spy not found: pip install -e '.[dev]' (it is a dev dependency)")
    return found


@dataclass
class Spy:
    """One running `py-spy record` against one member."""

    role: str
    member: Member
    pid: int
    raw: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace").strip()
        except OSError:
            return ""


def start_spy(exe: str, role: str, member: Member, pid: int, out: Path, rate: int,
              seconds: float, native: bool, gil_only: bool) -> Spy:
    raw, log = out / f"{role}.raw.txt", out / f"{role}.spy.log"
    cmd = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
           "--function", "--output", str(raw),
           # A safety stop: normally SIGINT ends sampling when the load stops.
           "--duration", str(int(seconds + WARMUP_SECONDS + 30))]
    if native:
        cmd.append("--native")
    if gil_only:
        cmd.append("--gil")
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
    return Spy(role, member, pid, raw, log, proc)


def wait_sampling(spies: list[Spy]) -> None:
    """Return once every sampler reports it is sampling; ProfileError if one exits first."""
    deadline = time.monotonic() + SPY_START_TIMEOUT
    pending = list(spies)
    while pending:
        for s in list(pending):
            if "Sampling process" in s.log_text():
                pending.remove(s)
            elif s.proc.poll() is not None:
                raise ProfileError(f"py-spy on {s.role} (pid {s.pid}) exited "
                                   f"{s.proc.returncode}: {s.log_text()}")
        if pending and time.monotonic() > deadline:
            raise ProfileError(f"py-spy did not start sampling within {SPY_START_TIMEOUT}s: "
                               + "; ".join(s.log_text() for s in pending))
        if pending:
            time.sleep(0.05)


def stop_spy(s: Spy) -> None:
    """SIGINT (py-spy then writes its output), wait, and check the output is there."""
    if s.proc.poll() is None:
        s.proc.send_signal(signal.SIGINT)
    try:
        s.proc.wait(SPY_EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        s.proc.wait()
        raise ProfileError(f"py-spy on {s.role} did not exit after SIGINT") from None
    if not s.raw.is_file() or s.raw.stat().st_size == 0:
        raise ProfileError(f"py-spy on {s.role} wrote no samples "
                           f"(exit {s.proc.returncode}): {s.log_text()}")


async def _load(cluster: LocalCluster, op: str, inflight: int, seconds: float,
                on_start: Callable[[], None],
                threads: dict[int, dict[str, float]]) -> tuple[bench.Cell, list[float]]:
    """Seed, warm up, call `on_start()`, run the cell; returns it and per-member CPU seconds.
    `threads` gets, per member pid, the CPU seconds of each of its threads during the cell."""
    stubs = bench._load_stubs()
    if stubs is None:
        raise ProfileError("petcd's protobuf stubs are not generated (scripts/setup.sh)")
    bench._RPC_ERRORS = bench._rpc_error_types(with_aetcd=False)
    clients: list[bench.KVClient] = [bench.GrpcClient(u, stubs) for u in cluster.endpoints]
    pids = [cluster.pid(m) for m in cluster.members]
    try:
        await bench._seed(clients[0])
        await bench._run_cell(clients, bench.Cell("petcd", op, inflight), WARMUP_SECONDS, pids)
        on_start()
        cpu0 = [bench._cpu_seconds(p) for p in pids]
        th0 = {p: thread_cpu(p) for p in pids if p is not None}
        cell = bench.Cell("petcd", op, inflight, round=1)
        await bench._run_cell(clients, cell, seconds, pids)
        cpu = [bench._cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
        for p, before in th0.items():
            threads[p] = thread_delta(before, thread_cpu(p))
        return cell, cpu
    finally:
        for c in clients:
            await c.close()


def profile(op: str, inflight: int, seconds: float, rate: int, out_root: Path,
            native: bool = False, keep_raw: bool = False, gil_only: bool = True,
            say: Callable[[str], None] = print) -> Path:
    """Take one profile (module docstring); returns the directory written."""
    exe = py_spy()
    out = out_root / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=False)
    load_start = bench._loadavg()
    cluster = LocalCluster("petcd", size=3)
    spies: list[Spy] = []
    threads: dict[int, dict[str, float]] = {}
    try:
        say(f"[profile] starting 3-member petcd; load average {load_start}")
        cluster.start()
        cluster.wait_healthy(timeout=60)
        leader = cluster.leader()
        follower = next(m for m in cluster.members if m.name != leader.name)
        targets = [("leader", leader), ("follower", follower)]

        def begin() -> None:
            for role, m in targets:
                pid = cluster.pid(m)
                if pid is None:
                    raise ProfileError(f"{m.name} is not running")
                spies.append(start_spy(exe, role, m, pid, out, rate, seconds, native,
                                       gil_only))
            wait_sampling(spies)
            say(f"[profile] sampling leader {leader.name} and follower {follower.name} "
                f"at {rate} Hz for {seconds:g}s of {op} @{inflight}")

        cell, cpu = asyncio.run(_load(cluster, op, inflight, seconds, begin, threads))
        for s in spies:
            stop_spy(s)
        if leader.name != cluster.leader().name:
            say("[profile] warning: the leader changed during the run")
    finally:
        for s in spies:
            if s.proc.poll() is None:
                s.proc.kill()
                s.proc.wait()
        cluster.stop()
    load_end = bench._loadavg()
    roles = {s.member.name: f" ({s.role})" for s in spies}

    def per_req(cpu_seconds: float) -> float:
        return cpu_seconds * 1000 / max(cell.requests, 1)

    report = [
        (f"profile {out.name}: petcd, 3 members on loopback, {op} @{inflight} in flight, "
        f"{seconds:g}s sampled at {rate} Hz (py-spy record --format raw --function"
        f"{' --native' if native else ''}{' --gil' if gil_only else ''}; idle excluded)"),
        (f"load average (1/5/15 min) at start {load_start}, at end {load_end}; "
        f"{os.cpu_count()} CPUs"),
        (f"{cell.requests} requests, {cell.errors} errors, {cell.rps:.0f} req/s, "
        f"p50 {cell.p50_ms:.2f} ms, p99 {cell.p99_ms:.2f} ms"),
        f"CPU ms/req over all members: {per_req(sum(cpu)):.3f} (per member: "
        + ", ".join(f"{m.name}{roles.get(m.name, '')} {per_req(c):.3f}"
                    for m, c in zip(cluster.members, cpu, strict=True)) + ")",
        "",
    ]
    for s in spies:
        stacks = flamegraph.parse(s.raw.read_text(errors="replace"))
        n = flamegraph.total(stacks)
        title = f"petcd {s.role} ({s.member.name}), {op} @{inflight}, {out.name}"
        flamegraph.write_svg(stacks, title, out / f"{s.role}.svg")
        report.append(f"== {s.role} {s.member.name}: {n} samples ==")
        report.append("CPU ms/req by thread (/proc; py-spy's idle filter misses threads "
                      "blocked in C, so this is the split to trust): " + ", ".join(
                          f"{name} {per_req(sec):.3f}" for name, sec in sorted(
                              threads.get(s.pid, {}).items(), key=lambda kv: -kv[1])))
        report.append(flamegraph.table("-- top 20 by own samples --",
                                       flamegraph.top_own(stacks), n))
        report.append(flamegraph.table("-- top 20 by inclusive samples --",
                                       flamegraph.top_total(stacks), n))
        if not keep_raw:
            s.raw.unlink()
        s.log.unlink(missing_ok=True)
    (out / "top20.txt").write_text("\n".join(report))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--op", default="put", choices=bench.OPS)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0, help="sampled time (default 10)")
    ap.add_argument("--rate", type=int, default=100, help="samples per second (default 100)")
    ap.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    ap.add_argument("--keep-raw", action="store_true", help="keep py-spy's collapsed stacks")
    ap.add_argument("--all-threads", action="store_true",
                    help="sample every non-idle thread, not only the GIL holder (py-spy's idle "
                         "filter counts threads blocked in C code as busy)")
    ap.add_argument("--out", default=str(REPO_ROOT / "results" / "profiles"))
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 300 or not 1 <= args.inflight <= 4096:
        ap.error("--seconds must be in (0, 300] and --inflight in 1..4096")
    if not 1 <= args.rate <= 1000:
        ap.error("--rate must be in 1..1000")
    try:
        out = profile(args.op, args.inflight, args.seconds, args.rate, Path(args.out),
                      native=args.native, keep_raw=args.keep_raw,
                      gil_only=not args.all_threads)
    except (ProfileError, ClusterError, OSError) as exc:
        print(f"[profile] failed: {exc}", file=sys.stderr, flush=True)
        return 1
    print((out / "top20.txt").read_text() + f"[profile] wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
