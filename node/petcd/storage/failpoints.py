"""Named failpoints (etcd's gofail points, by etcd's names), armed at start or at runtime.

Arming: ``PETCD_FAILPOINTS`` (read by `config.Settings`, armed by the CLI before the member
opens its data) is a list of ``name=terms`` separated by ``,`` or ``;`` (gofail's
``GOFAIL_FAILPOINTS`` uses ``;``); ``PETCD_FAILPOINTS_HTTP`` (``host:port``) serves gofail's HTTP
endpoint (`petcd.http.gofail`) to arm, list and disarm them while the member runs.

Terms are gofail's: ``<term> ("->" <term>)*``, a term is ``[<n>*|<p>%]... <action>[(<value>)]``
(``2*panic`` fires twice, ``50%sleep(10)`` half the time; the first term whose modifiers allow
it runs). Actions:

- ``panic``: write ``panic: failpoint panic: <name>`` to stderr and leave the process with exit
  code 2 at once (no cleanup, no flush of Python buffers: a crash, as Go's panic);
- ``sleep(<ms>)`` or ``sleep("<go duration>")``: delay the path through the point. A point on
  asyncio code delays only its task (as etcd's goroutine blocks), via `check`; a point on a
  worker thread or on synchronous code blocks that thread, via `failpoint`;
- ``error`` or ``return(<value>)``: raise `FailpointError` (in-process tests; at a request-path
  point the request fails with it, at a Raft-loop point the member ends with a fatal record);
- ``off``: do nothing (armed, counted); ``print``: write ``failpoint print: <name>`` to stdout;
- ``on`` and ``delay:<ms>``: the behaviour points below (petcd's, not etcd's).

Every name is in `NAMES` (the one list); arming any other name is refused (ValueError with
gofail's "failpoint does not exist"). Where each point sits:

| name | petcd's place (etcd's) |
|---|---|
| beforeCommit, afterCommit | around every LevelDB write (`Backend.write`; bbolt tx Commit) |
| beforeStartDBTxn, afterStartDBTxn | opening a store write txn (`KVStore.write`; bbolt Begin) |
| beforeWritebackBuf, afterWritebackBuf | publishing a write txn's revision to readers, before it is written (`WriteTxn.end`; batchTxBuffered.Unlock) |
| defragBeforeCopy, defragBeforeRename | before the table rewrite, and after it before the sentinel keys go (`Backend.compact_range`; defrag copy / rename) |
| compact* (six) | the store's compaction (`KVStore.compact`, as etcd's kvstore) |
| raftBeforeLeaderSend, raftBeforeFollowerSend | the Raft driver's sends, leader / follower |
| raftBeforeSaveSnap, raftAfterSaveSnap | around the durable save of a Ready carrying a snapshot (petcd saves the snapshot and the entries in one atomic write, so both *after* points follow that write) |
| raftBeforeSave, raftAfterSave | around every Ready's save (the driver) |
| raftBeforeApplySnap, raftAfterApplySnap | around handing a received snapshot to the state machine |
| raftAfterWALRelease | after the snapshot is applied (petcd's log dropped the old entries in the save) |
| applyBeforeOpenSnapshot | just before the state machine replaces its data by the snapshot |
| beforeApplyOneConfChange | before each conf-change entry is applied |
| beforeSendWatchResponse | before each watch response is written to its stream |
| beforeSyncWatchers | before each round of the unsynced-watcher sync task |

Behaviour points (the regression gate's deliberate-regression checks, `harness.gate`):

| name | action | effect |
|---|---|---|
| putDelay | ``delay:<ms>`` | every Put waits ``ms`` before it is proposed (a slow put path) |
| linearizableReadLocal | ``on`` | linearizable reads skip ReadIndex and read local state (unsafe) |

An unarmed point costs one truth test, so calls may sit on hot paths. Arming replaces the
table atomically; evaluation (modifier counters) is under a lock, so points on worker threads
and the HTTP endpoint on the event loop may race safely.
"""

from __future__ import annotations

import os
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field

from petcd import errors

ENV = "PETCD_FAILPOINTS"

