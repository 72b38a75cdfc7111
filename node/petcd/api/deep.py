"""Decode protobuf messages nested deeper than upb's limit of 100 levels.

etcd (Go, gogo-protobuf) has no nesting limit: a Txn nested 128 deep (`request_txn` inside
`request_txn`, bounded only by --max-txn-ops) is accepted, logged and applied. The upb runtime
refuses to parse more than 100 nested messages, and raising that limit globally lets a hostile
request of a few hundred KB overflow the C stack. So `parse` tries the fast upb parse first
and, only when that fails on depth, walks the wire format in Python down to sub-messages that
upb can take, bounded by `MAX_DEPTH` (far above anything the API accepts: a 128-deep txn is
~260 levels).

Contract: `parse(cls, data)` returns exactly what `cls.FromString(data)` would with no depth
limit (field order, unknown fields and merge semantics preserved), or raises `DecodeError`.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from petcd import errors

M = TypeVar("M", bound=Message)

MAX_DEPTH = 600
"""Message levels the Python walk descends before giving up (DecodeError)."""

_DEPTH_MARK = "MaxDepth"


def parse(cls: type[M], data: bytes) -> M:
    """`cls.FromString(data)` without upb's depth limit (see the module docstring)."""
    try:
        return cls.FromString(data)
    except DecodeError as exc:
        if _DEPTH_MARK not in str(exc):
            raise
    msg = cls()
    _merge(msg, memoryview(data), 0)
    return msg


def is_too_deep(exc: BaseException) -> bool:
    return _DEPTH_MARK in str(exc)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise DecodeError(errors.UNEXPECTED_EOF)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _merge(msg: Message, buf: memoryview, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(errors.PROTO_TOO_DEEP)
    fields = msg.DESCRIPTOR.fields_by_number
    pos, n = 0, len(buf)
    while pos < n:
        start = pos
        tag, pos = _varint(buf, pos)
        wire = tag & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            end = pos + size
            if end > n:
                raise DecodeError(errors.UNEXPECTED_EOF)
            fd = fields.get(tag >> 3)
            if (
                fd is not None
                and fd.type == FieldDescriptor.TYPE_MESSAGE
                and not fd.message_type.GetOptions().map_entry
            ):
                if fd.is_repeated:
                    sub = getattr(msg, fd.name).add()
                else:
                    sub = getattr(msg, fd.name)
                    sub.SetInParent()
                payload = buf[pos:end]
                try:
                    sub.MergeFromString(payload)
                except DecodeError as exc:
                    if not is_too_deep(exc):
                        raise
                    sub.Clear()
                    if not fd.is_repeated:
                        sub.SetInParent()
                    _merge(sub, payload, depth + 1)
                pos = end
                continue
            pos = end
        else:
            raise DecodeError(errors.PROTO_ILLEGAL_WIRE_TYPE)
        if pos > n:
            raise DecodeError(errors.UNEXPECTED_EOF)
        msg.MergeFromString(buf[start:pos])
