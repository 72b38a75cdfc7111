"""Shared by the ``test_run_*`` files: one ``python -m jepsen_style run`` in a subprocess.

Runs are subprocesses because the runner loads petcd's generated etcdserverpb stubs, which must
never share a process with aetcd (other suites in the same pytest session import it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, run_id: str, *args: str,
        timeout: float = 240.0) -> tuple[int, dict[str, Any], str]:
    """Run with ``args`` (target, workload, nemeses, times...) into ``tmp_path/run_id``; return
    the exit status, verdict.json and the combined output (for assertion messages)."""
    proc = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "run", "--backend", "local",
         "--results-dir", str(tmp_path), "--run-id", run_id, "--quiet", *args],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    verdict_path = tmp_path / run_id / "verdict.json"
    assert verdict_path.is_file(), proc.stderr[-3000:]
    return proc.returncode, json.loads(verdict_path.read_text()), proc.stdout + proc.stderr
