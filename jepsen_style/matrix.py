"""The composed matrix: ``python -m jepsen_style.matrix`` (``make matrix``).

Runs one Jepsen-style run on the Docker backend for every cell of bootstrap x target x workload
x nemesis group, one after the other (each run starts and removes its own containers), and
prints one progress line per run: its index, verdict, ok/s before and during faults, the time
so far and the estimated time left. At the end it prints a table and writes it as JSON to
``<results>/matrix-latest.json`` (each row: the cell, verdict, ok/s, the run directory).

Nemesis groups take turns inside one run (two or three windows per run), so every nemesis is
exercised on every cell without one run per nemesis. Cells that cannot boot (etcd 3.4.23 with
the dns bootstrap) are listed as ``skip`` with the reason. A run takes about 75 s (start,
``--time-limit`` of load, check, teardown); the default matrix is printed with its estimate
before it starts. Exit status: 1 if any run found a violation where none was expected, 2 if any
run was unknown, else 0. The stale-read control is not part of the matrix (tests/composed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.impls import REPO_ROOT
from jepsen_style.runner import RunOptions, run

BOOTSTRAPS = ("static", "discovery", "dns")
TARGETS = ("petcd", "etcd-3.5", "etcd-3.4")
WORKLOADS = ("register", "set", "append", "watch", "lease", "lock")
NEMESIS_GROUPS = ("latency,partition", "slow-leader,one-way", "bandwidth,blackhole",
                  "reset-peer,client-latency", "kill,pause,restart",
                  "slow-member,bridge,partition-leader")
CANNOT_BOOT = {("dns", "etcd-3.4"): "etcd 3.4.23 ignores http _etcd-server SRV records"}
SECONDS_PER_RUN = 75.0


def _csv(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jepsen_style.matrix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstraps", type=_csv, default=list(BOOTSTRAPS))
    p.add_argument("--targets", type=_csv, default=list(TARGETS))
    p.add_argument("--workloads", type=_csv, default=list(WORKLOADS))
    p.add_argument("--nemeses", type=lambda s: s.split(";"), default=list(NEMESIS_GROUPS),
                   help="nemesis groups separated by ';' (each a comma-separated list)")
    p.add_argument("--time-limit", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", default=str(REPO_ROOT / "results"))
    a = p.parse_args(argv)
    cells = [(b, t, w, n) for b in a.bootstraps for t in a.targets for w in a.workloads
             for n in a.nemeses]
    todo = [c for c in cells if (c[0], c[1]) not in CANNOT_BOOT]
    est = len(todo) * SECONDS_PER_RUN * a.time_limit / 30.0
    print(f"matrix: {len(cells)} cells, {len(todo)} runs, estimated {est / 60:.0f} min",
          flush=True)
    rows: list[dict[str, object]] = []
    t0 = time.monotonic()
    done = 0
    worst = 0
    for b, t, w, n in cells:
        cell = {"bootstrap": b, "target": t, "workload": w, "nemesis": n}
        if (b, t) in CANNOT_BOOT:
            rows.append({**cell, "verdict": "skip", "why": CANNOT_BOOT[(b, t)]})
            continue
        nemeses = tuple(_csv(n))
        tl = a.time_limit * (1.5 if len(nemeses) > 2 else 1.0)  # one window per nemesis
        res = run(RunOptions(target=t, backend="docker", bootstrap=b, workload=w,
                             nemeses=nemeses, time_limit=tl, seed=a.seed, quiet_start=5.0,
                             fault_seconds=5.0, quiet_seconds=4.0, final_quiet=6.0,
                             results_dir=Path(a.results_dir), progress=False),
                  log=lambda s: None)
        done += 1
        word = {True: "VALID", False: "VIOLATION", None: "UNKNOWN"}[res.valid]
        worst = max(worst, {True: 0, False: 1, None: 2}[res.valid])
        st = res.verdict.get("stats", {})
        rows.append({**cell, "verdict": word, "run": str(res.run_dir),
                     "ok_per_s_before_faults": round(float(st.get("ok_per_s_before_faults", 0)), 1),
                     "ok_per_s_during_faults": round(float(st.get("ok_per_s_during_faults", 0)), 1),
                     "errors": res.verdict.get("errors", [])})
        el = time.monotonic() - t0
        left = el / done * (len(todo) - done)
        print(f"[{done}/{len(todo)} {el / 60:.1f} min, ~{left / 60:.0f} min left] {b} {t} {w} "
              f"{n}: {word} ok/s before {rows[-1]['ok_per_s_before_faults']} during "
              f"{rows[-1]['ok_per_s_during_faults']}", flush=True)
    out = Path(a.results_dir) / "matrix-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{'bootstrap':10} {'target':9} {'workload':9} {'nemesis':36} verdict  before during")
    for r in rows:
        print(f"{r['bootstrap']!s:10} {r['target']!s:9} {r['workload']!s:9} {r['nemesis']!s:36} "
              f"{r['verdict']!s:8} {r.get('ok_per_s_before_faults', '')!s:>6} "
              f"{r.get('ok_per_s_during_faults', '')!s:>6}")
    print(f"matrix: {done} runs in {(time.monotonic() - t0) / 60:.1f} min; table: {out}")
    return worst


if __name__ == "__main__":
    sys.exit(main())
