"""Structured JSON-lines logging in the shape of etcd's zap production output.

Each record is one line::

    {"level":"info","ts":"2026-11-21T18:05:00.845Z","caller":"petcd/assembly.py:72",
     "msg":"...", <bound fields>, <call fields>}

Contract:

* levels, lowest first: ``debug``, ``info``, ``warn``, ``error``, ``panic``, ``fatal``
  (``dpanic`` is accepted as a level name and treated like ``panic``); records below the
  logger's level are dropped before any formatting work;
* ``ts`` is UTC ISO-8601 with milliseconds and a ``Z`` suffix (etcd 3.5's encoder);
* ``caller`` is ``<package dir>/<file>:<line>`` of the code that called the log method;
* field values go through ``json.dumps``; anything not JSON-native is rendered with ``str``
  (exceptions therefore appear as their message, as zap's ``zap.Error`` does);
* ``fatal`` writes the record and raises :class:`FatalError`; callers (the CLI) exit 1;
* writes are whole lines under a lock, so concurrent threads never interleave records.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from petcd import errors

__all__ = ["LEVELS", "FatalError", "Logger", "new_logger"]

LEVELS: dict[str, int] = {
    "debug": -1,
    "info": 0,
    "warn": 1,
    "error": 2,
    "dpanic": 3,
    "panic": 4,
    "fatal": 5,
}


class FatalError(Exception):
    """Raised after a ``fatal`` record is written; ``str(e)`` is the message."""


def _timestamp(now: float) -> str:
    secs = int(now)
    ms = int((now - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"


def _caller(depth: int) -> str:
    frame = sys._getframe(depth)
    path = frame.f_code.co_filename
    parent = os.path.basename(os.path.dirname(path))
    return f"{parent}/{os.path.basename(path)}:{frame.f_lineno}"


class _Sink:
    """A shared, locked set of output streams."""

    def __init__(self, streams: Sequence[IO[str]]) -> None:
        self.streams = list(streams)
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            for stream in self.streams:
                try:
                    stream.write(line)
                    stream.flush()
                except (OSError, ValueError):
                    # A closed or broken log stream must never take the node down.
                    pass


class Logger:
    """A zap-like structured logger. Create with :func:`new_logger`; derive with ``with_``."""

    def __init__(self, sink: _Sink, level: int, fields: dict[str, Any] | None = None) -> None:
        self._sink = sink
        self._level = level
        self._fields: dict[str, Any] = dict(fields or {})

    @property
    def level(self) -> str:
        return next(name for name, num in LEVELS.items() if num == self._level)

    def enabled(self, level: str) -> bool:
        """True when records at ``level`` would be written."""
        return LEVELS[level] >= self._level

    def with_(self, **fields: Any) -> Logger:
        """A child logger that adds ``fields`` to every record (zap's ``With``)."""
        return Logger(self._sink, self._level, {**self._fields, **fields})

    def log(self, level: str, msg: str, /, _depth: int = 2, **fields: Any) -> None:
        """Write one record at ``level`` (a key of LEVELS)."""
        if LEVELS[level] < self._level:
            return
        record: dict[str, Any] = {
            "level": level,
            "ts": _timestamp(time.time()),
            "caller": _caller(_depth),
            "msg": msg,
        }
        for key, value in (*self._fields.items(), *fields.items()):
            record[key] = value
        line = json.dumps(record, default=str, ensure_ascii=False, separators=(",", ":"))
        self._sink.write(line + "\n")

    def debug(self, msg: str, /, **fields: Any) -> None:
        self.log("debug", msg, _depth=3, **fields)

    def info(self, msg: str, /, **fields: Any) -> None:
        self.log("info", msg, _depth=3, **fields)

    def warning(self, msg: str, /, **fields: Any) -> None:
        """A ``warn``-level record (zap's level name is ``warn``)."""
        self.log("warn", msg, _depth=3, **fields)

    warn = warning

    def error(self, msg: str, /, **fields: Any) -> None:
        self.log("error", msg, _depth=3, **fields)

    def fatal(self, msg: str, /, **fields: Any) -> None:
        """Write a fatal record, then raise FatalError(msg)."""
        self.log("fatal", msg, _depth=3, **fields)
        raise FatalError(msg)


def new_logger(
    level: str = "info",
    outputs: Sequence[str] = ("default",),
    stream: IO[str] | None = None,
) -> Logger:
    """A logger at ``level`` writing to etcd-style ``outputs``.

    ``outputs`` entries: ``default``/``stderr`` (stderr), ``stdout``, or a file path (appended).
    ``stream`` overrides all outputs (tests). Raises ValueError for an unknown level, with
    etcd's wording ``unrecognized level: "x"``.
    """
    if level not in LEVELS:
        raise ValueError(errors.CFG_UNRECOGNIZED_LEVEL.format(level=level))
    streams: list[IO[str]] = []
    if stream is not None:
        streams.append(stream)
    else:
        for out in dict.fromkeys(outputs):
            if out in ("default", "stderr"):
                streams.append(sys.stderr)
            elif out == "stdout":
                streams.append(sys.stdout)
            else:
                streams.append(open(out, "a", encoding="utf-8"))  # noqa: SIM115 - lives with logger
    return Logger(_Sink(streams), LEVELS[level])
