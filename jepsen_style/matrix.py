"""The composed matrix: ``python -m jepsen_style.matrix`` (``make matrix``).

Runs one Jepsen-style run on the Docker backend for every cell of bootstrap x target x workload
x nemesis group, ``--jobs`` at a time (each run is its own ``python -m jepsen_style run``
process that starts and removes its own containers, on its own bridge network and ports), and
prints one progress line per finished run: its index, verdict, how many of the group's nemeses
got a fault window, ok/s before and during faults, the time so far and the estimated time left.
At the end it prints a table and writes it as JSON to ``<results>/matrix-latest.json`` (each
row: the cell, verdict, ok/s, the nemeses exercised, the run directory) and as a Markdown
table with the targets side by side to ``<results>/matrix-latest.md``. Rows of an earlier
table there whose cells this invocation did not run are kept, so a matrix run in parts (one
nemesis group at a time, say) ends in one table; each row records the commit it ran at.

The nemesis groups together hold every nemesis the Docker backend runs; the nemeses of a group
take turns inside one run, one fault window each (``--fault-seconds`` of fault, then
``--quiet-seconds`` of quiet), so one run per group exercises every nemesis on every cell. A
run's load lasts ``quiet start + windows x (fault + quiet + slack) + final quiet`` seconds;
``SLACK_PER_WINDOW`` covers inject and heal, which are Docker and Toxiproxy calls. Cells that
cannot boot (etcd 3.4.23 with the dns bootstrap) are listed as ``skip`` with the reason. The
default matrix is printed with its estimate before it starts. A run that lost a nemesis window
(its inject failed, or it did not fit) is marked in the table. Exit status: 1 if any run found a
violation (one of a ``MAY_VIOLATE`` workload -- lock: an unfenced lock under faults -- is the
hazard found and counted apart), 2 if any run was unknown (or broke), else 0. The stale-read
control, which must find a violation, is not part of the matrix (tests/composed). ``--members 5`` runs every cell on 5
members (``bridge`` then splits 2 | bridge | 2); the dns bootstrap has 3, so its cells skip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.impls import REPO_ROOT
from jepsen_style.linknemeses import check_members

BOOTSTRAPS = ("static", "discovery", "dns")
TARGETS = ("petcd", "etcd-3.5", "etcd-3.4")
WORKLOADS = ("register", "set", "append", "watch", "lease", "lock")
NEMESIS_GROUPS = (
    "latency,partition,partition-leader,one-way,bridge",
    "slow-leader,slow-member,bandwidth,blackhole,reset-peer,client-latency",
    "kill,pause,restart,membership",
)
CANNOT_BOOT = {("dns", "etcd-3.4"): "etcd 3.4.23 ignores http _etcd-server SRV records"}
QUIET_START, FAULT_SECONDS, QUIET_SECONDS, FINAL_QUIET = 3.0, 3.0, 2.0, 4.0
SLACK_PER_WINDOW = 1.5
CONCURRENCY = 10
"""Client slots per run: several runs share the 2 cores, and fewer concurrent operations keep
the linearizability check of a history with many indefinite (info) operations in its budget."""
# Windows whose inject and heal take longer: membership replaces a member (member remove, a
# fresh container, member add: about 10 s) and its heal waits until the new member caught up.
EXTRA_SLACK = {"membership": 16.0}
OVERHEAD_PER_RUN = 20.0
"""Seconds of a run outside its load (containers up and down, checking), for the estimate."""
RUN_TIMEOUT = 600.0
MAY_VIOLATE = {
    "lock": "the lock workload guards a plain Put with the lock alone (jepsen_style/workloads/"
            "lock.py): a holder cut off longer than its lease TTL keeps writing while another "
            "session holds the lock, the hazard etcd documents; a VIOLATION there is the hazard "
            "found, not a broken guarantee",
}
"""Workloads whose checker may find a violation on a correct etcd under faults (why)."""
VERDICT_WORD = {True: "VALID", False: "VIOLATION", None: "UNKNOWN"}


@dataclass(frozen=True)
class Cell:
    bootstrap: str
    target: str
    workload: str
    nemesis: str

    @property
    def nemeses(self) -> list[str]:
        return _csv(self.nemesis)

    def load_seconds(self) -> float:
        n = len(self.nemeses)
        extra = sum(EXTRA_SLACK.get(x, 0.0) for x in self.nemeses)
        return (QUIET_START + n * (FAULT_SECONDS + QUIET_SECONDS + SLACK_PER_WINDOW) + extra
                + FINAL_QUIET)

    def run_id(self, stamp: str, group: int, seed: int) -> str:
        return (f"{stamp}-matrix-{self.target}-{self.bootstrap}-{self.workload}-g{group}"
                f"-s{seed}")


def _csv(s: str) -> list[str]:
    return [x for x in s.split(",") if x]


def run_cell(cell: Cell, run_id: str, seed: int, results: Path,
             members: int = 3) -> dict[str, Any]:
    """One run as its own process; the row for the table (from the run's verdict.json)."""
    cmd = [sys.executable, "-m", "jepsen_style", "run", "--backend", "docker",
           "--bootstrap", cell.bootstrap, "--target", cell.target, "--workload", cell.workload,
           "--nemesis", cell.nemesis, "--time-limit", f"{cell.load_seconds():g}",
           "--seed", str(seed), "--quiet-start", f"{QUIET_START:g}",
           "--fault-seconds", f"{FAULT_SECONDS:g}", "--quiet-seconds", f"{QUIET_SECONDS:g}",
           "--final-quiet", f"{FINAL_QUIET:g}", "--results-dir", str(results),
           "--run-id", run_id, "--members", str(members), "--concurrency", str(CONCURRENCY),
           "--quiet"]
    row: dict[str, Any] = {"bootstrap": cell.bootstrap, "target": cell.target,
                           "workload": cell.workload, "nemesis": cell.nemesis,
                           "run": str(results / run_id)}
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return {**row, "verdict": "UNKNOWN", "errors": [f"run exceeded {RUN_TIMEOUT:g} s"]}
    try:
        v = json.loads((results / run_id / "verdict.json").read_text())
    except (OSError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {**row, "verdict": "UNKNOWN",
                "errors": [f"exit {proc.returncode}, no verdict.json: " + " | ".join(tail)]}
    st = v.get("stats", {})
    faults = v.get("faults", [])
    ran = sorted({f["nemesis"] for f in faults if not f.get("error")})
    failed = sorted({f["nemesis"] for f in faults if f.get("error")})
    return {**row, "verdict": VERDICT_WORD[v.get("valid")],
            "ok_per_s_before_faults": round(float(st.get("ok_per_s_before_faults", 0)), 1),
            "ok_per_s_during_faults": round(float(st.get("ok_per_s_during_faults", 0)), 1),
            "nemeses_run": ran, "inject_failed": failed,
            "missed": [n for n in cell.nemeses if n not in ran],
            "errors": v.get("errors", [])}


def _windows(r: dict[str, Any]) -> str:
    if "nemeses_run" not in r:
        return ""
    n = len(_csv(str(r["nemesis"])))
    return f"{len(r['nemeses_run'])}/{n}"


def _key(r: dict[str, Any]) -> tuple[str, str, str, str]:
    return (str(r["bootstrap"]), str(r["target"]), str(r["workload"]), str(r["nemesis"]))


def _merged(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` after the rows of an earlier table at ``out`` whose cells this run did not
    repeat, so a matrix run in parts (say one nemesis group later) ends in one table."""
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        old = []
    mine = {_key(r) for r in rows}
    return [r for r in old if isinstance(r, dict) and _key(r) not in mine] + rows


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    print(f"{'bootstrap':10} {'target':9} {'workload':9} {'nemesis group':66} {'verdict':9} "
          f"{'windows':7} {'before':>7} {'during':>7}")
    for r in rows:
        print(f"{r['bootstrap']:10} {r['target']:9} {r['workload']:9} {r['nemesis']:66} "
              f"{r['verdict']:9} {_windows(r):7} {r.get('ok_per_s_before_faults', '')!s:>7} "
              f"{r.get('ok_per_s_during_faults', '')!s:>7}"
              + (f"  missed: {','.join(r['missed'])}" if r.get("missed") else ""))


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table pivoted for reading side by side: one line per bootstrap x workload x group,
    one column per target (verdict, windows, ok/s before -> during faults)."""
    targets = list(dict.fromkeys(str(r["target"]) for r in rows))
    by: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["bootstrap"], r["workload"], r["nemesis"]), {})[r["target"]] = r
    groups = list(dict.fromkeys(str(r["nemesis"]) for r in rows))
    lines = ["| bootstrap | workload | group | " + " | ".join(targets) + " |",
             "|---|---|---|" + "---|" * len(targets)]
    for (b, w, n), cells in by.items():
        shown = []
        for t in targets:
            if t not in cells:
                shown.append("")
                continue
            r = cells[t]
            if r["verdict"] == "skip":
                shown.append("skip")
            else:
                mark = "†" if r["verdict"] == "VIOLATION" and w in MAY_VIOLATE else ""
                shown.append(f"{r['verdict']}{mark} {_windows(r)} {r.get('ok_per_s_before_faults', '')}"
                             f" → {r.get('ok_per_s_during_faults', '')}"
                             + (f" (missed {','.join(r['missed'])})" if r.get("missed") else ""))
        lines.append(f"| {b} | {w} | g{groups.index(n)} | " + " | ".join(shown) + " |")
    legend = "; ".join(f"g{i} = {g}" for i, g in enumerate(groups))
    hazards = "".join(f" † {w}: {why}." for w, why in MAY_VIOLATE.items())
    return "\n".join(lines) + f"\n\nCell: verdict, nemesis windows run/in group, ok/s before → " \
        f"during faults. Groups: {legend}.{hazards}\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jepsen_style.matrix", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstraps", type=_csv, default=list(BOOTSTRAPS))
    p.add_argument("--targets", type=_csv, default=list(TARGETS))
    p.add_argument("--workloads", type=_csv, default=list(WORKLOADS))
    p.add_argument("--nemeses", type=lambda s: s.split(";"), default=list(NEMESIS_GROUPS),
                   help="nemesis groups separated by ';' (each a comma-separated list)")
    p.add_argument("--jobs", type=int, default=4, help="runs at a time (default 4)")
    p.add_argument("--members", type=int, default=3,
                   help="cluster size, 3 or 5 (5: 2 | bridge | 2; dns cells skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", default=str(REPO_ROOT / "results"))
    a = p.parse_args(argv)
    if a.jobs < 1:
        p.error("--jobs must be at least 1")
    results = Path(a.results_dir).resolve()
    results.mkdir(parents=True, exist_ok=True)
    groups = {n: i for i, n in enumerate(a.nemeses)}
    cells = [Cell(b, t, w, n) for b in a.bootstraps for t in a.targets for w in a.workloads
             for n in a.nemeses]
    skip = dict(CANNOT_BOOT)
    for b in a.bootstraps:
        try:
            check_members("docker", b, a.members)
        except ValueError as exc:
            skip.update({(b, t): str(exc) for t in a.targets})
    todo = [c for c in cells if (c.bootstrap, c.target) not in skip]
    est = sum(c.load_seconds() + OVERHEAD_PER_RUN for c in todo) / a.jobs
    print(f"matrix: {len(cells)} cells, {len(todo)} runs, {a.jobs} at a time, estimated "
          f"{est / 60:.0f} min", flush=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    rows: dict[Cell, dict[str, Any]] = {
        c: {"bootstrap": c.bootstrap, "target": c.target, "workload": c.workload,
            "nemesis": c.nemesis, "verdict": "skip", "why": skip[(c.bootstrap, c.target)]}
        for c in cells if c not in todo}
    commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        futs = {pool.submit(run_cell, c, c.run_id(stamp, groups[c.nemesis], a.seed), a.seed,
                            results, a.members): c for c in todo}
        for done, fut in enumerate(as_completed(futs), start=1):
            c = futs[fut]
            rows[c] = r = {**fut.result(), "commit": commit or "unknown"}
            el = time.monotonic() - t0
            left = el / done * (len(todo) - done)
            print(f"[{done}/{len(todo)} {el / 60:.1f} min, ~{left / 60:.0f} min left] "
                  f"{c.bootstrap} {c.target} {c.workload} {c.nemesis}: {r['verdict']} windows "
                  f"{_windows(r)} ok/s before {r.get('ok_per_s_before_faults')} during "
                  f"{r.get('ok_per_s_during_faults')}"
                  + (f" errors: {r['errors'][:2]}" if r.get("errors") else ""), flush=True)
    out = results / "matrix-latest.json"
    ordered = _merged(out, [rows[c] for c in cells])
    out.write_text(json.dumps(ordered, indent=1) + "\n")
    (results / "matrix-latest.md").write_text(markdown_table(ordered))
    print_table(ordered)
    verdicts = [rows[c]["verdict"] if not (rows[c]["verdict"] == "VIOLATION"
                                           and c.workload in MAY_VIOLATE) else "hazard"
                for c in cells]
    print(f"matrix: {len(todo)} runs in {(time.monotonic() - t0) / 60:.1f} min: "
          + ", ".join(f"{verdicts.count(w)} {w}" for w in ("VALID", "VIOLATION", "hazard", "UNKNOWN", "skip")
                      if verdicts.count(w)) + f"; table: {out}", flush=True)
    if "VIOLATION" in verdicts:
        return 1
    return 2 if "UNKNOWN" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
