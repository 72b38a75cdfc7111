"""Recording a history while a run is under way.

Contract (the invariants of :mod:`jepsen_style.history`, enforced here as they happen):

* all calls come from one thread (the run's event loop), so the order of the list is the
  order of observation and times (``time.monotonic_ns``) never go backwards;
* a process has at most one request in flight: :meth:`invoke` on a busy process raises;
* a completion must follow an invocation of the same process, with the same ``f`` and key;
* ``info`` retires the process: the caller gets a fresh process id from :meth:`retire` and must
  use it (with a fresh connection) for its next request; the retired id never invokes again;
* every event is also appended to a JSON-lines file as it happens (flushed per event), so a
  run that dies still leaves a readable, pairable history.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO

from jepsen_style.history import Event, Process, Value


class Recorder:
    """Appends history events in observation order (see the module docstring)."""

    def __init__(self, path: Path | None, first_free_process: int) -> None:
        self.events: list[Event] = []
        self._open: dict[Process, tuple[str, str | None]] = {}
        self._retired: set[Process] = set()
        self._next = first_free_process
        self._last = 0
        # Open for the whole run (closed by close()): every event is flushed as it happens.
        self._fh: IO[str] | None = (
            open(path, "w", encoding="utf-8") if path else None  # noqa: SIM115
        )

    def _now(self) -> int:
        t = max(time.monotonic_ns(), self._last)
        self._last = t
        return t

    def _append(self, ev: Event) -> Event:
        self.events.append(ev)
        if self._fh is not None:
            self._fh.write(ev.to_json() + "\n")
            self._fh.flush()
        return ev

    def invoke(self, process: Process, f: str, key: str | None, value: Value) -> Event:
        if process in self._open:
            raise RuntimeError(f"process {process!r} already has a request in flight")
        if process in self._retired:
            raise RuntimeError(f"process {process!r} was retired")
        self._open[process] = (f, key)
        return self._append(Event(process, "invoke", f, key, value, self._now()))

    def complete(self, process: Process, typ: str, value: Value) -> Event:
        if typ not in ("ok", "fail", "info"):
            raise ValueError(f"completion type must be ok, fail or info, not {typ!r}")
        try:
            f, key = self._open.pop(process)
        except KeyError:
            raise RuntimeError(f"process {process!r} has no request in flight") from None
        ev = self._append(Event(process, typ, f, key, value, self._now()))
        if typ == "info":
            self._retired.add(process)
        return ev

    def retire(self, process: Process) -> int:
        """A fresh process id to replace ``process`` (which must not invoke again)."""
        self._retired.add(process)
        new = self._next
        self._next += 1
        return new

    @property
    def processes_used(self) -> int:
        """How many process ids were handed out (the initial ones plus replacements)."""
        return self._next

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
