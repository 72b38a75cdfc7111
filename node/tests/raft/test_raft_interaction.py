"""Runs every data-driven interaction script in testdata/ (RAFT_REWRITE=1 regenerates)."""

from __future__ import annotations

from pathlib import Path

import pytest
from raft_interaction import parse_script, run_script

TESTDATA = Path(__file__).resolve().parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_interaction(path: Path) -> None:
    run_script(path)


def test_runner_detects_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAFT_REWRITE", raising=False)
    p = tmp_path / "bad.txt"
    p.write_text("add-nodes 1\n----\nnot what happens\n")
    with pytest.raises(AssertionError, match="expected"):
        run_script(p)


def test_parser_rejects_missing_separator() -> None:
    with pytest.raises(ValueError, match="----"):
        parse_script("campaign 1\noops\n")