BEFORE_COMMIT = "beforeCommit"
AFTER_COMMIT = "afterCommit"
BEFORE_START_DB_TXN = "beforeStartDBTxn"
AFTER_START_DB_TXN = "afterStartDBTxn"
BEFORE_WRITEBACK_BUF = "beforeWritebackBuf"
AFTER_WRITEBACK_BUF = "afterWritebackBuf"
DEFRAG_BEFORE_COPY = "defragBeforeCopy"
DEFRAG_BEFORE_RENAME = "defragBeforeRename"
COMPACT_BEFORE_COMMIT_SCHEDULED_COMPACT = "compactBeforeCommitScheduledCompact"
COMPACT_AFTER_COMMIT_SCHEDULED_COMPACT = "compactAfterCommitScheduledCompact"
COMPACT_BEFORE_COMMIT_BATCH = "compactBeforeCommitBatch"
COMPACT_AFTER_COMMIT_BATCH = "compactAfterCommitBatch"
COMPACT_BEFORE_SET_FINISHED_COMPACT = "compactBeforeSetFinishedCompact"
COMPACT_AFTER_SET_FINISHED_COMPACT = "compactAfterSetFinishedCompact"
RAFT_BEFORE_LEADER_SEND = "raftBeforeLeaderSend"
RAFT_BEFORE_FOLLOWER_SEND = "raftBeforeFollowerSend"
RAFT_BEFORE_SAVE_SNAP = "raftBeforeSaveSnap"
RAFT_AFTER_SAVE_SNAP = "raftAfterSaveSnap"
RAFT_BEFORE_SAVE = "raftBeforeSave"
RAFT_AFTER_SAVE = "raftAfterSave"
RAFT_BEFORE_APPLY_SNAP = "raftBeforeApplySnap"
RAFT_AFTER_APPLY_SNAP = "raftAfterApplySnap"
RAFT_AFTER_WAL_RELEASE = "raftAfterWALRelease"
APPLY_BEFORE_OPEN_SNAPSHOT = "applyBeforeOpenSnapshot"
BEFORE_APPLY_ONE_CONF_CHANGE = "beforeApplyOneConfChange"
BEFORE_SEND_WATCH_RESPONSE = "beforeSendWatchResponse"
BEFORE_SYNC_WATCHERS = "beforeSyncWatchers"
PUT_DELAY = "putDelay"
LINEARIZABLE_READ_LOCAL = "linearizableReadLocal"

NAMES: tuple[str, ...] = (
    BEFORE_COMMIT, AFTER_COMMIT, BEFORE_START_DB_TXN, AFTER_START_DB_TXN,
    BEFORE_WRITEBACK_BUF, AFTER_WRITEBACK_BUF, DEFRAG_BEFORE_COPY, DEFRAG_BEFORE_RENAME,
    COMPACT_BEFORE_COMMIT_SCHEDULED_COMPACT, COMPACT_AFTER_COMMIT_SCHEDULED_COMPACT,
    COMPACT_BEFORE_COMMIT_BATCH, COMPACT_AFTER_COMMIT_BATCH,
    COMPACT_BEFORE_SET_FINISHED_COMPACT, COMPACT_AFTER_SET_FINISHED_COMPACT,
    RAFT_BEFORE_LEADER_SEND, RAFT_BEFORE_FOLLOWER_SEND, RAFT_BEFORE_SAVE_SNAP,
    RAFT_AFTER_SAVE_SNAP, RAFT_BEFORE_SAVE, RAFT_AFTER_SAVE, RAFT_BEFORE_APPLY_SNAP,
    RAFT_AFTER_APPLY_SNAP, RAFT_AFTER_WAL_RELEASE, APPLY_BEFORE_OPEN_SNAPSHOT,
    BEFORE_APPLY_ONE_CONF_CHANGE, BEFORE_SEND_WATCH_RESPONSE, BEFORE_SYNC_WATCHERS,
    PUT_DELAY, LINEARIZABLE_READ_LOCAL,
)  # fmt: skip
"""Every failpoint, etcd's names first (this is the one list; `GET /` of the endpoint lists it)."""

