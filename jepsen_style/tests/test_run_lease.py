"""The lease workload end to end on a 3-member petcd under kills: keys live exactly as long as
their leases (within the clock slack), and the checks covered many reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepsen_style.tests.runs import run


@pytest.mark.timeout(300)
def test_lease_under_kill_is_valid(tmp_path: Path) -> None:
    rc, verdict, out = run(tmp_path, "lk", "--target", "petcd", "--workload", "lease",
                           "--nemesis", "kill", "--time-limit", "15", "--quiet-start", "3",
                           "--fault-seconds", "3", "--quiet-seconds", "2", "--final-quiet", "3",
                           "--seed", "4")
    assert rc == 0, out[-3000:]
    assert verdict["valid"] is True and verdict["recovered"] is True
    v = verdict["verdict"]
    stats = v["stats"]
    assert v["final_read"] is True and stats["final_keys"] == 0, stats
    assert stats["reads_while_certainly_alive"] > 100, stats
    assert stats["revoked"] > 5 and stats["leases"] > 20, stats
