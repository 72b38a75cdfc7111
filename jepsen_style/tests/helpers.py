"""Shared helpers: build histories compactly and locate the Porcupine reference data."""

from __future__ import annotations

from pathlib import Path

from jepsen_style.history import Event, Value

PORCUPINE = Path("/work/shared/testdata/porcupine")


def ev(process: int, typ: str, f: str, value: Value, time: int, key: str | None = None) -> Event:
    """One event; argument order follows a Jepsen log line, then the time."""
    return Event(process, typ, f, key, value, time)
