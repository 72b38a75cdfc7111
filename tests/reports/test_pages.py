"""The run page and the matrix page, rendered by a real headless browser (Debian's chromium).

The pages come from real run directories: one short local run (petcd, register, a partition
window) made here by ``python -m jepsen_style run``, whose end writes both pages, and the
committed stale-read control run (a VIOLATION with the checker's timeline), indexed with
``python -m jepsen_style index``. Each page is loaded with ``chromium --headless --dump-dom``;
the DOM must carry the verdicts, the fault windows, the plots and the matrix cells, and every
``href``/``src`` of both pages must be relative and name an existing file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reports.browser import CHROMIUM, Dom, dump_dom, screenshot, unresolved

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None,
                       reason="Debian's chromium is not installed (scripts/setup.sh installs it)"),
    # One worker for the module under xdist's loadgroup: the run fixture is made once.
    pytest.mark.xdist_group("reports-pages"),
]

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "petcd-register-partition"
CONTROL = "control-petcd-serializable-isolated-reads-s7"
WORDS = {True: "VALID", False: "VIOLATION", None: "UNKNOWN"}
CLASS = {"VALID": "valid", "VIOLATION": "violation", "UNKNOWN": "unknown"}


def _jepsen(*args: str, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jepsen_style", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results directory holding one real 8-second run (its pages written by the runner)."""
    root = tmp_path_factory.mktemp("results")
    proc = _jepsen("run", "--backend", "local", "--target", "petcd", "--workload", "register",
                   "--nemesis", "partition", "--time-limit", "8", "--quiet-start", "2",
                   "--fault-seconds", "3", "--quiet-seconds", "1", "--final-quiet", "2",
                   "--concurrency", "8", "--results-dir", str(root), "--run-id", RUN_ID,
                   "--quiet")
    assert (root / RUN_ID / "verdict.json").is_file(), proc.stderr[-3000:]
    return root


def _verdict(run_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir / "verdict.json").read_text())
    return doc


def _checked(page: Path) -> Dom:
    """Load ``page`` in chromium; every link of the DOM it built resolves."""
    dom = Dom(dump_dom(page))
    bad = unresolved(dom.links, page)
    assert not bad, f"{page}: {bad}"
    return dom


