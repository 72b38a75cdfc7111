"""The pages' choices that need no browser: the latest run wins its cell, a broken or partial
verdict.json still gives a page (UNKNOWN, "-") or is left out, never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from jepsen_style.pages import rebuild, write_matrix
from jepsen_style.pages.common import load_run
from jepsen_style.pages.matrix import latest
from tests.reports.browser import Dom, unresolved

REPO = Path(__file__).resolve().parents[2]
RECORDED = "accept-petcd-register-partition-kill-s7"


def _copy(site: Path, name: str, **changes: object) -> Path:
    run_dir = site / name
    shutil.copytree(REPO / "results" / RECORDED, run_dir,
                    ignore=shutil.ignore_patterns("index.html"))
    doc = json.loads((run_dir / "verdict.json").read_text())
    doc.update(changes, run=name)
    (run_dir / "verdict.json").write_text(json.dumps(doc))
    return run_dir


def test_the_latest_finished_run_holds_the_cell(tmp_path: Path) -> None:
    _copy(tmp_path, "b-older", valid=False, finished="2026-12-07T10:00:00Z")
    _copy(tmp_path, "a-newer", valid=True, finished="2026-12-07T11:00:00Z")
    _copy(tmp_path, "c-unstamped", valid=None)  # an older runner: no finish time, oldest
    runs = [r for r in (load_run(d) for d in sorted(tmp_path.iterdir())) if r is not None]
    (cell,) = latest(runs).values()
    assert cell.run_id == "a-newer"
    matrix = write_matrix(tmp_path)
    dom = Dom(matrix.read_text())
    assert [c["data-run"] for c in dom.cells] == ["a-newer"]
    assert "valid" in dom.cells[0]["class"].split()
    assert not unresolved(dom.links, matrix)
    # Every run is listed (and has its page, written because it had none), newest first.
    listed = [a for a in dom.links if a.endswith("/index.html")]
    assert listed == ["a-newer/index.html", "a-newer/index.html", "b-older/index.html",
                      "c-unstamped/index.html"]


def test_partial_and_broken_verdicts(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "verdict.json").write_text("{}")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "verdict.json").write_text(json.dumps(
        {"valid": "yes", "stats": [], "verdict": [], "nemesis": "kill",
         "faults": [{"nemesis": "kill"}, 3]}))
    (tmp_path / "odd" / "nemesis.json").write_text('[{"start": "x"}, 5]')
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "verdict.json").write_text("not json")
    pages, skipped, matrix = rebuild(tmp_path)
    assert [p.parent.name for p in pages] == ["empty", "odd"]
    assert [d.name for d in skipped] == ["broken"]
    assert not (tmp_path / "broken" / "index.html").exists()
    for page in pages:
        dom = Dom(page.read_text())
        assert dom.text_by_id["verdict"] == "UNKNOWN"
        assert "ok/s before faults-" in dom.text_by_id["load-table"]
        assert not unresolved(dom.links, page)
    dom = Dom(matrix.read_text())
    assert {c["data-run"] for c in dom.cells} <= {"empty", "odd"} and len(dom.cells) == 2
