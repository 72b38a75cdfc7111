"""A nemesis a backend cannot run fails the run before any cluster starts, in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("backend", "nemesis", "needle"), [
    ("local", "one-way", "needs Toxiproxy links"),
    ("local", "client-latency", "needs Toxiproxy links"),
    ("docker", "disk-full", "cannot run on the docker backend"),
    ("docker", "failpoint", "cannot run on the docker backend"),
    ("local", "no-such", "unknown nemesis"),
])
def test_refused_before_load(tmp_path: Path, backend: str, nemesis: str, needle: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "run", "--backend", backend, "--nemesis",
         f"latency,{nemesis}", "--time-limit", "5", "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and nemesis in lines[0], res.stderr
    assert not list(tmp_path.iterdir()), "no run directory: nothing started"


def test_local_refuses_other_bootstraps(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "run", "--bootstrap", "dns", "--time-limit", "5",
         "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and "needs --backend docker" in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "needle"), [
    (["--bootstrap", "dns", "--members", "5"], "cannot use the dns bootstrap"),
    (["--members", "4"], "runs 3 or 5 members"),
])
def test_docker_member_counts_refused_before_load(tmp_path: Path, args: list[str],
                                                  needle: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "run", "--backend", "docker", *args,
         "--time-limit", "5", "--results-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2 and needle in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir()), "no run directory: nothing started"
