"""`python -m harness gate`: run the gate and compare with the baseline; `--record-baseline`
(`make baseline`) records a new baseline instead.

Exit status: 0 every figure within its rule, 1 a figure failed (or, with --record-baseline, the
run was not sane enough to become a baseline), 2 usage or setup error (no baseline).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import bench
from harness.gate import compare, conformance, correctness, report, spec, speed
from harness.impls import IMPL_NAMES, REPO_ROOT

BASELINE = REPO_ROOT / "results" / "baseline" / "gate.json"
GATES = REPO_ROOT / "results" / "gates"
PARTS = ("conformance", "correctness", "speed")


def _git(*args: str) -> str:
    # The commit a gate run or baseline came from: git itself is the only source of it.
    try:
        res = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def _machine() -> dict[str, Any]:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"host": socket.gethostname(), "cpus": os.cpu_count() or 1, "mem": mem,
            "kernel": platform.release(), "python": platform.python_version()}


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def measure(plan: spec.Plan, out_dir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the parts of `plan` and return the run's document (what gate.json holds)."""
    t0 = time.monotonic()
    cpus = os.cpu_count() or 1
    doc: dict[str, Any] = {
        "schema": spec.SCHEMA, "target": plan.target, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                             time.gmtime()),
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": _machine(), "load_start": _load(), "seed": spec.SEED,
        "loaded_threshold": f"1-min load > {bench.LOADED_PER_CPU:g} x {cpus} CPUs",
    }
    local_ok = plan.target in IMPL_NAMES
    if plan.conformance:
        doc["conformance"] = conformance.run(plan.target, out_dir, say, plan.extra_pytest)
    if plan.correctness:
        cells = plan.cells if local_ok else tuple(c for c in plan.cells if c.backend == "docker")
        doc["correctness"] = correctness.run(plan.target, cells, out_dir, say)
    if plan.speed:
        if local_ok:
            doc["speed"] = speed.run(plan.target, out_dir, say)
        else:
            say(f"[gate] speed: not run (the bench runs local processes; {plan.target} is not "
                "a local implementation)")
    doc["load_end"] = _load()
    doc["seconds"] = round(time.monotonic() - t0, 1)
    limit = bench.LOADED_PER_CPU * cpus
    doc["loaded"] = (bench.load1(doc["load_start"]) > limit or bench.load1(doc["load_end"]) > limit
                     or bool(doc.get("speed", {}).get("loaded")))
    return doc


def _retry_unknown(doc: dict[str, Any], base: dict[str, Any], plan: spec.Plan, out_dir: Path,
                   say: Callable[[str], None]) -> None:
    """Rerun once each cell whose verdict became UNKNOWN (a run that broke, e.g. a cluster
    that did not start in time on a loaded box); a definite verdict change is never rerun."""
    cells = doc.get("correctness", {}).get("cells", {})
    bcells = base.get("correctness", {}).get("cells", {})
    again = tuple(c for c in plan.cells if cells.get(c.id, {}).get("verdict") == "UNKNOWN"
                  and bcells.get(c.id, {}).get("verdict", c.expect) != "UNKNOWN")
    if again:
        say(f"[gate] rerunning {len(again)} cell(s) that gave UNKNOWN: "
            + ", ".join(c.id for c in again))
        cells.update(correctness.run(plan.target, again, out_dir, say)["cells"])


def _sane_for_baseline(doc: dict[str, Any]) -> list[str]:
    problems = []
    for cid, res in doc.get("correctness", {}).get("cells", {}).items():
        if res["verdict"] not in (res["expect"], "unsupported", "skipped"):
            problems.append(f"{cid}: {res['verdict']} (expected {res['expect']})")
    c = doc.get("conformance", {})
    if c.get("error"):
        problems.append(f"conformance: {c['error']}")
    s = doc.get("speed")
    if s is not None and (s.get("failures") or not s.get("figures")):
        problems.append(f"speed: bench failed: {s.get('failures')}")
    return problems