BEHAVIOUR_POINTS = frozenset({PUT_DELAY, LINEARIZABLE_READ_LOCAL})


class FailpointError(RuntimeError):
    """Raised by a failpoint armed with `error` or `return(...)`."""


@dataclass(slots=True)
class _Term:
    desc: str
    action: str
    value: object
    counts: list[int] = field(default_factory=list)  # remaining fires per `n*` modifier
    probs: tuple[float, ...] = ()

    def allow(self) -> bool:
        if any(random.random() > p for p in self.probs):
            return False
        if any(c <= 0 for c in self.counts):
            return False
        for i in range(len(self.counts)):
            self.counts[i] -= 1
        return True


@dataclass(slots=True)
class _Terms:
    desc: str
    chain: list[_Term]
    hits: int = 0


_TERM = re.compile(
    r"(?P<mods>(?:\d+(?:\.\d*)?%|\d+\*)*)(?P<act>off|return|sleep|panic|print|error|on)"
    r"(?:\((?P<val>\"(?:[^\"\\]|\\.)*\"|-?\d+|true|false|)\))?"
)
_DELAY = re.compile(r"delay:(?P<ms>\d+(?:\.\d*)?)")
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_DELAY_MS = 60_000


def _go_duration(text: str) -> float | None:
    """Seconds of a Go duration such as ``1s`` or ``1.5s`` or ``100ms`` (None if malformed)."""
    pos, total = 0, 0.0
    for m in _GO_DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and text else None


def parse_terms(desc: str) -> _Terms:
    """gofail's terms (see the module docstring); ValueError with gofail's text if malformed."""
    chain: list[_Term] = []
    rest = desc.strip()
    if rest.startswith("delay:") and (d := _DELAY.fullmatch(rest)) is not None:
        if float(d.group("ms")) > MAX_DELAY_MS:
            raise ValueError(errors.FAILPOINT_BAD_PARSE)
        return _Terms(rest, [_Term(rest, "delay", float(d.group("ms")))])
    while rest:
        m = _TERM.match(rest)
        if m is None:
            raise ValueError(errors.FAILPOINT_BAD_PARSE)
        counts: list[int] = []
        probs: list[float] = []
        for mod in re.findall(r"\d+(?:\.\d*)?[%*]", m.group("mods")):
            if mod.endswith("*"):
                counts.append(int(mod[:-1]))
            else:
                probs.append(float(mod[:-1]) / 100.0)
        act, raw = m.group("act"), m.group("val")
        value: object = None
        if raw:
            value = raw[1:-1] if raw.startswith('"') else (
                raw == "true" if raw in ("true", "false") else int(raw))
        if act == "sleep":
            secs = (int(value) / 1000.0 if isinstance(value, int) and not isinstance(value, bool)
                    else _go_duration(value) if isinstance(value, str) else None)
            if secs is None or secs < 0 or secs > MAX_DELAY_MS / 1000.0:
                raise ValueError(errors.FAILPOINT_BAD_PARSE)
            value = secs
        chain.append(_Term(m.group(0), act, value, counts, tuple(probs)))
        rest = rest[m.end():]
        if rest:
            if not rest.startswith("->"):
                raise ValueError(errors.FAILPOINT_BAD_PARSE)
            rest = rest[2:]
    if not chain:
        raise ValueError(errors.FAILPOINT_BAD_PARSE)
    return _Terms(desc.strip(), chain)


_armed: dict[str, _Terms] = {}
_lock = threading.Lock()


def _split(spec: str) -> list[str]:
    """Split `spec` at `,` and `;` outside quotes and parentheses."""
    out: list[str] = []
    cur: list[str] = []
    depth, quoted = 0, False
    for ch in spec:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch in ",;":
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [t.strip() for t in out if t.strip()]


