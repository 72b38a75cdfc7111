"""Bounded search: a pathological history gives an honest unknown, never a hang."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from jepsen_style.checker import check, search
from jepsen_style.history import Event, pair, write_jsonl
from jepsen_style.models import RegisterModel
from jepsen_style.tests.helpers import ev

WRITERS = 24


def pathological() -> list[Event]:
    """Many concurrent writes of unknown outcome, then a read of a value nobody wrote.

    Refuting it means trying every subset and order of the open writes before the read:
    about WRITERS * 2**WRITERS cached configurations."""
    h = [ev(p, "invoke", "write", p, p) for p in range(WRITERS)]
    h += [ev(p, "info", "write", ":timed-out", WRITERS + p) for p in range(WRITERS)]
    h += [ev(WRITERS, "invoke", "read", None, 100), ev(WRITERS, "ok", "read", -1, 101)]
    return h


def test_tiny_time_cap_gives_unknown() -> None:
    start = time.monotonic()
    res = check(RegisterModel(), pair(pathological()), timeout=0.2)
    assert res.linearizable is None
    assert res.reason == "timeout"
    assert time.monotonic() - start < 5


def test_state_cap_gives_unknown() -> None:
    res = check(RegisterModel(), pair(pathological()), max_states=2000)
    assert res.linearizable is None
    assert res.reason == "state limit"
    assert 2000 < res.explored < 10_000


def test_deadline_needs_a_clock() -> None:
    try:
        search(RegisterModel(), pair(pathological()), deadline=1.0)
    except ValueError as exc:
        assert "needs a clock" in str(exc)
    else:
        raise AssertionError("deadline without clock accepted")


def test_search_uses_the_given_clock() -> None:
    ticks = iter(range(1_000_000))
    res = search(RegisterModel(), pair(pathological()), deadline=3, clock=lambda: next(ticks))
    assert res.linearizable is None and res.reason == "timeout"


def test_cli_reports_unknown_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "patho.jsonl"
    write_jsonl(pathological(), path)
    proc = subprocess.run(
        [sys.executable, "-m", "jepsen_style", "check", "--timeout", "0.3", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    out = json.loads(proc.stdout)
    assert out["linearizable"] is None and out["reason"] == "timeout"


def _keyed(events: list[Event], key: str, offset: int) -> list[Event]:
    return [Event(int(e.process) + offset, e.type, e.f, key, e.value, e.time) for e in events]


def _merge(*histories: list[Event]) -> list[Event]:
    return sorted((e for h in histories for e in h), key=lambda e: e.time)


def test_illegal_partition_found_beside_a_pathological_one() -> None:
    bad = [ev(0, "invoke", "write", 1, 0), ev(0, "ok", "write", 1, 1),
           ev(1, "invoke", "read", None, 200), ev(1, "ok", "read", 2, 201)]
    h = _merge(_keyed(pathological(), "slow", 0), _keyed(bad, "fast", 100))
    for workers in (1, 2):
        start = time.monotonic()
        res = check(RegisterModel(), pair(h), timeout=30, workers=workers)
        assert res.linearizable is False
        assert res.counterexample is not None
        assert res.counterexample.blocked.input.key == "fast"
        assert time.monotonic() - start < 10


def test_parallel_time_cap_gives_unknown() -> None:
    h = _merge(_keyed(pathological(), "a", 0), _keyed(pathological(), "b", 100))
    res = check(RegisterModel(), pair(h), timeout=0.3, workers=2)
    assert res.linearizable is None and res.reason == "timeout"
    assert {r.reason for r in res.results} == {"timeout"}
