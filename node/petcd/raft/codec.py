"""Compact binary encoding of Message for the peer transport (msgpack arrays).

Layout (version 1): a msgpack array
  [1, type, to, frm, term, log_term, index, commit, reject, reject_hint, context,
   entries, snapshot]
where `entries` is a flat array [term, index, type, data, term, index, type, data, ...] and
`snapshot` is nil or [index, term, [voters...], [learners...], data].
`decode_message` accepts only what `encode_message` produces and raises ValueError (never any
other exception) for anything else, including truncated input.
"""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]

from .types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)

VERSION = 1
_U64 = 1 << 64
_ENTRY_TYPES = {int(t): t for t in EntryType}
_MSG_TYPES = {int(t): t for t in MessageType}


def encode_message(m: Message) -> bytes:
    flat: list[Any] = []
    for e in m.entries:
        flat += (e.term, e.index, int(e.type), e.data)
    snap: list[Any] | None = None
    if m.snapshot is not None:
        md = m.snapshot.metadata
        cs = md.conf_state
        snap = [md.index, md.term, list(cs.voters), list(cs.learners), m.snapshot.data]
    out = msgpack.packb(
        [
            VERSION,
            int(m.type),
            m.to,
            m.frm,
            m.term,
            m.log_term,
            m.index,
            m.commit,
            m.reject,
            m.reject_hint,
            m.context,
            flat,
            snap,
        ],
        use_bin_type=True,
    )
    assert isinstance(out, bytes)
    return out


def _u64(x: object, what: str) -> int:
    if type(x) is not int or not 0 <= x < _U64:
        raise ValueError(f"raft codec: bad {what}")
    return x


def _bytes(x: object, what: str) -> bytes:
    if type(x) is not bytes:
        raise ValueError(f"raft codec: bad {what}")
    return x


def _ids(x: object, what: str) -> tuple[int, ...]:
    if type(x) is not list:
        raise ValueError(f"raft codec: bad {what}")
    return tuple(_u64(v, what) for v in x)


def decode_message(data: bytes) -> Message:
    """Inverse of encode_message. Raises ValueError on malformed input."""
    try:
        obj = msgpack.unpackb(
            data, use_list=True, raw=False, strict_map_key=True
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise ValueError(f"raft codec: undecodable message: {exc}") from None
    if type(obj) is not list or len(obj) != 13:
        raise ValueError("raft codec: not a message")
    if obj[0] != VERSION:
        raise ValueError("raft codec: unsupported version")
    mt = _MSG_TYPES.get(obj[1]) if type(obj[1]) is int else None
    if mt is None:
        raise ValueError("raft codec: bad message type")
    if type(obj[8]) is not bool:
        raise ValueError("raft codec: bad reject")
    flat = obj[11]
    if type(flat) is not list or len(flat) % 4:
        raise ValueError("raft codec: bad entries")
    ents: list[Entry] = []
    for i in range(0, len(flat), 4):
        et = _ENTRY_TYPES.get(flat[i + 2]) if type(flat[i + 2]) is int else None
        if et is None:
            raise ValueError("raft codec: bad entry type")
        ents.append(
            Entry(
                _u64(flat[i], "entry term"),
                _u64(flat[i + 1], "entry index"),
                et,
                _bytes(flat[i + 3], "entry data"),
            )
        )
    snap: Snapshot | None = None
    s = obj[12]
    if s is not None:
        if type(s) is not list or len(s) != 5:
            raise ValueError("raft codec: bad snapshot")
        cs = ConfState(_ids(s[2], "voters"), _ids(s[3], "learners"))
        md = SnapshotMetadata(_u64(s[0], "snapshot index"), _u64(s[1], "snapshot term"), cs)
        snap = Snapshot(md, _bytes(s[4], "snapshot data"))
    return Message(
        mt,
        to=_u64(obj[2], "to"),
        frm=_u64(obj[3], "from"),
        term=_u64(obj[4], "term"),
        log_term=_u64(obj[5], "log term"),
        index=_u64(obj[6], "index"),
        entries=ents,
        commit=_u64(obj[7], "commit"),
        snapshot=snap,
        reject=obj[8],
        reject_hint=_u64(obj[9], "reject hint"),
        context=_bytes(obj[10], "context"),
    )
