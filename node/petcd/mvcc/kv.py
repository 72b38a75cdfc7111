"""Values of the MVCC store and their encodings.

Stored value format (key bucket, under the revision key): a 36-byte header
`>qqqqI` (create_revision, mod_revision, version, lease, key length), then key, then value.
A tombstone stores a KeyValue with only `key` set.

`to_proto()` gives the bytes etcd's backend would hold for the same KeyValue (mvccpb.KeyValue,
gogoproto field order, zero fields omitted); HashKV hashes those, so petcd's HashKV equals
etcd's for the same history.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

_HDR = struct.Struct(">qqqqI")
HEADER_LEN = _HDR.size


@dataclass(slots=True)
class KeyValue:
    """One version of a key, as mvccpb.KeyValue. Treat as immutable once returned by the store
    (results may share objects with the store's caches in the future)."""

    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0


class EventType(IntEnum):
    """mvccpb.Event.EventType numbering."""

    PUT = 0
    DELETE = 1


@dataclass(slots=True)
class Event:
    """A change: the new KeyValue (PUT) or the deleted key with `mod_revision` set to the
    deletion's revision and every other field zero (DELETE), as etcd's watch events."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


@dataclass(slots=True)
class RangeResult:
    """`kvs` in key order; `count` is the number of keys in range (ignoring limit); `rev` is
    the store's revision the read was served at (for the response header)."""

    kvs: list[KeyValue]
    count: int
    rev: int


def encode_kv(kv: KeyValue) -> bytes:
    key = kv.key
    return (
        _HDR.pack(kv.create_revision, kv.mod_revision, kv.version, kv.lease, len(key))
        + key
        + kv.value
    )


def encode_fields(
    key: bytes, create: int, mod: int, version: int, value: bytes, lease: int
) -> bytes:
    return _HDR.pack(create, mod, version, lease, len(key)) + key + value


def decode_kv(data: bytes) -> KeyValue:
    """Inverse of `encode_kv`. Raises ValueError if `data` is too short."""
    if len(data) < HEADER_LEN:
        raise ValueError("mvcc: corrupt stored key-value")
    c, m, v, lease, kl = _HDR.unpack_from(data)
    end = HEADER_LEN + kl
    return KeyValue(data[HEADER_LEN:end], c, m, v, data[end:], lease)


def decode_header(data: bytes) -> tuple[bytes, int, int]:
    """(key, create_revision, version) without copying the value (index rebuild)."""
    c, _m, v, _lease, kl = _HDR.unpack_from(data)
    return data[HEADER_LEN : HEADER_LEN + kl], c, v


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def to_proto(kv: KeyValue) -> bytes:
    """mvccpb.KeyValue wire bytes exactly as etcd marshals them."""
    parts: list[bytes] = []
    if kv.key:
        parts += (b"\x0a", _varint(len(kv.key)), kv.key)
    if kv.create_revision:
        parts += (b"\x10", _varint(kv.create_revision))
    if kv.mod_revision:
        parts += (b"\x18", _varint(kv.mod_revision))
    if kv.version:
        parts += (b"\x20", _varint(kv.version))
    if kv.value:
        parts += (b"\x2a", _varint(len(kv.value)), kv.value)
    if kv.lease:
        parts += (b"\x30", _varint(kv.lease))
    return b"".join(parts)
