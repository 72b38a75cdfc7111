"""The ``check`` command line run as a real subprocess: output, exit codes, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from jepsen_style.history import write_jsonl
from jepsen_style.tests.helpers import ev

GOOD = [ev(0, "invoke", "write", 1, 0), ev(0, "ok", "write", 1, 1),
        ev(1, "invoke", "read", None, 2), ev(1, "ok", "read", 1, 3)]
STALE = GOOD[:3] + [ev(1, "ok", "read", None, 3)]


def run(*args: str) -> tuple[int, list[dict[str, object]], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "jepsen_style", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    return proc.returncode, [json.loads(ln) for ln in proc.stdout.splitlines()], proc.stderr


def test_all_linearizable_exit_0(tmp_path: Path) -> None:
    write_jsonl(GOOD, tmp_path / "a.jsonl")
    write_jsonl(GOOD[:2], tmp_path / "b.jsonl")
    status, out, err = run("check", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert status == 0, err
    assert [(Path(str(o["file"])).name, o["linearizable"]) for o in out] == [
        ("a.jsonl", True), ("b.jsonl", True)
    ]
    assert set(out[0]) == {"file", "linearizable", "seconds"}
    assert "2 linearizable" in err


def test_violation_exit_1_with_counterexample_and_report(tmp_path: Path) -> None:
    write_jsonl(STALE, tmp_path / "stale.jsonl")
    report_dir = tmp_path / "reports"
    status, out, err = run("check", "--model", "register", "--counterexample",
                           "--report-dir", str(report_dir), str(tmp_path / "stale.jsonl"))
    assert status == 1, err
    assert out[0]["linearizable"] is False
    cex = out[0]["counterexample"]
    assert isinstance(cex, dict)
    assert cex["blocked"] == {"id": 1, "process": 1, "op": "read() -> nil", "call": 2,
                              "return": 3}
    assert cex["state"] == "1" and cex["prefix_length"] == 1
    page = (report_dir / "stale.jsonl.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert 'class="bad blocked"' in page and 'class="lin"' in page
    assert "read() -&gt; nil" in page


def test_violation_outranks_error_and_errors_are_reported(tmp_path: Path) -> None:
    write_jsonl(STALE, tmp_path / "stale.jsonl")
    (tmp_path / "broken.jsonl").write_text('{"process": 0}\n')
    missing = tmp_path / "missing.jsonl"
    status, out, _ = run("check", str(tmp_path / "broken.jsonl"), str(missing),
                         str(tmp_path / "stale.jsonl"))
    assert status == 1
    assert out[0]["linearizable"] is None and "missing field" in str(out[0]["error"])
    assert out[1]["linearizable"] is None and "No such file" in str(out[1]["error"])
    assert out[2]["linearizable"] is False
    status, out, _ = run("check", str(missing))
    assert status == 2 and out[0]["linearizable"] is None


def test_unknown_operation_for_model_is_an_error_not_a_crash(tmp_path: Path) -> None:
    write_jsonl([ev(0, "invoke", "frobnicate", 1, 0), ev(0, "ok", "frobnicate", 1, 1)],
                tmp_path / "odd.jsonl")
    status, out, err = run("check", str(tmp_path / "odd.jsonl"))
    assert status == 2, err
    assert "no operation 'frobnicate'" in str(out[0]["error"])


def test_usage_errors() -> None:
    status, _, err = run("check", "--format", "xml", "f")
    assert status == 2 and "invalid choice" in err
    status, _, err = run()
    assert status == 2 and "COMMAND" in err


def test_report_marks_open_operations(tmp_path: Path) -> None:
    from jepsen_style.checker import check
    from jepsen_style.history import pair
    from jepsen_style.models import RegisterModel
    from jepsen_style.report import write_report

    h = [ev(0, "invoke", "write", 1, 0), ev(0, "info", "write", ":timed-out", 1),
         ev(1, "invoke", "read", None, 5), ev(1, "ok", "read", 1, 6),
         ev(1, "invoke", "read", None, 7), ev(1, "ok", "read", None, 8)]
    ops = pair(h)
    model = RegisterModel()
    res = check(model, ops)
    assert res.counterexample is not None
    page = write_report(tmp_path / "r", "odd name?.jsonl", model, ops, res.counterexample)
    assert page.name == "odd_name_.jsonl.html"
    text = page.read_text()
    assert 'class="lin open"' in text  # the timed-out write, linearized, open to the end
    assert "return inf (unknown outcome)" in text
