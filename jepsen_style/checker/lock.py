"""Mutual exclusion from a lock workload's history: overlapping holds and lost increments.

The history (one lock, one counter) has per process the cycle ``acquire`` (ok: the process
believes it holds the lock), ``read`` of the counter (ok value: the integer read, 0 if absent),
``write`` of read + 1, ``release``. A process's *hold* is the interval in which it certainly
believed it held the lock: from the ``ok`` of its acquire to the invocation of its release. A
process whose operation inside the critical section failed or timed out (``fail``/``info``) was
inside, waiting for that answer, until the completion: its hold ends there (the workload then
abandons the session). An operation still open at the end of the history ends the hold at its
invocation. A lock that provides mutual exclusion never lets two such holds overlap: the lease
of a holder that is still waiting is still being kept alive.

Anomalies:

* ``overlapping-holds``: two holds of different processes intersect (strictly);
* ``duplicate-increments``: two acknowledged writes wrote the same value, so both writers read
  the same counter value inside their holds and one increment was overwritten;
* ``lost-increments``: the counter read after the run is below the number of acknowledged
  writes (with mutual exclusion every effective write adds exactly one).

Pure: no I/O, no clocks; reports are capped at ``max_examples`` per type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jepsen_style.history import Event, Process


@dataclass(slots=True)
class Hold:
    process: Process
    start: int
    end: int
    ended_by: str = "release"
    ops: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"process": self.process, "start": self.start, "end": self.end,
                "ended_by": self.ended_by, "ops_inside": self.ops}


@dataclass
class LockResult:
    valid: bool
    holds: int
    anomalies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "holds": self.holds, "anomaly_types": sorted(self.anomalies),
                "anomaly_counts": self.counts, "anomalies": self.anomalies, "stats": self.stats}


def holds_of(events: Sequence[Event]) -> list[Hold]:
    """The holds in a history (see the module docstring), in order of their start."""
    open_holds: dict[Process, Hold] = {}
    pending: dict[Process, Event] = {}
    out: list[Hold] = []
    for ev in events:
        p = ev.process
        if ev.type == "invoke":
            pending[p] = ev
            h = open_holds.get(p)
            if h is None:
                continue
            if ev.f == "release":
                h.end = ev.time
                out.append(open_holds.pop(p))
            elif ev.f != "acquire":
                h.end = ev.time
                h.ops += 1
            continue
        inv = pending.pop(p, None)
        if inv is None:
            continue
        if ev.f == "acquire" and ev.type == "ok":
            open_holds[p] = Hold(p, ev.time, ev.time)
        elif ev.type != "ok" and p in open_holds and ev.f in ("read", "write"):
            h = open_holds.pop(p)
            h.end = ev.time
            h.ended_by = f"{ev.f} {ev.type}"
            out.append(h)
    for h in open_holds.values():
        h.ended_by = "history end"
        out.append(h)
    out.sort(key=lambda h: (h.start, h.end))
    return out


def check(events: Sequence[Event], final_counter: int | None,
          max_examples: int = 20) -> LockResult:
    """Check a lock history; ``final_counter`` is the counter read after the run (None when
    that read failed: the lost-increment count is then skipped)."""
    holds = holds_of(events)
    anomalies: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}

    def report(kind: str, doc: dict[str, Any]) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        lst = anomalies.setdefault(kind, [])
        if len(lst) < max_examples:
            lst.append(doc)

    longest: Hold | None = None
    for h in holds:
        if longest is not None and longest.end > h.start and longest.process != h.process:
            report("overlapping-holds", {
                "first": longest.to_json(), "second": h.to_json(),
                "overlap_ns": min(longest.end, h.end) - h.start})
        if longest is None or h.end > longest.end:
            longest = h

    written: dict[int, list[Process]] = {}
    acked = 0
    for ev in events:
        if ev.f == "write" and ev.type == "ok" and isinstance(ev.value, int):
            acked += 1
            written.setdefault(ev.value, []).append(ev.process)
    for value, procs in sorted(written.items()):
        if len(procs) > 1:
            report("duplicate-increments", {"value": value, "processes": procs})
    if final_counter is not None and final_counter < acked:
        report("lost-increments", {"acknowledged_writes": acked, "final_counter": final_counter,
                                   "lost": acked - final_counter})
    stats = {"holds": len(holds), "acknowledged_writes": acked, "final_counter": final_counter,
             "longest_hold_s": max(((h.end - h.start) / 1e9 for h in holds), default=0.0)}
    return LockResult(not anomalies, len(holds), anomalies, counts, stats)
