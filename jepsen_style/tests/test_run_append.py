"""The append workload end to end on a 3-member petcd under kills: valid, and checked with
enough dependencies that the cycle search had something to refute."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepsen_style.tests.runs import run

SHORT = ["--time-limit", "15", "--quiet-start", "3", "--fault-seconds", "3",
         "--quiet-seconds", "2", "--final-quiet", "3"]


@pytest.mark.timeout(300)
def test_append_under_kill_is_valid(tmp_path: Path) -> None:
    rc, verdict, out = run(tmp_path, "ak", "--target", "petcd", "--workload", "append",
                           "--nemesis", "kill", "--seed", "3", *SHORT)
    assert rc == 0, out[-3000:]
    assert verdict["valid"] is True and verdict["recovered"] is True
    assert [f["nemesis"] for f in verdict["faults"] if not f.get("error")], verdict["faults"]
    v = verdict["verdict"]
    assert v["checker"] == "append" and v["final_read"] is True
    stats = v["stats"]
    assert stats["ok"] > 100, stats
    # The graph the checker searched was not trivial: all four edge kinds were inferred.
    for kind in ("ww", "wr", "rw", "rt"):
        assert stats[f"edges_{kind}"] > 0, stats
    assert stats["longest_list"] > 5, stats