def _write_outputs(doc: dict[str, Any], base: dict[str, Any], rows: list[compare.Row],
                   out_dir: Path, kind: str, base_history: Path) -> None:
    status = "FAIL" if compare.failed(rows) else "PASS"
    (out_dir / "gate.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / "summary.md").write_text(report.markdown(rows, doc, base))
    (out_dir / "junit.xml").write_bytes(report.junit(rows, doc))
    hist = out_dir.parent / "history.jsonl"
    if kind == "gate":
        with hist.open("a") as fh:
            fh.write(json.dumps(report.history_entry(doc, kind, status)) + "\n")
    entries = [e for e in report.read_history(hist, base_history)
               if e.get("target") == doc["target"]]
    pngs = report.plots(entries, rows, out_dir)
    (out_dir / "index.html").write_text(report.index_html(rows, doc, base, pngs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness gate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default=os.environ.get("GATE_TARGET", "petcd"),
                    help="implementation under test: petcd (default), etcd-3.5, etcd-3.4, or "
                         "image:NAME[:TAG] (conformance on the Docker backend, Docker cells only, no bench)")
    ap.add_argument("--baseline", default=str(BASELINE), help="baseline gate.json")
    ap.add_argument("--record-baseline", action="store_true",
                    help="run everything and write the baseline instead of comparing")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="comma-separated subset of conformance,correctness,speed (a partial "
                         "run compares only those parts)")
    ap.add_argument("--out", default=str(GATES), help="where the per-run directory goes")
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if bad := [p for p in parts if p not in PARTS]:
        ap.error(f"unknown --parts {bad}")
    if args.target not in IMPL_NAMES and not args.target.startswith("image:"):
        ap.error(f"--target must be one of {', '.join(IMPL_NAMES)} or image:NAME")
    base_path = Path(args.baseline)
    base_history = base_path.parent / "history.jsonl"
    base: dict[str, Any] = {}
    if base_path.is_file():
        base = json.loads(base_path.read_text())
    elif not args.record_baseline:
        print(f"[gate] no baseline at {base_path}: run `make baseline` first", flush=True)
        return 2
    plan = spec.Plan(target=args.target, conformance="conformance" in parts,
                     correctness="correctness" in parts, speed="speed" in parts)
    commit = (_git("rev-parse", "--short=10", "HEAD") or "unknown")
    out_dir = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{commit}"
    out_dir.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        print(msg, flush=True)

    say(f"[gate] target={plan.target} parts={','.join(parts)} -> {out_dir}; baseline "
        f"{base.get('commit', 'none')[:10]} ({base.get('time', '-')})")
    doc = measure(plan, out_dir, say)
    if args.record_baseline:
        _retry_unknown(doc, {}, plan, out_dir, say)
        problems = _sane_for_baseline(doc)
        if problems:
            say("[gate] baseline NOT recorded; the run is not what a healthy target gives:")
            for p in problems:
                say(f"  {p}")
            (out_dir / "gate.json").write_text(json.dumps(doc, indent=1) + "\n")
            return 1
        base_path.parent.mkdir(parents=True, exist_ok=True)
        base_path.write_text(json.dumps(doc, indent=1) + "\n")
        with base_history.open("a") as fh:
            fh.write(json.dumps(report.history_entry(doc, "baseline", "PASS")) + "\n")
        rows = compare.compare(doc, doc)
        _write_outputs(doc, doc, rows, out_dir, "baseline", base_history)
        say(f"[gate] baseline recorded: {base_path} (commit {doc['commit'][:10]}, load "
            f"{doc['load_start']} -> {doc['load_end']}, {doc['seconds']:.0f}s)")
        return 0
    _retry_unknown(doc, base, plan, out_dir, say)
    rows = compare.compare(base, doc)
    _write_outputs(doc, base, rows, out_dir, "gate", base_history)
    say("")
    print(report.table(rows, doc), end="", flush=True)
    latest = Path(args.out) / "latest-summary.md"
    shutil.copy(out_dir / "summary.md", latest)
    say(f"[gate] wrote {out_dir}/index.html, summary.md, junit.xml; {latest}")
    return 1 if compare.failed(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
