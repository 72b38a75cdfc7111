"""harness.scale: the report and plots from made-up points (fast), and one tiny real run of
petcd and etcd 3.5.1 (slow: two clusters, a fill, every step). No timed assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import bench, scale, scale_report
from harness.impls import get_impl
from harness.scale_ops import CatchUp, LeaseResult, WatchResult

IMPLS = ["petcd", "etcd-3.5"]


def _timing(rps: float, cpu: float) -> bench.Timing:
    return bench.Timing(requests=int(rps), seconds=1.0, rps=rps, p50_ms=1.0, p99_ms=2.0,
                        server_cpu_ms_per_req=cpu)


def _run(put_rps: dict[str, list[float]], load_end: str = "0.6 0.4 0.3") -> scale.ScaleRun:
    """A run at 1k/10k/100k keys whose put req/s per implementation is `put_rps`."""
    run = scale.ScaleRun("20260101-000000", scale.Options(impls=list(IMPLS), max_keys=100_000),
                         cpus=2, load_start="0.5 0.4 0.3", load_end=load_end)
    for impl, series in put_rps.items():
        for keys, rps in zip((1_000, 10_000, 100_000), series, strict=True):
            run.points.append(scale.Point(
                impl, keys, keys=keys, fill_keys_per_s=1000, rss_mib=[10 + keys / 1000] * 3,
                disk_mib=[1 + keys / 1000] * 3, put=_timing(rps, 1000 / rps),
                get=_timing(2 * rps, 0.1), range_keys=min(keys, 10_000), range=_timing(10, 5),
                load_start="0.5 0.4 0.3", load_end="0.6 0.4 0.3"))
        run.watch.append(WatchResult(impl, 100, puts=10, delivered=1000, expected=1000,
                                     seconds=1.0, events_per_s=1000.0))
        run.lease.append(LeaseResult(impl, leases=10, keepalives=100, seconds=1.0, rps=100.0))
        run.catchup.append(CatchUp(impl, keys=100_000, revision=100_001, seconds=3.0,
                                   via_snapshot=True))
    run.loaded = run.is_loaded(run.load_end)
    run.notes = scale_report.bend_notes(run)
    return run


def test_plan_caps_the_default_checkpoints_at_max_keys() -> None:
    assert scale.Options(max_keys=100_000).plan() == [10_000, 100_000]
    assert scale.Options(max_keys=250_000).plan() == [10_000, 100_000, 250_000]
    assert scale.Options(max_keys=2000).plan() == [2000]
    assert scale.Options(max_keys=2000, checkpoints=[500, 5000]).plan() == [500, 2000]


def test_a_curve_that_falls_where_the_reference_stays_flat_is_noted() -> None:
    run = _run({"petcd": [1000, 800, 200], "etcd-3.5": [5000, 4900, 4800]})
    put = [n for n in run.notes if "put req/s:" in n]
    assert len(put) == 1 and put[0].startswith("**BENDS**"), run.notes
    flat = _run({"petcd": [1000, 990, 980], "etcd-3.5": [5000, 4900, 4800]})
    assert not any(n.startswith("**BENDS**") for n in flat.notes), flat.notes
    # On a loaded box req/s is noise: the bend is reported, but not as a finding.
    loaded = _run({"petcd": [1000, 800, 200], "etcd-3.5": [5000, 4900, 4800]}, "4.0 1.0 0.5")
    (loaded_put,) = [n for n in loaded.notes if "put req/s:" in n]
    assert loaded_put.startswith("bends, but on a loaded box"), loaded_put


def test_report_and_plots_are_written(tmp_path: Path) -> None:
    run = _run({"petcd": [1000, 800, 200], "etcd-3.5": [5000, 4900, 4800]}, "4.0 1.0 0.5")
    assert run.loaded  # load1 4.0 > 1.5 x 2 CPUs at the end
    out = scale.write(run, tmp_path)
    md = (out / "scale.md").read_text()
    assert "**LOADED**" in md and "bends, but on a loaded box" in md
    for section in ("## Growth", "## A new member catching up", "## Watch fan-out",
                    "## Lease keep-alive"):
        assert section in md
    data = json.loads((out / "scale.json").read_text())
    assert data["impls"] == IMPLS and len(data["points"]) == 6
    for png in ("growth.png", "memory.png", "watch.png", "lease_catchup.png"):
        assert (out / png).stat().st_size > 1000, png
        assert f"]({png})" in md
    assert scale.load(out / "scale.json") == run  # --render reads back what was written
    (out / "scale.md").unlink()
    scale.render(out)
    assert (out / "scale.md").read_text() == md


@pytest.mark.slow
def test_tiny_run_of_petcd_and_etcd(tmp_path: Path) -> None:
    missing = [i for i in IMPLS if not get_impl(i).available()]
    if missing:
        pytest.skip(f"server binary missing: {missing}")
    rc = scale.main(["--impls", ",".join(IMPLS), "--max-keys", "2000", "--checkpoints",
                     "500,2000", "--seconds", "0.5", "--range-keys", "1000", "--watchers", "1,10",
                     "--watch-events", "2000", "--leases", "100", "--snapshot-keys", "2000",
                     "--snapshot-count", "500", "--budget-minutes", "10", "--out", str(tmp_path)])
    assert rc == 0
    (out,) = tmp_path.iterdir()
    data = json.loads((out / "scale.json").read_text())
    assert data["impls"] == IMPLS and not data["failures"]
    assert data["stopped"] == ""
    for impl in IMPLS:
        points = [p for p in data["points"] if p["impl"] == impl]
        assert [p["keys"] for p in points] == [500, 2000]
        for p in points:
            assert p["fill_keys_per_s"] > 0 and p["range_keys"] == min(1000, p["keys"])
            assert all(x > 0 for x in p["rss_mib"] + p["disk_mib"]), p
            for cell in ("put", "get", "range"):
                t = p[cell]
                assert t["requests"] > 0 and t["errors"] == 0, (impl, cell, t)
                assert t["rps"] > 0 and t["p99_ms"] >= t["p50_ms"] > 0
        (cu,) = [c for c in data["catchup"] if c["impl"] == impl]
        assert cu["error"] == "" and cu["seconds"] > 0 and cu["revision"] > 2000
        watch = sorted((w for w in data["watch"] if w["impl"] == impl),
                       key=lambda w: w["watchers"])
        assert [w["watchers"] for w in watch] == [1, 10]
        for w in watch:
            assert w["puts"] > 0 and w["delivered"] == w["expected"] == w["puts"] * w["watchers"]
            assert w["events_per_s"] > 0
        (lease,) = [r for r in data["lease"] if r["impl"] == impl]
        assert lease["leases"] == 100 and lease["keepalives"] > 0 and lease["errors"] == 0
    md = (out / "scale.md").read_text()
    assert all(f"| {impl} |" in md for impl in IMPLS)
    for png in ("growth.png", "memory.png", "watch.png", "lease_catchup.png"):
        assert (out / png).stat().st_size > 1000
