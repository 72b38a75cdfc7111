"""Checking watch streams: every watcher of one prefix must see the same gap-free, ordered,
duplicate-free sequence of events, with correct ``prev_kv``, containing every acknowledged write.

Input: per watcher, the events it received in order (:class:`Seen`: revision, key, type, value,
previous value or None), possibly over several reconnections (each resumed from the last
revision + 1); the acknowledged writes ``(key, value, revision)``; the values of every write
attempted (acknowledged or not). The run owns the cluster, so every revision after the watch's
start revision is a write to the prefix and the revisions must be consecutive.

Rules (each violation is reported with the watcher and the events concerned):

* ``order``: revisions strictly increase along a watcher's stream (one event per revision: the
  workload writes one key per revision) -- a repeat is a ``duplicate``, a step back ``order``;
* ``gap``: consecutive events differ by exactly one revision, and the first is the start;
* ``agree``: each stream is a prefix of the longest one; a ``complete`` stream (it saw the
  final sentinel write) equals it;
* ``acked``: every acknowledged write is in the longest stream at its revision, key and value;
* ``phantom``: every event's value was written by some attempted write;
* ``prev_kv``: an event's previous value is the value of the previous event on the same key in
  the sequence (None for the key's first event).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Seen:
    revision: int
    key: str
    type: str
    value: str | None
    prev: str | None


@dataclass
class WatchResult:
    valid: bool | None
    problems: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    complete: int = 0
    watchers: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"checker": "watch", "valid": self.valid, "events": self.events,
                "watchers": self.watchers, "complete": self.complete,
                "problems": self.problems[:20], "problem_count": len(self.problems)}


def check_watches(
    streams: Mapping[str, Sequence[Seen]],
    complete: Iterable[str],
    start_revision: int,
    acked: Iterable[tuple[str, str, int]],
    attempted: Iterable[str],
) -> WatchResult:
    """Apply the rules of the module docstring. ``valid`` is False on any violation, None when
    no watcher completed (cannot vouch for gap-freedom to the end), else True."""
    done = set(complete)
    problems: list[dict[str, Any]] = []
    longest: Sequence[Seen] = max(streams.values(), key=len, default=())
    for name, evs in streams.items():
        expect = start_revision
        for i, ev in enumerate(evs):
            if i and ev.revision == evs[i - 1].revision:
                problems.append({"rule": "duplicate", "watcher": name, "revision": ev.revision})
            elif i and ev.revision < evs[i - 1].revision:
                problems.append({"rule": "order", "watcher": name, "revision": ev.revision,
                                 "after": evs[i - 1].revision})
            elif ev.revision != expect:
                problems.append({"rule": "gap", "watcher": name, "expected": expect,
                                 "got": ev.revision})
            expect = ev.revision + 1
        n = len(evs)
        if list(evs) != list(longest[:n]):
            first = next(i for i in range(n) if evs[i] != longest[i])
            problems.append({"rule": "agree", "watcher": name, "index": first,
                             "saw": _j(evs[first]), "other": _j(longest[first])})
        elif name in done and n != len(longest):
            problems.append({"rule": "agree", "watcher": name,
                             "detail": f"complete stream has {n} events, another {len(longest)}"})
    by_rev = {ev.revision: ev for ev in longest}
    for key, value, rev in acked:
        got = by_rev.get(rev)
        if got is None and not done:
            continue  # an incomplete stream may simply not have got there
        if got is None or got.key != key or got.value != value:
            problems.append({"rule": "acked", "key": key, "value": value, "revision": rev,
                             "saw": None if got is None else _j(got)})
    values = set(attempted)
    last: dict[str, str | None] = {}
    for ev in longest:
        if ev.type == "PUT" and ev.value not in values:
            problems.append({"rule": "phantom", "event": _j(ev)})
        if ev.prev != last.get(ev.key):
            problems.append({"rule": "prev_kv", "event": _j(ev), "expected": last.get(ev.key)})
        last[ev.key] = ev.value if ev.type == "PUT" else None
    valid: bool | None = False if problems else (True if done else None)
    return WatchResult(valid, problems, len(longest), len(done & set(streams)), len(streams))


def _j(ev: Seen) -> dict[str, Any]:
    return {"revision": ev.revision, "key": ev.key, "type": ev.type, "value": ev.value,
            "prev": ev.prev}
