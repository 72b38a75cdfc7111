"""Histories as Jepsen records them, and their pairing into operations.

A history is a sequence of :class:`Event` records in the order they were observed. Each event
belongs to a *process* (a logical client thread) and is one of:

* ``invoke`` -- the process sent a request (``value`` is the argument, e.g. the value to write);
* ``ok``     -- the request definitely took effect; ``value`` is the result (e.g. the value read);
* ``fail``   -- the request definitely did *not* take effect;
* ``info``   -- the outcome is unknown: it may have taken effect, at any time from its invocation
  onwards, or never.

Invariants (checked by :func:`pair`, violations raise :class:`HistoryError`):

* a process has at most one request in flight: ``invoke`` is followed by exactly one completion
  (``ok``/``fail``/``info``) from the same process before that process invokes again;
* a completion names the same function ``f`` (and key) as its invocation;
* times are monotonic nanoseconds; a completion is not earlier than its invocation.

Pairing turns a history into :class:`Operation` intervals ``[call, ret]`` (closed intervals):

* ``ok`` gives a finished operation;
* ``info``, or an invocation never completed, gives an operation open to the end of the
  history (``ret = +inf``) whose output is unknown;
* ``fail`` operations are dropped: they did not happen. A model can declare functions whose
  failure is nevertheless a definite, checkable response (``keep_failed``); etcd's ``cas``
  fails exactly when its compare did not match, so a failed cas is an observation of the value.

The JSON-lines form has one object per event:
``{"process": 0, "type": "invoke", "f": "write", "key": "k", "value": 3, "time": 12345}``.
Vectors are JSON arrays; in memory they are tuples so that values are hashable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, TypeAlias

Value: TypeAlias = "None | bool | int | str | tuple[Value, ...]"
"""A hashable operation value: JSON scalars and (nested) tuples for vectors."""

Process: TypeAlias = "int | str"

EVENT_TYPES = ("invoke", "ok", "fail", "info")
INF = math.inf


class HistoryError(ValueError):
    """A history violates the event invariants or cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Event:
    """One history record. ``time`` is monotonic nanoseconds (or any increasing integer)."""

    process: Process
    type: str
    f: str
    key: str | None
    value: Value
    time: int

    def to_json(self) -> str:
        """Serialise as one JSON line (no trailing newline)."""
        return json.dumps(
            {
                "process": self.process,
                "type": self.type,
                "f": self.f,
                "key": self.key,
                "value": _to_jsonable(self.value),
                "time": self.time,
            },
            separators=(",", ":"),
        )


class Input(NamedTuple):
    """What a process asked for: function, key (None for a single register) and argument."""

    f: str
    key: str | None
    value: Value


class Output(NamedTuple):
    """How the request completed: ``type`` is ``ok``, ``fail`` (kept only when the model asks for
    it) or ``info`` (unknown outcome; ``value`` carries no information)."""

    type: str
    value: Value

    @property
    def unknown(self) -> bool:
        return self.type == "info"


@dataclass(frozen=True, slots=True)
class Operation:
    """A paired invocation and completion: the closed interval ``[call, ret]``.

    ``ret`` is ``math.inf`` when the outcome is unknown. ``id`` is the operation's index in the
    paired history, stable across partitioning (used in counterexamples and reports).
    """

    id: int
    process: Process
    input: Input
    output: Output
    call: int
    ret: float

    @property
    def open(self) -> bool:
        return self.ret == INF


def _to_jsonable(value: Value) -> object:
    if isinstance(value, tuple):
        return [_to_jsonable(v) for v in value]
    return value


def _from_json_value(raw: object, where: str) -> Value:
    if raw is None or isinstance(raw, (bool, int, str)):
        return raw
    if isinstance(raw, list):
        return tuple(_from_json_value(v, where) for v in raw)
    raise HistoryError(f"{where}: unsupported value {raw!r} (expected null, int, string or list)")


