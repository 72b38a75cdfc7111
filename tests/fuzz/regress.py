"""Saved regression cases: ``regressions/*.json``, each ``{"reason": ..., "xfail": str|null,
"ops": [...]}``. A shrunk failure is written as ``new-<hash>.json`` (the last failing example
of a Hypothesis run is the shrunk one); a reviewer renames it and sets its reason/xfail."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.fuzz.model import Op

DIR = Path(__file__).resolve().parent / "regressions"


def load() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, json.loads(p.read_text())) for p in sorted(DIR.glob("*.json"))]


def save(ops: list[Op], reason: str) -> Path:
    text = json.dumps(ops, sort_keys=True)
    p = DIR / f"new-{hashlib.sha1(text.encode()).hexdigest()[:10]}.json"
    DIR.mkdir(exist_ok=True)
    p.write_text(json.dumps({"reason": reason[:3000], "xfail": None, "ops": ops}, indent=1)
                 + "\n")
    return p