def test_run_page_renders_verdict_faults_plots_and_logs(results: Path) -> None:
    run_dir = results / RUN_ID
    doc = _verdict(run_dir)
    page = run_dir / "index.html"
    assert page.is_file(), "the runner's end did not write the run page"
    dom = _checked(page)
    assert dom.text_by_id["verdict"].strip() == WORDS[doc["valid"]]
    assert doc["faults"], "the run had no fault window (schedule: one at 2 s)"
    fault_rows = [a for t, a in dom.tags if t == "tr"]
    assert "partition" in dom.text_by_id["fault-table"]
    assert len(fault_rows) >= len(doc["faults"]) + 1
    for f in doc["faults"]:
        assert f["detail"] in dom.text_by_id["fault-table"]
    srcs = [a["src"] for t, a in dom.tags if t == "img"]
    assert srcs == ["throughput.png", "latency.png"]
    for src in srcs:
        assert (run_dir / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hrefs = set(dom.links)
    assert {"logs/m1.log", "logs/m2.log", "logs/m3.log", "verdict.json", "nemesis.json",
            "../index.html"} <= hrefs
    during = doc["stats"].get("ok_per_s_during_faults")
    shown = "-" if during is None else f"{during:.0f}"  # "-" where a runner did not record it
    assert f"ok/s during faults{shown}" in dom.text_by_id["load-table"]
    assert f"bootstrap{doc.get('bootstrap', '-')}" in dom.text_by_id["run-table"]
    png = screenshot(page, run_dir.parent / "run-page.png")
    assert png.stat().st_size > 10_000


def test_matrix_after_a_run_links_its_cell(results: Path) -> None:
    doc = _verdict(results / RUN_ID)
    page = results / "index.html"
    assert page.is_file(), "the runner's end did not write the matrix"
    dom = _checked(page)
    cells = [c for c in dom.cells if c.get("data-run") == RUN_ID]
    assert len(cells) == 1, dom.cells
    cell, word = cells[0], WORDS[doc["valid"]]
    assert CLASS[word] in cell["class"].split()
    assert (cell["data-target"], cell["data-backend"], cell["data-workload"],
            cell["data-nemesis"]) == ("petcd", "local", "register", "partition")
    assert cell["link"] == f"{RUN_ID}/index.html"
    before = f"before {doc['stats']['ok_per_s_before_faults']:.0f}"
    during_value = doc["stats"].get("ok_per_s_during_faults")
    during = "during -" if during_value is None else f"during {during_value:.0f}"
    assert word in cell["text"] and before in cell["text"] and during in cell["text"]


def test_index_cli_adds_the_control_with_its_counterexample(results: Path,
                                                             tmp_path: Path) -> None:
    site = tmp_path / "results"
    shutil.copytree(results / RUN_ID, site / RUN_ID)
    shutil.copytree(REPO / "results" / CONTROL, site / CONTROL,
                    ignore=shutil.ignore_patterns("index.html"))
    proc = _jepsen("index", "--results-dir", str(site), timeout=60.0)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(site / "index.html")

    run = _checked(site / CONTROL / "index.html")
    assert run.text_by_id["verdict"].strip() == "VIOLATION"
    assert "counterexample" in run.text_by_id
    frames = [a["src"] for t, a in run.tags if t == "iframe"]
    assert frames == ["history.jsonl.html"]
    assert "violation-history.jsonl" in run.links

    matrix = _checked(site / "index.html")
    # Cells of a column with no run there (the two runs differ in bootstrap) carry no data-run.
    by_run = {c["data-run"]: c for c in matrix.cells if "data-run" in c}
    assert set(by_run) == {RUN_ID, CONTROL}
    control = by_run[CONTROL]
    assert "violation" in control["class"].split()
    assert control["data-workload"] == "register (serializable, isolated reads)"
    assert control["link"] == f"{CONTROL}/index.html"
    assert "control: VIOLATION expected" in matrix.text_by_id["matrix"]


def test_applied_toxics_bootstrap_and_rate_during_faults_are_shown(results: Path,
                                                                   tmp_path: Path) -> None:
    """The fields the Docker/Toxiproxy runs add (``bootstrap``, ``ok_per_s_during_faults``, a
    window's ``applied`` toxics and ``healed`` audit) appear on both pages when present."""
    site = tmp_path / "results"
    run_dir = site / "docker-run"
    shutil.copytree(results / RUN_ID, run_dir, ignore=shutil.ignore_patterns("index.html"))
    faults = json.loads((run_dir / "nemesis.json").read_text())
    faults[0]["applied"] = [
        {"proxy": "m1-to-m2", "toxic": "latency_downstream", "type": "latency",
         "stream": "downstream", "attributes": {"latency": 50, "jitter": 10},
         "direction": "m1->m2"}]
    faults[0]["healed"] = {"proxies_enabled": 9, "toxics_removed": 1}
    (run_dir / "nemesis.json").write_text(json.dumps(faults))
    doc = _verdict(run_dir)
    doc.update(backend="docker", bootstrap="dns")
    doc["stats"]["ok_per_s_during_faults"] = 123.4
    (run_dir / "verdict.json").write_text(json.dumps(doc))
    assert _jepsen("index", "--results-dir", str(site), timeout=60.0).returncode == 0

    run = _checked(run_dir / "index.html")
    table = run.text_by_id["fault-table"]
    for text in ("m1-to-m2", "latency_downstream", "latency=50, jitter=10", "m1->m2",
                 "toxics_removed=1"):
        assert text in table, table
    assert "ok/s during faults123" in run.text_by_id["load-table"]
    assert "bootstrapdns" in run.text_by_id["run-table"]
    matrix = _checked(site / "index.html")
    (cell,) = matrix.cells
    assert (cell["data-backend"], cell["data-bootstrap"]) == ("docker", "dns")
    assert "during 123" in cell["text"]
    assert "docker · bootstrap dns" in matrix.text_by_id["matrix"]
