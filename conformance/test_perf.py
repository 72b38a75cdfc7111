"""`etcdctl check perf --load=s` against the shared cluster (about 60 s per target)."""

from __future__ import annotations

import pytest

from harness.etcdctl import Etcdctl


@pytest.mark.slow
def test_check_perf_small(target: str, etcdctl: Etcdctl) -> None:
    res = etcdctl("check", "perf", "--load=s", timeout=240)
    verdicts = [ln for ln in res.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))]
    assert verdicts, f"no verdict in output: {res.stdout[-500:]} {res.stderr[-500:]}"
    assert any(v.startswith("PASS: Throughput is") for v in verdicts), verdicts
    assert verdicts[-1] == "PASS", verdicts
    assert res.rc == 0
    # check perf cleans up its keys.
    left = etcdctl("get", "/etcdctl-check-perf/", "--prefix", "--count-only", "-w", "fields")
    assert '"Count" : 0' in left.check().lines()
