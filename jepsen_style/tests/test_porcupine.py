"""Porcupine's reference histories, checked by the real CLI in a subprocess.

The CLI runs once per data set (module-scoped fixture) over all files at once, exactly as an
operator would; each file's verdict is then a separate parametrized test. The CLI's timing
summary is echoed into the test output (run with ``-s`` to see it); wall-time bounds are not
asserted here (see the validation notes in the report), only verdicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jepsen_style.tests.helpers import PORCUPINE

JEPSEN = PORCUPINE / "jepsen"
KV = PORCUPINE / "kv"


def _expected() -> dict[str, bool]:
    lines = (JEPSEN / "expected.tsv").read_text().splitlines()
    assert lines[0].split() == ["file", "expected_linearizable"]
    return {name: verdict == "true" for name, verdict in (ln.split() for ln in lines[1:])}


EXPECTED = _expected()
KV_FILES = sorted(p.name for p in KV.glob("*.txt"))


def _run_cli(*args: str) -> tuple[int, dict[str, dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "check", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )
    print(proc.stderr, end="")
    lines = [json.loads(ln) for ln in proc.stdout.splitlines()]
    return proc.returncode, {Path(str(d["file"])).name: d for d in lines}


@pytest.fixture(scope="module")
def jepsen_run() -> tuple[int, dict[str, dict[str, object]]]:
    files = sorted(str(p) for p in JEPSEN.glob("etcd_*.log"))
    return _run_cli("--format", "jepsen-log", *files)


@pytest.fixture(scope="module")
def kv_run() -> tuple[int, dict[str, dict[str, object]]]:
    return _run_cli("--format", "edn", "--model", "kv", *(str(KV / f) for f in KV_FILES))


def test_reference_counts() -> None:
    assert len(EXPECTED) == 102
    assert sum(EXPECTED.values()) == 23


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_jepsen_etcd_verdict(
    jepsen_run: tuple[int, dict[str, dict[str, object]]], name: str
) -> None:
    _, verdicts = jepsen_run
    got = verdicts[name]
    assert got["linearizable"] is EXPECTED[name], got
    assert isinstance(got["seconds"], float)


def test_jepsen_empty_history_and_exit_status(
    jepsen_run: tuple[int, dict[str, dict[str, object]]],
) -> None:
    status, verdicts = jepsen_run
    assert len(verdicts) == len(EXPECTED) + 1
    assert verdicts["etcd_095.log"]["linearizable"] is True  # empty: trivially linearizable
    assert status == 1  # some histories are not linearizable


@pytest.mark.parametrize("name", KV_FILES)
def test_kv_verdict(kv_run: tuple[int, dict[str, dict[str, object]]], name: str) -> None:
    _, verdicts = kv_run
    want = name.endswith("-ok.txt")
    assert name.endswith(("-ok.txt", "-bad.txt"))
    assert verdicts[name]["linearizable"] is want, verdicts[name]
