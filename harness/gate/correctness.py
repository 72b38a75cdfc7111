"""Gate part 2: the Jepsen-style matrix, each cell one `python -m jepsen_style run`.

Runs are subprocesses (the runner loads petcd's etcdserverpb stubs; keeping it out of the gate's
process also bounds it with a timeout). Each cell's `verdict.json` and `summary.txt` are kept in
the gate directory; histories and member logs are not (they stay in the scratch dir until the
next gate run, for a person who wants to look).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.gate import spec
from harness.impls import REPO_ROOT

WORDS = {0: "VALID", 1: "VIOLATION"}


def docker_status() -> tuple[str | None, bool]:
    """(why the Docker backend is unusable or None, whether it has link faults)."""
    from harness.docker_backend import DockerCluster, engine_available

    # Link faults on Docker go through the Toxiproxy overlay's `LinkFaults` (issue 10).
    links = hasattr(DockerCluster, "link_faults")
    return engine_available(), links


def _run_cell(cell: spec.CorrectnessCell, target: str, scratch: Path, keep: Path) -> dict[str, Any]:
    run_id = cell.id.replace("/", "-").replace(",", "+")
    cmd = [sys.executable, "-m", "jepsen_style", "run", "--target", target, "--backend",
           cell.backend, "--workload", cell.workload, "--nemesis", cell.nemesis,
           "--time-limit", f"{cell.seconds:g}", "--seed", str(spec.SEED), "--results-dir",
           str(scratch), "--run-id", run_id, "--quiet", *cell.args]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False,
                              timeout=cell.seconds + spec.CELL_TIMEOUT_PAD_S)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = -1, "", "timed out"
    seconds = time.monotonic() - t0
    run_dir = scratch / run_id
    doc: dict[str, Any] = {}
    if (run_dir / "verdict.json").is_file():
        doc = json.loads((run_dir / "verdict.json").read_text())
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("verdict.json", "summary.txt"):
            if (run_dir / name).is_file():
                shutil.copy(run_dir / name, keep / f"{run_id}.{name}")
    summary = out.strip().splitlines()[-1] if out.strip() else err.strip()[-300:]
    verdict = WORDS.get(rc, "UNKNOWN")
    why = "; ".join(doc.get("errors", []))[:300] if verdict == "UNKNOWN" else ""
    return {"verdict": verdict, "expect": cell.expect, "control": cell.control,
            "seconds": round(seconds, 1), "summary": summary, "why": why,
            "stats": doc.get("stats", {}), "run_dir": str(run_dir)}


def run(target: str, cells: tuple[spec.CorrectnessCell, ...], out_dir: Path,
        say: Callable[[str], None]) -> dict[str, Any]:
    """Run the matrix; the part's document maps cell id to its result. A cell that cannot run
    here is recorded with verdict `unsupported` (Docker without link faults) or `skipped` (no
    Docker engine) and the reason."""
    scratch = REPO_ROOT / ".run" / "gate-jepsen"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    engine_why, links = (None, True)
    if any(c.backend == "docker" for c in cells):
        engine_why, links = docker_status()
    results: dict[str, Any] = {}
    t0 = time.monotonic()
    for i, cell in enumerate(cells, 1):
        head = f"[gate] correctness {i}/{len(cells)} {cell.id}"
        if cell.backend == "docker" and engine_why is not None:
            results[cell.id] = {"verdict": "skipped", "expect": cell.expect,
                                "control": cell.control, "why": engine_why}
            say(f"{head}: skipped ({engine_why})")
            continue
        if cell.backend == "docker" and cell.needs_links and not links:
            why = "Docker backend has no link faults (partition/latency) yet"
            results[cell.id] = {"verdict": "unsupported", "expect": cell.expect,
                                "control": cell.control, "why": why}
            say(f"{head}: not run ({why})")
            continue
        say(f"{head} ({cell.seconds:g}s of load, expect {cell.expect}) ...")
        res = _run_cell(cell, target, scratch, out_dir / "jepsen")
        results[cell.id] = res
        say(f"{head}: {res['verdict']} in {res['seconds']:.0f}s"
            + (f" ({res['why']})" if res["why"] else ""))
    return {"cells": results, "seconds": round(time.monotonic() - t0, 1)}
