"""Readers for histories written by Jepsen itself.

Two textual forms are understood, both turned into :class:`~jepsen_style.history.Event` lists:

* the *log* form, as printed by ``jepsen.util`` while a test runs (the etcd register histories
  of Porcupine's and ahorn's test suites)::

      INFO  jepsen.util - 3	:invoke	:cas	[4 3]

  fields are whitespace separated: process, ``:type``, ``:f``, value. There are no timestamps:
  the line number is the time, which preserves exactly the real-time order Jepsen observed.
  These histories have a single register, so ``key`` is None.

* the *EDN* form, one operation map per line, e.g.
  ``{:process 0, :type :ok, :f :get, :key "5", :value ""}``; an optional ``:time`` entry is
  used as the time, else the line number.

Values: ``nil`` -> None, integers, strings, ``[a b]`` vectors -> tuples, and keywords such as
``:timed-out`` -> the string ``":timed-out"``. Lines that are not operations are skipped in the
log form (Jepsen logs interleave other messages); in the EDN form a malformed map is an error.
"""

from __future__ import annotations

import re
from pathlib import Path

from jepsen_style.history import EVENT_TYPES, Event, HistoryError, Process, Value

_LOG_LINE = re.compile(
    r"^\s*INFO\s+jepsen\.util\s+-\s+(?P<process>\S+)\s+:(?P<type>[a-z]+)\s+:(?P<f>[a-z-]+)"
    r"\s*(?P<value>.*?)\s*$"
)
_TOKEN = re.compile(r'\s*(?:(\[)|(\])|("(?:[^"\\]|\\.)*")|([^\s\[\]",]+))\s*,?')


def parse_value(text: str, where: str = "<value>") -> Value:
    """Parse one EDN scalar or (nested) vector; raise :class:`HistoryError` if malformed."""
    pos = 0
    stack: list[list[Value]] = [[]]
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise HistoryError(f"{where}: cannot parse value {text!r}")
        pos = m.end()
        open_, close, string, atom = m.groups()
        if open_:
            stack.append([])
        elif close:
            if len(stack) == 1:
                raise HistoryError(f"{where}: unbalanced ']' in {text!r}")
            done = tuple(stack.pop())
            stack[-1].append(done)
        elif string is not None:
            stack[-1].append(_unescape(string[1:-1]))
        else:
            stack[-1].append(_atom(atom, where))
    if len(stack) != 1 or len(stack[0]) != 1:
        raise HistoryError(f"{where}: expected exactly one value, got {text!r}")
    return stack[0][0]


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def _atom(atom: str, where: str) -> Value:
    if atom == "nil":
        return None
    if atom in ("true", "false"):
        return atom == "true"
    if atom.startswith(":"):
        return atom
    try:
        return int(atom)
    except ValueError:
        raise HistoryError(f"{where}: unsupported EDN atom {atom!r}") from None


def _process(raw: str) -> Process:
    try:
        return int(raw)
    except ValueError:
        return raw.lstrip(":")


def parse_log_text(text: str, name: str = "<log>") -> list[Event]:
    """Parse a ``jepsen.util`` log (see module docstring); the line number is the time."""
    events: list[Event] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _LOG_LINE.match(line)
        if m is None:
            continue
        where = f"{name}:{lineno}"
        typ = m.group("type")
        if typ not in EVENT_TYPES:
            raise HistoryError(f"{where}: unknown operation type :{typ}")
        raw_value = m.group("value")
        value = parse_value(raw_value, where) if raw_value else None
        events.append(Event(_process(m.group("process")), typ, m.group("f"), None, value, lineno))
    return events


def read_log(path: str | Path) -> list[Event]:
    """Read a ``jepsen.util`` log file."""
    return parse_log_text(Path(path).read_text(encoding="utf-8"), str(path))


_EDN_ENTRY = re.compile(r'\s*:(?P<k>[a-z-]+)\s+(?P<v>"(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^\s,}]+)\s*,?')


def parse_edn_line(line: str, where: str = "<edn>") -> Event:
    """Parse one flat EDN operation map (``:process :type :f :key :value [:time]``)."""
    body = line.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise HistoryError(f"{where}: expected an EDN map {{...}}")
    body = body[1:-1]
    fields: dict[str, Value] = {}
    pos = 0
    while pos < len(body):
        m = _EDN_ENTRY.match(body, pos)
        if m is None or m.end() == pos:
            raise HistoryError(f"{where}: cannot parse map entry at {body[pos:pos + 30]!r}")
        fields[m.group("k")] = parse_value(m.group("v"), where)
        pos = m.end()
    for k in ("process", "type", "f"):
        if k not in fields:
            raise HistoryError(f"{where}: missing :{k}")
    typ, f, key = fields["type"], fields["f"], fields.get("key")
    if not isinstance(typ, str) or typ.lstrip(":") not in EVENT_TYPES:
        raise HistoryError(f"{where}: bad :type {typ!r}")
    if not isinstance(f, str):
        raise HistoryError(f"{where}: bad :f {f!r}")
    if key is not None and not isinstance(key, (str, int)):
        raise HistoryError(f"{where}: bad :key {key!r}")
    proc = fields["process"]
    if not isinstance(proc, (int, str)) or isinstance(proc, bool):
        raise HistoryError(f"{where}: bad :process {proc!r}")
    time = fields.get("time")
    if time is not None and (not isinstance(time, int) or isinstance(time, bool)):
        raise HistoryError(f"{where}: bad :time {time!r}")
    return Event(
        process=proc if isinstance(proc, int) else proc.lstrip(":"),
        type=typ.lstrip(":"),
        f=f.lstrip(":"),
        key=None if key is None else str(key),
        value=fields.get("value"),
        time=-1 if time is None else time,
    )


def read_edn(path: str | Path) -> list[Event]:
    """Read an EDN history, one map per line; missing times become the line number."""
    events: list[Event] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            ev = parse_edn_line(line, f"{path}:{lineno}")
            if ev.time < 0:
                ev = Event(ev.process, ev.type, ev.f, ev.key, ev.value, lineno)
            events.append(ev)
    return events
