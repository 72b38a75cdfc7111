"""Gate part 3: target/etcd-3.5 ratios from the interleaved bench (`harness.bench`).

Figures (each the median over `spec.SPEED_ROUNDS` rounds of the per-round ratio, with its
spread): `throughput <op>@<n>` = target req/s / etcd req/s (higher is better), `cpu/req
<op>@<n>` = target CPU ms per request / etcd's, all members summed (lower is better), and
`peak RSS` = largest target member's VmHWM / etcd's (lower is better).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import bench
from harness.gate import spec


def figures(run: bench.Run) -> dict[str, dict[str, Any]]:
    """The gate's speed figures of one bench run (see the module docstring)."""
    target, ref = run.impls[:2]
    out: dict[str, dict[str, Any]] = {}
    for op in spec.SPEED_OPS:
        for n in spec.SPEED_INFLIGHT:
            for kind, attr, better in (("throughput", "rps", "higher"),
                                       ("cpu/req", "server_cpu_ms_per_req", "lower")):
                ratios = run.ratios(op, n, attr)
                if not ratios:
                    continue
                a, b = run.series(target, op, n, attr), run.series(ref, op, n, attr)
                out[f"{kind} {op}@{n}"] = {
                    "value": round(statistics.median(ratios), 4),
                    "rounds": [round(r, 4) for r in ratios],
                    "spread": round(bench.spread(ratios), 4), "better": better,
                    "detail": (f"{target} {statistics.median(a):.{0 if attr == 'rps' else 3}f}"
                               f" vs {ref} {statistics.median(b):.{0 if attr == 'rps' else 3}f}"
                               f" {'req/s' if attr == 'rps' else 'ms/req'}"),
                }
    mem = {impl: max(v) for impl, v in run.peak_rss_mib.items() if v and max(v) > 0}
    if target in mem and ref in mem:
        out["peak RSS"] = {"value": round(mem[target] / mem[ref], 4), "rounds": [],
                           "spread": 0.0, "better": "lower",
                           "detail": f"{target} {mem[target]:.0f} MiB vs {ref} {mem[ref]:.0f} MiB"}
    return out


def run(target: str, out_dir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the bench (both clusters up, interleaved rounds) and return the part's document:
    `figures`, the load averages, `loaded`, `failures`; writes `bench.txt` under `out_dir`."""
    t0 = time.monotonic()
    r = bench.run_bench((target, spec.REFERENCE_IMPL), spec.SPEED_OPS, spec.SPEED_INFLIGHT,
                        spec.SPEED_ROUNDS, spec.SPEED_SECONDS, say=say)
    (out_dir / "bench.txt").write_text(bench.table(r))
    figs = figures(r) if not r.failures else {}
    say(f"[gate] speed: {len(figs)} figures in {time.monotonic() - t0:.0f}s, load average "
        f"{r.load_start} -> {r.load_end}{' (LOADED)' if r.loaded else ''}")
    return {"figures": figs, "load_start": r.load_start, "load_end": r.load_end,
            "loaded": r.loaded, "failures": r.failures, "cpus": r.cpus,
            "seconds": round(time.monotonic() - t0, 1),
            "rounds": r.rounds, "seconds_per_cell": r.seconds_per_cell}
