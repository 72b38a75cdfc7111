"""The ``failpoint`` nemesis: its table is etcd's names that petcd has, its pick is seeded, it
refuses a backend it cannot drive, and a short register run under it stays VALID with every
fault window naming the point it armed and that point's effect."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from petcd.storage import failpoints

from harness.cluster import ClusterError
from harness.docker_backend import DockerCluster
from harness.local import LocalCluster
from jepsen_style.failpoint_nemesis import FAILPOINTS, FailpointNemesis
from jepsen_style.nemesis import make_nemeses
from jepsen_style.tests.runs import run


def test_table_uses_petcd_failpoint_names_and_registers() -> None:
    assert {p.name for p in FAILPOINTS} <= set(failpoints.NAMES)
    assert {p.terms for p in FAILPOINTS} == {"panic", 'sleep("1s")'}
    for p in FAILPOINTS:
        failpoints.parse_terms(p.terms)
    assert isinstance(make_nemeses(["failpoint"])[0], FailpointNemesis)


def test_prepare_gives_each_member_an_endpoint_and_refuses_docker() -> None:
    c = LocalCluster("petcd", size=3)
    try:
        nem = FailpointNemesis()
        nem.prepare(c)
        addrs = {c.member_env[m.name]["PETCD_FAILPOINTS_HTTP"] for m in c.members}
        assert len(addrs) == 3 and all(a.startswith("127.0.0.1:") for a in addrs)
        assert "--snapshot-count=100" in c.extra_args
    finally:
        c.stop()
    with pytest.raises(ClusterError, match="local backend"):
        FailpointNemesis().prepare(DockerCluster.__new__(DockerCluster))


def test_pick_is_seeded() -> None:
    picks = [[random.Random(f"{seed}/nemesis").choice(FAILPOINTS) for _ in range(5)]
             for seed in (1, 1, 2)]
    assert picks[0] == picks[1] != picks[2]


@pytest.mark.timeout(400)
def test_register_under_failpoints_is_valid(tmp_path: Path) -> None:
    rc, verdict, out = run(
        tmp_path, "fp", "--target", "petcd", "--workload", "register", "--nemesis", "failpoint",
        "--seed", "3", "--time-limit", "40", "--concurrency", "10", "--rate", "50",
        "--quiet-start", "4", "--fault-seconds", "4", "--quiet-seconds", "3",
        "--final-quiet", "6", timeout=360.0)
    assert rc == 0, out[-3000:]
    assert verdict["valid"] is True and verdict["recovered"] is True
    faults = json.loads((tmp_path / "fp" / "nemesis.json").read_text())
    assert faults and all(f["nemesis"] == "failpoint" and not f.get("error") for f in faults)
    for f in faults:
        name, _, terms = f["detail"].split(" ", 1)[0].partition("=")
        assert name in failpoints.NAMES, f
        if terms == "panic":
            assert "failpoint panic in its log" in f["detail"] or "did not fire" in f["detail"], f
