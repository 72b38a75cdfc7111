"""Gate part 1: the conformance subset under pytest, read back from its JUnit XML.

pytest runs as a subprocess (not pytest.main in-process): the suite starts clusters, xdist
workers and its own event loops, and its JUnit XML is the record the gate reads.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.gate import spec
from harness.impls import REPO_ROOT


def targets_for(target: str) -> list[str]:
    """The target under test first, then the reference targets (no duplicates)."""
    return list(dict.fromkeys([target, *spec.REFERENCE_TARGETS]))


def backend_args(target: str) -> list[str]:
    """An image target exists only as containers, so the whole subset (reference targets too,
    for a like-for-like comparison) runs on the Docker backend."""
    return ["--backend", "docker"] if target.startswith("image:") else []


def parse_junit(path: Path) -> dict[str, str]:
    """`{"<classname>::<name>": "passed"|"failed"|"error"|"skipped"}` from a JUnit XML file."""
    out: dict[str, str] = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        if "failure" in tags:
            out[key] = "failed"
        elif "error" in tags:
            out[key] = "error"
        elif "skipped" in tags:
            out[key] = "skipped"
        else:
            out[key] = "passed"
    return out


def run(target: str, out_dir: Path, say: Callable[[str], None],
        extra: list[str] | None = None) -> dict[str, Any]:
    """Run the subset (xdist, 2 workers, reruns for load flakes) and return the part's
    document: `tests` (outcome per test id), `counts`, `seconds`, `rc`, `junit` path."""
    junit = out_dir / "conformance-junit.xml"
    log = out_dir / "conformance.log"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
           "--dist", "loadgroup", "--reruns", "2", "--reruns-delay", "2",
           f"--junitxml={junit}", "--targets", ",".join(targets_for(target)),
           *backend_args(target), *spec.CONFORMANCE_FILES, *(extra or [])]
    say(f"[gate] conformance: {len(spec.CONFORMANCE_FILES)} files x "
        f"{','.join(targets_for(target))} (pytest -n 2)")
    t0 = time.monotonic()
    try:
        with log.open("w") as fh:
            proc = subprocess.run(cmd, cwd=REPO_ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=spec.CONFORMANCE_TIMEOUT_S,
                                  check=False)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = -1
    seconds = time.monotonic() - t0
    tests: dict[str, str] = {}
    error = ""
    if junit.is_file():
        try:
            tests = parse_junit(junit)
        except ET.ParseError as exc:
            error = f"unreadable JUnit XML: {exc}"
    else:
        error = f"pytest wrote no JUnit XML (rc={rc}); see {log}"
    if rc == -1:
        error = f"timed out after {spec.CONFORMANCE_TIMEOUT_S:g}s; see {log}"
    counts: dict[str, int] = {}
    for outcome in tests.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    say(f"[gate] conformance: {counts} in {seconds:.0f}s" + (f" ({error})" if error else ""))
    return {"tests": tests, "counts": counts, "seconds": round(seconds, 1), "rc": rc,
            "error": error, "targets": targets_for(target)}
