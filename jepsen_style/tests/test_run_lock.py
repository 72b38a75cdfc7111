"""The lock workload end to end on petcd: without faults mutual exclusion holds; pausing the
lock holder's member for longer than the session lease TTL lets its lease expire while it still
believes it holds the lock, and the checker finds the overlap in the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepsen_style.tests.runs import run
from jepsen_style.workloads.lock import LEASE_TTL


@pytest.mark.timeout(300)
def test_lock_without_faults_is_valid(tmp_path: Path) -> None:
    rc, verdict, out = run(tmp_path, "calm", "--target", "petcd", "--workload", "lock",
                           "--time-limit", "8", "--seed", "2")
    assert rc == 0, out[-3000:]
    v = verdict["verdict"]
    assert v["holds"] > 20 and v["stats"]["final_counter"] >= v["stats"]["acknowledged_writes"]


@pytest.mark.timeout(300)
def test_pausing_the_holder_breaks_mutual_exclusion(tmp_path: Path) -> None:
    pause = 3 * LEASE_TTL  # well past the TTL: the lease expires during the pause
    rc, verdict, out = run(tmp_path, "ph", "--target", "petcd", "--workload", "lock",
                           "--nemesis", "pause-holder", "--time-limit", "14",
                           "--quiet-start", "3", "--fault-seconds", str(pause),
                           "--quiet-seconds", "2", "--final-quiet", "3", "--seed", "2")
    assert rc == 1, out[-3000:]
    assert verdict["valid"] is False
    faults = [f for f in verdict["faults"] if not f.get("error")]
    assert faults and "holder" in faults[0]["detail"], faults
    v = verdict["verdict"]
    assert "overlapping-holds" in v["anomaly_types"], v["anomaly_counts"]
    first = v["anomalies"]["overlapping-holds"][0]
    assert first["first"]["process"] != first["second"]["process"]
    # The long hold spans the pause: longer than the lease TTL.
    assert v["stats"]["longest_hold_s"] > LEASE_TTL
