"""The gate's rules: compare one run's document with the baseline's, figure by figure.

- conformance: a test that did not fail in the baseline (passed, skipped or absent) and now
  fails or errors -> FAIL; a baseline test that is now missing -> FAIL (coverage lost).
- correctness: a control (expected VIOLATION) that is no longer VIOLATION -> FAIL; any other
  verdict different from the baseline's -> FAIL; a cell the baseline could not run (unsupported
  on Docker, no engine) that now runs -> NEW, FAIL only if it is not its expected verdict; a
  cell that ran in the baseline and is now `unsupported` -> FAIL; `skipped` for lack of a
  Docker engine -> SKIP.
- speed: a ratio worse than baseline by more than its noise margin -> FAIL, with
  m = clamp(spread_baseline + spread_now, floor, cap) (`spec.Margin`): higher-is-better ratios
  fail below baseline x (1 - m), lower-is-better above baseline x (1 + m). A spread is
  (max - min) / median of one run's per-round ratios, so a noisy (loaded) box widens the margin
  up to the cap, and the floor keeps a quiet pair of runs from failing on ordinary jitter.
  A figure the baseline has and this run lacks -> FAIL. Nothing is compared with an absolute
  time or rate: only ratios against etcd measured in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.gate import spec


@dataclass
class Row:
    part: str
    metric: str
    baseline: str
    now: str
    allowed: str
    status: str
    """PASS, FAIL, NEW (not in the baseline; informative), SKIP (could not run here)."""
    note: str = ""


def _conformance(base: dict[str, Any], now: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if now.get("error"):
        rows.append(Row("conformance", "conformance run", "ran", "broken", "ran", "FAIL",
                        now["error"]))
    bt: dict[str, str] = base.get("tests", {})
    nt: dict[str, str] = now.get("tests", {})
    for target in now.get("targets", []):
        suffix = f"[{target}]"
        b = [k for k in bt if k.endswith(suffix)]
        n = [k for k in nt if k.endswith(suffix)]
        bp = sum(1 for k in b if bt[k] == "passed")
        np_ = sum(1 for k in n if nt[k] == "passed")
        broken = ("failed", "error")
        bad = [k for k in n if nt[k] in broken and bt.get(k) not in broken]
        gone = [k for k in b if k not in nt]
        rows.append(Row("conformance", f"conformance {target} passed", f"{bp}/{len(b)}",
                        f"{np_}/{len(n)}", "no new failure",
                        "FAIL" if bad or gone else "PASS"))
        for k in bad:
            rows.append(Row("conformance", f"conformance test {k}", bt.get(k, "absent"),
                            nt[k], bt.get(k, "passed") if k in bt else "passed", "FAIL",
                            "passed in the baseline, fails now" if k in bt else
                            "new test, fails"))
        for k in gone:
            rows.append(Row("conformance", f"conformance test {k}", bt[k], "missing",
                            "present", "FAIL", "in the baseline, not run now"))
    return rows


def _correctness(base: dict[str, Any], now: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    bc: dict[str, Any] = base.get("cells", {})
    for cid, res in now.get("cells", {}).items():
        v, expect = res["verdict"], res["expect"]
        b = bc.get(cid, {}).get("verdict", "absent")
        ran_before = b not in ("absent", "unsupported", "skipped")
        note = res.get("why", "")
        if v == "skipped":
            status, allowed = "SKIP", b
        elif res.get("control"):
            status, allowed = ("PASS" if v == "VIOLATION" else "FAIL"), "VIOLATION"
            if status == "FAIL":
                note = "negative control no longer caught" + (f"; {note}" if note else "")
        elif v == "unsupported":
            status, allowed = ("FAIL" if ran_before else "SKIP"), b
        elif not ran_before:
            status, allowed = ("NEW" if v == expect else "FAIL"), expect
        else:
            status, allowed = ("PASS" if v == b else "FAIL"), b
            if status == "FAIL":
                note = f"verdict changed from {b}" + (f"; {note}" if note else "")
        metric = f"jepsen {cid}" + (" (control)" if res.get("control") else "")
        rows.append(Row("correctness", metric, b, v, allowed, status, note))
    return rows


def _margin(name: str) -> spec.Margin:
    if name == "peak RSS":
        return spec.RSS_MARGIN
    return spec.THROUGHPUT_MARGIN if name.startswith("throughput") else spec.CPU_MARGIN


def _speed(base: dict[str, Any], now: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    bf: dict[str, Any] = base.get("figures", {})
    nf: dict[str, Any] = now.get("figures", {})
    loaded = " (loaded box)" if now.get("loaded") or base.get("loaded") else ""
    if now.get("failures"):
        rows.append(Row("speed", "bench", "ran", "broken", "ran", "FAIL",
                        "; ".join(f"{k}: {v}" for k, v in now["failures"].items())))
    for name, b in bf.items():
        if name not in nf:
            rows.append(Row("speed", name, f"{b['value']:.3f}", "missing", "present", "FAIL"))
            continue
        n = nf[name]
        m = _margin(name).of(float(b["spread"]), float(n["spread"]))
        if n["better"] == "higher":
            bound = b["value"] * (1 - m)
            ok, allowed = n["value"] >= bound, f">= {bound:.3f}"
        else:
            bound = b["value"] * (1 + m)
            ok, allowed = n["value"] <= bound, f"<= {bound:.3f}"
        note = (f"margin {m:.0%} (spread {b['spread']:.2f}+{n['spread']:.2f}); "
                f"{n['detail']}{loaded}")
        rows.append(Row("speed", name, f"{b['value']:.3f}", f"{n['value']:.3f}", allowed,
                        "PASS" if ok else "FAIL", note))
    for name, n in nf.items():
        if name not in bf:
            rows.append(Row("speed", name, "absent", f"{n['value']:.3f}", "-", "NEW",
                            n["detail"]))
    return rows


def compare(base: dict[str, Any], now: dict[str, Any]) -> list[Row]:
    """Every row of the comparison (parts the run skipped are not compared)."""
    rows: list[Row] = []
    if base.get("target") != now.get("target"):
        rows.append(Row("gate", "target", str(base.get("target")), str(now.get("target")),
                        str(base.get("target")), "FAIL",
                        "the baseline was recorded for another target: `make baseline`"))
    if base.get("schema") != now.get("schema"):
        rows.append(Row("gate", "schema", str(base.get("schema")), str(now.get("schema")),
                        str(now.get("schema")), "FAIL", "baseline from another gate version"))
    for part, fn in (("conformance", _conformance), ("correctness", _correctness),
                     ("speed", _speed)):
        if part in now:
            rows.extend(fn(base.get(part, {}), now[part]))
    return rows


def failed(rows: list[Row]) -> bool:
    return any(r.status == "FAIL" for r in rows)