def parse(spec: str) -> dict[str, str]:
    """Parse ``a=panic,b=sleep(100)`` into name -> terms. ValueError (naming ``ENV``) on an
    unknown name, a malformed entry or terms that do not parse."""
    out: dict[str, str] = {}
    for entry in _split(spec):
        name, sep, terms = entry.partition("=")
        name, terms = name.strip(), terms.strip()
        try:
            if not sep or not name:
                raise ValueError(errors.FAILPOINT_BAD_ENTRY.format(entry=entry))
            if name not in NAMES:
                raise ValueError(errors.FAILPOINT_NO_EXIST)
            parse_terms(terms)
        except ValueError as exc:
            raise ValueError(errors.FAILPOINT_ENV_ENTRY.format(env=ENV, entry=entry, error=exc)) from None
        out[name] = terms
    return out


def reload(spec: str = "") -> None:
    """Arm exactly the failpoints in `spec` (the CLI passes ``Settings.failpoints``)."""
    global _armed
    table = {name: parse_terms(terms) for name, terms in parse(spec).items()}
    with _lock:
        _armed = table


def enable(name: str, terms: str) -> None:
    """Arm `name` with `terms` (gofail's Enable); ValueError if unknown or malformed."""
    global _armed
    if name not in NAMES:
        raise ValueError(errors.FAILPOINT_NO_EXIST)
    parsed = parse_terms(terms)
    with _lock:
        _armed = {**_armed, name: parsed}


def disable(name: str) -> None:
    """Disarm `name` (gofail's Disable); ValueError if unknown or not armed."""
    global _armed
    if name not in NAMES:
        raise ValueError(errors.FAILPOINT_NO_EXIST)
    with _lock:
        if name not in _armed:
            raise ValueError(errors.FAILPOINT_DISABLED)
        _armed = {k: v for k, v in _armed.items() if k != name}


def armed() -> dict[str, str]:
    """name -> terms of every armed failpoint."""
    return {k: v.desc for k, v in _armed.items()}


def status(name: str) -> tuple[str, int]:
    """(terms, times it fired) of an armed `name`; ValueError if unknown or not armed."""
    if name not in NAMES:
        raise ValueError(errors.FAILPOINT_NO_EXIST)
    t = _armed.get(name)
    if t is None:
        raise ValueError(errors.FAILPOINT_DISABLED)
    return t.desc, t.hits


def armed_point(name: str) -> bool:
    """True when `name` is armed (whatever its terms)."""
    return bool(_armed) and name in _armed


def is_on(name: str) -> bool:
    """True when behaviour point `name` is armed with `on`."""
    t = _armed.get(name) if _armed else None
    return t is not None and t.chain[0].action == "on"


def delay_seconds(name: str) -> float:
    """Seconds delay point `name` should wait (0.0 when not armed with ``delay:<ms>``)."""
    t = _armed.get(name) if _armed else None
    if t is None or t.chain[0].action != "delay":
        return 0.0
    return float(t.chain[0].value) / 1000.0  # type: ignore[arg-type]


def check(name: str) -> float:
    """Evaluate `name` where the caller awaits: panics or raises as armed, and returns the
    seconds the caller must ``await asyncio.sleep`` for a `sleep` action (0.0 otherwise)."""
    if not _armed:
        return 0.0
    t = _armed.get(name)
    if t is None:
        return 0.0
    with _lock:
        term = next((x for x in t.chain if x.allow()), None)
        if term is None:
            return 0.0
        t.hits += 1
    action = term.action
    if action == "panic":
        sys.stderr.write(errors.FAILPOINT_PANIC.format(name=name) + "\n")
        sys.stderr.flush()
        os._exit(2)
    if action in ("error", "return"):
        raise FailpointError(name if term.value is None else f"{name}: {term.value}")
    if action == "sleep":
        return float(term.value)  # type: ignore[arg-type]
    if action == "print":
        sys.stdout.write(f"failpoint print: {name}\n")
        sys.stdout.flush()
    return 0.0


def failpoint(name: str) -> None:
    """Trigger `name` on synchronous code: as `check`, a `sleep` blocking this thread."""
    if not _armed:
        return
    delay = check(name)
    if delay > 0:
        time.sleep(delay)  # gofail's sleep: the calling thread (goroutine) blocks
