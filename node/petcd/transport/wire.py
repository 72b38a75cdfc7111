"""petcd's peer wire protocol: connection preamble, handshake and length-prefixed frames.

A peer connection is one-directional for Raft traffic: the dialing member sends, the listening
member receives. Byte layout::

    dialer  -> listener : MAGIC (8 bytes, starts with NUL so it never looks like HTTP)
    dialer  -> listener : frame(JSON Hello)
    listener -> dialer  : frame(JSON Reply)          -- accept, or refusal with etcd's reason
    dialer  -> listener : frame(message) ...          -- petcd.raft.codec bytes; empty = keepalive

``frame(b) = uint32 big-endian len(b) || b``. After the reply the listener never writes again,
so the dialer reading EOF means the link is gone. A listener that sees any other first byte
treats the connection as HTTP/1.1 (see :mod:`petcd.transport.http`).

Refusal reasons are etcd rafthttp's error strings (``petcd.errors.PEER_*``), so logs read
the same:
``cluster ID mismatch``, ``removed member`` (the dialer then reports
:data:`petcd.errors.MEMBER_REMOVED_EXIT`), ``to field mismatch``, ``incompatible version``.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass

from petcd.ids import format_id, parse_id

__all__ = [
    "MAGIC",
    "MAX_FRAME",
    "MAX_HANDSHAKE",
    "FrameError",
    "Hello",
    "Reply",
    "frame",
    "read_frame",
    "unpack_len",
]

MAGIC = b"\x00petcd/1"
#: Upper bound on one message frame; larger lengths are treated as corruption.
MAX_FRAME = 1 << 30
#: Upper bound on a handshake frame.
MAX_HANDSHAKE = 64 * 1024
PROTOCOL_VERSION = 1


_LEN = struct.Struct(">I")


def unpack_len(buf: bytes, offset: int) -> int:
    """The length prefix of the frame starting at `offset` of `buf` (4 bytes must be there)."""
    size: int = _LEN.unpack_from(buf, offset)[0]
    return size


class FrameError(ValueError):
    """Malformed bytes on a peer connection (bad magic, oversized frame, bad handshake)."""


def frame(payload: bytes) -> bytes:
    """Length-prefix ``payload``."""
    return _LEN.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_FRAME) -> bytes:
    """Read one frame. Raises FrameError when the length exceeds ``limit``;
    ``asyncio.IncompleteReadError`` on EOF."""
    (size,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    if size > limit:
        raise FrameError(f"frame of {size} bytes exceeds limit {limit}")
    return await reader.readexactly(size) if size else b""


def _json(payload: bytes) -> dict[str, object]:
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FrameError(f"bad handshake: {exc}") from None
    if not isinstance(doc, dict):
        raise FrameError("bad handshake: not an object")
    return doc


def _id_field(doc: dict[str, object], key: str) -> int:
    value = doc.get(key)
    if not isinstance(value, str):
        raise FrameError(f"bad handshake: missing {key}")
    try:
        return parse_id(value)
    except ValueError as exc:
        raise FrameError(f"bad handshake: {key}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Hello:
    """The dialer's introduction: who it is, whom it wants, which cluster it belongs to."""

    cluster_id: int
    frm: int
    to: int
    peer_urls: tuple[str, ...] = ()
    server_version: str = ""
    protocol: int = PROTOCOL_VERSION

    def encode(self) -> bytes:
        return json.dumps(
            {
                "protocol": self.protocol,
                "cluster_id": format_id(self.cluster_id),
                "from": format_id(self.frm),
                "to": format_id(self.to),
                "peer_urls": list(self.peer_urls),
                "server_version": self.server_version,
            }
        ).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Hello:
        doc = _json(payload)
        urls = doc.get("peer_urls", [])
        protocol = doc.get("protocol", 0)
        version = doc.get("server_version", "")
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise FrameError("bad handshake: peer_urls")
        if not isinstance(protocol, int) or not isinstance(version, str):
            raise FrameError("bad handshake: protocol/server_version")
        return cls(
            cluster_id=_id_field(doc, "cluster_id"),
            frm=_id_field(doc, "from"),
            to=_id_field(doc, "to"),
            peer_urls=tuple(urls),
            server_version=version,
            protocol=protocol,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """The listener's answer. ``error`` empty means accepted; else one of the `petcd.errors.PEER_*` strings."""

    error: str = ""
    cluster_id: int = 0

    @property
    def ok(self) -> bool:
        return not self.error

    def encode(self) -> bytes:
        return json.dumps({"error": self.error, "cluster_id": format_id(self.cluster_id)}).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Reply:
        doc = _json(payload)
        err = doc.get("error", "")
        if not isinstance(err, str):
            raise FrameError("bad handshake reply: error")
        return cls(error=err, cluster_id=_id_field(doc, "cluster_id"))