def event_from_json(line: str, where: str = "<input>") -> Event:
    """Parse one JSON-lines record; raise :class:`HistoryError` naming ``where`` on bad input."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"{where}: invalid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise HistoryError(f"{where}: expected a JSON object")
    missing = [k for k in ("process", "type", "f", "time") if k not in raw]
    if missing:
        raise HistoryError(f"{where}: missing field(s) {', '.join(missing)}")
    process, typ, f, key, time = (
        raw["process"], raw["type"], raw["f"], raw.get("key"), raw["time"]
    )
    if not isinstance(process, (int, str)) or isinstance(process, bool):
        raise HistoryError(f"{where}: process must be an integer or string")
    if typ not in EVENT_TYPES:
        raise HistoryError(f"{where}: type must be one of {', '.join(EVENT_TYPES)}, got {typ!r}")
    if not isinstance(f, str):
        raise HistoryError(f"{where}: f must be a string")
    if key is not None and not isinstance(key, str):
        raise HistoryError(f"{where}: key must be a string or null")
    if not isinstance(time, int) or isinstance(time, bool):
        raise HistoryError(f"{where}: time must be an integer (nanoseconds)")
    value = _from_json_value(raw.get("value"), where)
    return Event(process=process, type=typ, f=f, key=key, value=value, time=time)


def read_jsonl(path: str | Path) -> list[Event]:
    """Read a JSON-lines history; blank lines are skipped."""
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                events.append(event_from_json(line, f"{path}:{lineno}"))
    return events


def write_jsonl(events: Iterable[Event], out: str | Path | IO[str]) -> None:
    """Write events as JSON lines to a path or an open text stream."""
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as fh:
            write_jsonl(events, fh)
        return
    for ev in events:
        out.write(ev.to_json())
        out.write("\n")


def pair(events: Sequence[Event], keep_failed: Iterable[str] = ()) -> list[Operation]:
    """Pair invocations with completions (see the module docstring for the rules).

    ``keep_failed`` names functions whose ``fail`` completion is kept as a definite response
    (output type ``fail``) instead of being dropped. Operations are numbered in invocation order
    among those kept. Raises :class:`HistoryError` on a broken history.
    """
    keep = frozenset(keep_failed)
    in_flight: dict[Process, int] = {}  # process -> index into `slots`
    # slots[i] = (invoke event, completion event or None); None completion = still open
    slots: list[tuple[Event, Event | None]] = []
    dropped: set[int] = set()
    last_time: int | None = None
    for idx, ev in enumerate(events):
        where = f"event {idx} (process {ev.process!r}, {ev.type} {ev.f})"
        if ev.type not in EVENT_TYPES:
            raise HistoryError(f"{where}: unknown event type {ev.type!r}")
        if last_time is not None and ev.time < last_time:
            raise HistoryError(f"{where}: time {ev.time} goes backwards (previous {last_time})")
        last_time = ev.time
        if ev.type == "invoke":
            if ev.process in in_flight:
                raise HistoryError(f"{where}: process already has a request in flight")
            in_flight[ev.process] = len(slots)
            slots.append((ev, None))
            continue
        slot = in_flight.pop(ev.process, None)
        if slot is None:
            raise HistoryError(f"{where}: completion without a matching invoke")
        inv = slots[slot][0]
        if inv.f != ev.f or inv.key != ev.key:
            raise HistoryError(
                f"{where}: completion does not match invoke {inv.f} {inv.key!r}"
            )
        if ev.type == "fail" and ev.f not in keep:
            dropped.add(slot)
        elif ev.type != "info":
            slots[slot] = (inv, ev)
    ops: list[Operation] = []
    for i, (inv, done) in enumerate(slots):
        if i in dropped:
            continue
        inp = Input(inv.f, inv.key, inv.value)
        if done is None:
            ops.append(Operation(len(ops), inv.process, inp, Output("info", None), inv.time, INF))
        else:
            out = Output(done.type, done.value)
            ops.append(Operation(len(ops), inv.process, inp, out, inv.time, done.time))
    return ops


def events_of(ops: Iterable[Operation]) -> Iterator[Event]:
    """Inverse of :func:`pair` for writing: invoke and completion events in time order.

    Open operations yield only their invocation (an unknown outcome reads back identically).
    """
    recs: list[Event] = []
    # Stable sort by time over records generated in call order keeps, at equal times, each
    # operation's completion before the same process's next invocation.
    for op in sorted(ops, key=lambda o: (o.call, o.id)):
        inp = op.input
        recs.append(Event(op.process, "invoke", inp.f, inp.key, inp.value, op.call))
        if not op.open:
            ret = int(op.ret)
            recs.append(Event(op.process, op.output.type, inp.f, inp.key, op.output.value, ret))
    recs.sort(key=lambda ev: ev.time)
    yield from recs
