"""The gate's comparison rules (harness/gate/compare.py) over small hand-written documents.

The rules are pure functions of two gate documents, so they are tested as such; the gate's
measuring parts run real clusters and are exercised by `make gate` itself.
"""

from __future__ import annotations

from typing import Any

from harness.gate import compare, spec


def _doc(**parts: Any) -> dict[str, Any]:
    return {"schema": spec.SCHEMA, "target": "petcd", **parts}


def _fig(value: float, spread: float, better: str = "higher") -> dict[str, Any]:
    return {"value": value, "spread": spread, "better": better, "detail": ""}


def _statuses(rows: list[compare.Row], part: str) -> dict[str, str]:
    return {r.metric: r.status for r in rows if r.part == part}


def test_throughput_ratio_fails_only_below_its_noise_margin() -> None:
    base = _doc(speed={"figures": {"throughput put@64": _fig(0.40, 0.05)}})
    # m = clamp(0.05 + 0.05, 0.15, 0.45) = 0.15: the bound is 0.40 x 0.85 = 0.34.
    ok = _doc(speed={"figures": {"throughput put@64": _fig(0.341, 0.05)}})
    bad = _doc(speed={"figures": {"throughput put@64": _fig(0.339, 0.05)}})
    assert _statuses(compare.compare(base, ok), "speed") == {"throughput put@64": "PASS"}
    assert _statuses(compare.compare(base, bad), "speed") == {"throughput put@64": "FAIL"}
    assert compare.failed(compare.compare(base, bad))


def test_a_noisy_run_widens_the_margin_up_to_the_cap() -> None:
    base = _doc(speed={"figures": {"throughput put@64": _fig(0.40, 0.30)}})
    noisy = _doc(speed={"figures": {"throughput put@64": _fig(0.23, 0.30)}})
    # m = clamp(0.60, 0.15, 0.45) = 0.45: the bound is 0.22, so 0.23 passes ...
    assert _statuses(compare.compare(base, noisy), "speed") == {"throughput put@64": "PASS"}
    # ... but no spread lets a ratio below baseline x (1 - cap) through.
    worse = _doc(speed={"figures": {"throughput put@64": _fig(0.21, 5.0)}})
    assert _statuses(compare.compare(base, worse), "speed") == {"throughput put@64": "FAIL"}


def test_cpu_ratio_is_lower_is_better_and_a_lost_figure_fails() -> None:
    base = _doc(speed={"figures": {"cpu put@64": _fig(3.0, 0.0, "lower"),
                                   "throughput put@16": _fig(0.5, 0.0)}})
    now = _doc(speed={"figures": {"cpu put@64": _fig(3.6, 0.0, "lower")}})
    st = _statuses(compare.compare(base, now), "speed")
    assert st == {"cpu put@64": "FAIL", "throughput put@16": "FAIL"}
    better = _doc(speed={"figures": {"cpu put@64": _fig(1.0, 0.0, "lower"),
                                     "throughput put@16": _fig(2.0, 0.0)}})
    assert not compare.failed(compare.compare(base, better))


def test_control_no_longer_caught_and_verdict_changes_fail() -> None:
    def cells(**verdicts: str) -> dict[str, Any]:
        out = {}
        for cid, v in verdicts.items():
            control = cid.startswith("control")
            out[cid] = {"verdict": v, "expect": "VIOLATION" if control else "VALID",
                        "control": control}
        return {"cells": out}

    base = _doc(correctness=cells(control="VIOLATION", reg="VALID", dock="unsupported"))
    same = _doc(correctness=cells(control="VIOLATION", reg="VALID", dock="unsupported"))
    assert not compare.failed(compare.compare(base, same))
    lost = _doc(correctness=cells(control="VALID", reg="VALID", dock="unsupported"))
    assert _statuses(compare.compare(base, lost), "correctness")["jepsen control (control)"] \
        == "FAIL"
    broke = _doc(correctness=cells(control="VIOLATION", reg="VIOLATION", dock="unsupported"))
    assert _statuses(compare.compare(base, broke), "correctness")["jepsen reg"] == "FAIL"
    # A cell the baseline could not run is NEW when it gives its expected verdict.
    newly = _doc(correctness=cells(control="VIOLATION", reg="VALID", dock="VALID"))
    rows = compare.compare(base, newly)
    assert _statuses(rows, "correctness")["jepsen dock"] == "NEW"
    assert not compare.failed(rows)


def test_new_conformance_failure_and_missing_test_fail() -> None:
    base = _doc(conformance={"targets": ["petcd"], "tests": {
        "t::a[petcd]": "passed", "t::b[petcd]": "failed", "t::c[petcd]": "passed"}})
    same_failure = _doc(conformance={"targets": ["petcd"], "tests": {
        "t::a[petcd]": "passed", "t::b[petcd]": "failed", "t::c[petcd]": "passed"}})
    assert not compare.failed(compare.compare(base, same_failure))
    regressed = _doc(conformance={"targets": ["petcd"], "tests": {
        "t::a[petcd]": "failed", "t::b[petcd]": "failed"}})
    st = _statuses(compare.compare(base, regressed), "conformance")
    assert st["conformance test t::a[petcd]"] == "FAIL"
    assert st["conformance test t::c[petcd]"] == "FAIL"
    assert "conformance test t::b[petcd]" not in st


def test_a_baseline_for_another_target_fails() -> None:
    other = dict(_doc(), target="image:my/etcd:dev")
    assert compare.failed(compare.compare(_doc(), other))
