"""Saved regression cases: ``regressions/*.json``, each ``{"reason": ..., "xfail": str|null,
"ops": [...]}``. A shrunk failure is written as ``new-<hash>.json`` (the last failing example
of a Hypothesis run is the shrunk one); a reviewer renames it and sets its reason/xfail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fuzz.model import Op

DIR = Path(__file__).resolve().parent / "regressions"


def load() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, json.loads(p.read_text())) for p in sorted(DIR.glob("*.json"))]


def save(ops: list[Op], reason: str, run: str) -> Path:
    """Write a failing example as ``new-<run>.json``: one file per Hypothesis run (``run``
    names it), overwritten by each failing example, so the last one left is the shrunk one."""
    p = DIR / f"new-{run}.json"
    DIR.mkdir(exist_ok=True)
    p.write_text(json.dumps({"reason": reason[:3000], "xfail": None, "ops": ops}, indent=1)
                 + "\n")
    return p
