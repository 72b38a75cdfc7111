"""Maintenance operations of one member: snapshot, hash, defragment, status, move-leader.

Snapshot file format (what `etcdctl snapshot save` writes and `petcd snapshot restore` reads):

    FILE_MAGIC (16 bytes) | u64 big-endian length N of the dump | dump (N bytes, the backend's
    `write_snapshot` format, itself ending in its own SHA-256) | zero padding to a multiple of
    512 bytes | SHA-256 of everything before it (32 bytes)

etcdctl 3.5.1 copies the Snapshot stream into a file and refuses it unless its size modulo 512
is 32 (etcd's bolt files are page-aligned and the server appends the SHA-256 of the data as the
last message); the padding gives petcd's files the same shape, so etcdctl's check and
etcdutl-style restore's integrity check both hold. The stream sends the padded body in 32 KiB
chunks with `remaining_bytes` counting down to 0, then the digest in a last message, as etcd.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import tempfile
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING

import crc32c
import grpc

from petcd import errors, metrics
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.server import alarms as alarms_mod
from petcd.storage import buckets

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

FILE_MAGIC = b"petcd-snapshot\x00\x01"
ALIGN = 512
DIGEST_LEN = 32
CHUNK = 32 * 1024
"""Bytes per Snapshot message (etcd's snapshotSendBufferSize)."""

"""etcd's ErrTimeoutLeaderTransfer (belongs in petcd.errors; kept here until moved)."""

_HASH_SKIP_BUCKETS = frozenset({buckets.META.id, buckets.RAFT_ENTRIES.id, buckets.RAFT_STATE.id})


class SnapshotFileError(ValueError):
    """A file given to restore is not an intact petcd snapshot."""


# -- snapshot file ----------------------------------------------------------------------------


def write_snapshot_file(server: EtcdServer, out: IO[bytes]) -> int:
    """Write the member's backend as a snapshot file body (no trailing digest) to `out`.

    Runs in a worker thread: the backend dump reads a LevelDB snapshot, so concurrent applies
    neither block nor leak into it. Returns the body length (a multiple of ALIGN).
    """
    out.write(FILE_MAGIC + b"\x00" * 8)
    n = server.backend.write_snapshot(out)
    out.seek(len(FILE_MAGIC))
    out.write(struct.pack(">Q", n))
    out.seek(0, os.SEEK_END)
    body = len(FILE_MAGIC) + 8 + n
    pad = (-body) % ALIGN
    out.write(b"\x00" * pad)
    return body + pad


def read_snapshot_file(data: bytes, skip_hash_check: bool = False) -> bytes:
    """The backend dump inside a snapshot file; SnapshotFileError if it is not intact."""
    has_digest = len(data) % ALIGN == DIGEST_LEN
    if has_digest:
        body, digest = data[:-DIGEST_LEN], data[-DIGEST_LEN:]
        if not skip_hash_check and hashlib.sha256(body).digest() != digest:
            raise SnapshotFileError(errors.SNAP_HASH_MISMATCH)
    elif not skip_hash_check:
        raise SnapshotFileError(errors.SNAP_HASH_MISSING)
    else:
        body = data
    head = len(FILE_MAGIC) + 8
    if len(body) < head or not body.startswith(FILE_MAGIC):
        raise SnapshotFileError(errors.SNAP_NOT_SNAPSHOT)
    (n,) = struct.unpack_from(">Q", body, len(FILE_MAGIC))
    if head + n > len(body):
        raise SnapshotFileError(errors.SNAP_TRUNCATED)
    return body[head : head + n]


async def snapshot_stream(server: EtcdServer) -> AsyncIterator[pb.SnapshotResponse]:
    """etcd's Maintenance.Snapshot: the padded body in chunks, then its SHA-256."""
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryFile(prefix="petcd-snap-") as f:
        with metrics.BACKEND_SNAPSHOT_SECONDS.time():
            total = await loop.run_in_executor(None, write_snapshot_file, server, f)
        f.seek(0)
        server.log.info("sending database snapshot to client", **{"total-bytes": total})
        h = hashlib.sha256()
        sent = 0
        while sent < total:
            blob = await loop.run_in_executor(None, f.read, CHUNK)
            if not blob:
                raise errors.EtcdError(grpc.StatusCode.INTERNAL, errors.SNAP_FILE_SHRANK)
            h.update(blob)
            sent += len(blob)
            yield pb.SnapshotResponse(remaining_bytes=total - sent, blob=blob)
        yield pb.SnapshotResponse(remaining_bytes=0, blob=h.digest())
        server.log.info("successfully sent database snapshot to client", **{"total-bytes": total})


# -- hash, defragment, status -----------------------------------------------------------------


def backend_hash(server: EtcdServer) -> int:
    """CRC-32C over every replicated state bucket (key and value bytes, in key order).

    Skips META (consistent index, term and the local member ID differ between members) and
    the Raft log buckets, so members at the same applied index report the same hash.
    """
    crc = 0
    for k, v in server.backend.iterate_snapshot():
        if k[0] in _HASH_SKIP_BUCKETS:
            continue
        crc = crc32c.crc32c(k, crc)
        crc = crc32c.crc32c(v, crc)
    return crc


async def hash_backend(server: EtcdServer) -> pb.HashResponse:
    rev = server.store.rev
    loop = asyncio.get_running_loop()
    with metrics.HASH_SECONDS.time():
        h = await loop.run_in_executor(None, backend_hash, server)
    return server.header(pb.HashResponse(hash=h), rev)


def compact_backend(server: EtcdServer) -> None:
    """Defragment the state machine's LevelDB (see `Backend.compact_range`)."""
    server.backend.compact_range()


async def defragment(server: EtcdServer) -> pb.DefragmentResponse:
    """etcd's Defragment; answers an empty response (no header), as etcd does."""
    server.log.info("starting defragment")
    with metrics.DEFRAG_SECONDS.time():
        compact_backend(server)
    a = alarms_mod.get(server)
    if a is not None:
        a.forget_size()
    server.log.info("finished defragment")
    return pb.DefragmentResponse()


def status(server: EtcdServer) -> pb.StatusResponse:
    """Status with etcd's `errors`: "etcdserver: no leader" and one entry per alarm."""
    resp = server.status()
    if server.leader_id == 0:
        resp.errors.append(errors.NO_LEADER.message)
    a = alarms_mod.get(server)
    if a is not None:
        resp.errors.extend(a.errors_text())
    return resp


# -- move leader ------------------------------------------------------------------------------


async def move_leader(server: EtcdServer, target: int) -> pb.MoveLeaderResponse:
    """Transfer leadership to `target` and wait until it leads (etcd's MoveLeader).

    Only the leader accepts it ("etcdserver: not leader"); the target must be a voting member
    ("etcdserver: bad leader transferee"); no new leader within the request timeout gives
    etcd's "leader transfer took too long".
    """
    if server.leader_id != server.id or not server.driver.started:
        raise errors.NOT_LEADER
    m = server.membership.members.get(target)
    if m is None or m.is_learner:
        raise errors.BAD_LEADER_TRANSFEREE
    if target == server.id:
        return server.header(pb.MoveLeaderResponse())
    server.log.info(
        "leadership transfer starting",
        **{"current-leader-member-id": f"{server.id:x}", "transferee-member-id": f"{target:x}"},
    )
    server.driver.transfer_leader(target)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + server.request_timeout
    tick = server.heartbeat_ms / 1000.0
    # etcd polls the leader once per tick too: leadership arrives through Raft messages.
    while server.leader_id != target:
        if loop.time() >= deadline:
            raise errors.TIMEOUT_LEADER_TRANSFER
        await asyncio.sleep(tick)
    server.log.info("leadership transfer finished", **{"new-leader-member-id": f"{target:x}"})
    return server.header(pb.MoveLeaderResponse())
