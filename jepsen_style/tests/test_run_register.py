"""`python -m jepsen_style run` end to end: short register runs against a real 3-member petcd
cluster on the local backend (with the peer-link proxy), under partitions and kills.

The runs are subprocesses: the runner loads petcd's generated etcdserverpb stubs, which must
never share a process with aetcd (other suites in this pytest session import it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jepsen_style.history import pair, read_jsonl
from jepsen_style.models import get_model

REPO = Path(__file__).resolve().parents[2]
SHORT = ["--time-limit", "20", "--quiet-start", "3", "--fault-seconds", "3",
         "--quiet-seconds", "2", "--final-quiet", "4", "--quiet"]


def _run(tmp_path: Path, run_id: str, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "run", "--target", "petcd", "--backend", "local",
         "--workload", "register", "--results-dir", str(tmp_path), "--run-id", run_id,
         *SHORT, *args],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    verdict_path = tmp_path / run_id / "verdict.json"
    assert verdict_path.is_file(), proc.stderr[-3000:]
    return proc.returncode, json.loads(verdict_path.read_text()), proc.stdout + proc.stderr


@pytest.mark.timeout(300)
def test_register_partition_kill_is_valid(tmp_path: Path) -> None:
    rc, verdict, out = _run(tmp_path, "pk", "--nemesis", "partition,kill", "--seed", "7")
    assert rc == 0, out[-3000:]
    assert verdict["valid"] is True and verdict["recovered"] is True
    names = {f["nemesis"] for f in verdict["faults"] if not f.get("error")}
    assert names == {"partition", "kill"}, verdict["faults"]
    stats = verdict["stats"]
    assert stats["ok"] > 500, stats
    run_dir = tmp_path / "pk"
    events = read_jsonl(run_dir / "history.jsonl")
    ops = pair(events, get_model("etcd").keep_failed)
    assert len(ops) >= stats["ok"]
    for name in ("throughput.png", "latency.png", "nemesis.json", "summary.txt"):
        assert (run_dir / name).stat().st_size > 0, name
    assert sorted(p.name for p in (run_dir / "logs").glob("m*.log")) == ["m1.log", "m2.log",
                                                                          "m3.log"]
    summary = (run_dir / "summary.txt").read_text()
    assert "VALID" in summary and "target=petcd" in summary


@pytest.mark.timeout(300)
def test_serializable_reads_from_isolated_member_are_caught(tmp_path: Path) -> None:
    """The control: reads served locally by a member cut off from the majority go stale while
    the majority keeps writing; the checker must call the history non-linearizable."""
    rc, verdict, out = _run(tmp_path, "ser", "--nemesis", "partition", "--serializable-reads",
                            "--isolated-reads", "--seed", "3")
    assert rc == 1, out[-3000:]
    assert verdict["valid"] is False
    assert verdict["verdict"]["linearizable"] is False
    assert Path(verdict["report"]).is_file()
    assert (tmp_path / "ser" / "violation-history.jsonl").stat().st_size > 0
    blocked = verdict["verdict"]["counterexample"]["blocked"]
    assert "read(" in blocked["op"] or any(
        "read(" in c["op"] for c in verdict["verdict"]["counterexample"]["candidates"])


@pytest.mark.timeout(300)
def test_linearizable_reads_from_isolated_member_stay_valid(tmp_path: Path) -> None:
    """The same run as the control, but with linearizable reads: valid."""
    rc, verdict, out = _run(tmp_path, "lin", "--nemesis", "partition", "--isolated-reads",
                            "--seed", "3")
    assert rc == 0, out[-3000:]
    assert verdict["valid"] is True
    # The partition really happened and the isolated member's reads did not succeed stale.
    assert any(f["isolated"] for f in verdict["faults"]), verdict["faults"]
