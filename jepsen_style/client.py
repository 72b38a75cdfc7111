"""A real etcd v3 client over grpc.aio, built on petcd's generated ``etcdserverpb`` stubs.

Contract:

* one :class:`EtcdClient` talks to exactly one member (one gRPC channel, its client URL), the way
  a Jepsen client process is bound to one node; every call carries its own deadline
  (``timeout`` seconds) and never waits for a connection (no wait-for-ready), so a dead or
  paused member costs at most one deadline per request;
* errors surface as :class:`ClientError` with the gRPC code and etcd's message and a
  :attr:`ClientError.definite` flag: True only when etcd guarantees the request did not take
  effect (it was rejected before being proposed); everything else (deadline, connection lost,
  ``request timed out``, ``leader changed``...) is an unknown outcome for a write;
* this module imports petcd's generated stubs, which register the ``etcdserverpb`` protobuf
  package: never import it in a process that imports aetcd (``petcd.api`` must be generated,
  ``python node/gen_protos.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc
import grpc.aio
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc

# Codes for which etcd rejects a request before proposing it, so it cannot have taken effect.
_DEFINITE_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.UNIMPLEMENTED,
})


class ClientError(Exception):
    """A failed request: ``code`` (gRPC status name), ``message`` and ``definite``."""

    def __init__(self, code: str, message: str, definite: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.definite = definite


def _wrap(exc: BaseException) -> ClientError:
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        return ClientError(code.name, exc.details() or "", code in _DEFINITE_CODES)
    if isinstance(exc, TimeoutError):
        return ClientError("DEADLINE_EXCEEDED", "client-side timeout", False)
    return ClientError(type(exc).__name__, str(exc), False)


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: ``type`` ``PUT`` or ``DELETE``; ``prev`` set when prev_kv was asked."""

    type: str
    kv: KeyValue
    prev: KeyValue | None


def _kv(m: Any) -> KeyValue:
    return KeyValue(m.key, m.value, m.create_revision, m.mod_revision, m.version, m.lease)


class EtcdClient:
    """A client bound to one member (see the module docstring)."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(urlsplit(url).netloc)
        self.kv = pb_grpc.KVStub(self.channel)  # type: ignore[no-untyped-call]
        self.watch_stub = pb_grpc.WatchStub(self.channel)  # type: ignore[no-untyped-call]
        self.lease_stub = pb_grpc.LeaseStub(self.channel)  # type: ignore[no-untyped-call]
        self.maint = pb_grpc.MaintenanceStub(self.channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self.channel.close(grace=None)

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, timeout=self.timeout if timeout is None else timeout)
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            raise _wrap(exc) from None

    # ---- KV ----------------------------------------------------------------------------------

    async def get(self, key: bytes, serializable: bool = False) -> tuple[KeyValue | None, int]:
        """The key's current kv (None if absent) and the response header revision."""
        resp = await self._call(self.kv.Range, pb.RangeRequest(key=key, serializable=serializable))
        kv = _kv(resp.kvs[0]) if resp.kvs else None
        return kv, int(resp.header.revision)

    async def get_prefix(self, prefix: bytes, serializable: bool = False) -> tuple[list[KeyValue], int]:
        resp = await self._call(self.kv.Range, pb.RangeRequest(
            key=prefix, range_end=prefix_end(prefix), serializable=serializable))
        return [_kv(k) for k in resp.kvs], int(resp.header.revision)

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        """Put; returns the revision of the write."""
        resp = await self._call(self.kv.Put, pb.PutRequest(key=key, value=value, lease=lease))
        return int(resp.header.revision)

    async def delete(self, key: bytes) -> int:
        resp = await self._call(self.kv.DeleteRange, pb.DeleteRangeRequest(key=key))
        return int(resp.deleted)

    async def cas(self, key: bytes, expected: bytes, new: bytes) -> tuple[bool, int]:
        """Txn: if value(key) == expected then put(key, new). Returns (succeeded, revision)."""
        cmp = pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.VALUE, key=key, value=expected)
        txn = pb.TxnRequest(compare=[cmp], success=[pb.RequestOp(
            request_put=pb.PutRequest(key=key, value=new))])
        resp = await self._call(self.kv.Txn, txn)
        return bool(resp.succeeded), int(resp.header.revision)

    async def txn_raw(self, request: Any) -> Any:
        """Send a prebuilt ``TxnRequest`` (for workloads that build their own)."""
        return await self._call(self.kv.Txn, request)

    async def compact(self, revision: int, physical: bool = False) -> None:
        await self._call(self.kv.Compact, pb.CompactionRequest(revision=revision, physical=physical),
                         timeout=max(self.timeout, 10.0))

    # ---- maintenance ---------------------------------------------------------------------------

    async def status(self) -> Any:
        return await self._call(self.maint.Status, pb.StatusRequest())

    async def defragment(self) -> None:
        await self._call(self.maint.Defragment, pb.DefragmentRequest(),
                         timeout=max(self.timeout, 30.0))

    # ---- lease ---------------------------------------------------------------------------------

    async def lease_grant(self, ttl: int) -> int:
        resp = await self._call(self.lease_stub.LeaseGrant, pb.LeaseGrantRequest(TTL=ttl))
        return int(resp.ID)

    async def lease_revoke(self, lease_id: int) -> None:
        await self._call(self.lease_stub.LeaseRevoke, pb.LeaseRevokeRequest(ID=lease_id))

    async def lease_ttl(self, lease_id: int) -> int:
        resp = await self._call(self.lease_stub.LeaseTimeToLive,
                                pb.LeaseTimeToLiveRequest(ID=lease_id))
        return int(resp.TTL)

    # ---- watch ---------------------------------------------------------------------------------

    async def watch(
        self, prefix: bytes, start_revision: int, prev_kv: bool = True
    ) -> AsyncIterator[tuple[int, list[WatchEvent]]]:
        """Watch ``prefix`` from ``start_revision``; yields ``(header revision, events)`` per
        response with events. Raises :class:`ClientError` when the stream breaks, is cancelled
        by the server (``compacted`` -> code ``OUT_OF_RANGE`` with the compact revision in the
        message) or the member is lost. The caller bounds it in time (cancel the iteration)."""
        req = pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=prefix, range_end=prefix_end(prefix), start_revision=start_revision,
            prev_kv=prev_kv))
        call = self.watch_stub.Watch(_OpenRequests(req), metadata=(("hasleader", "true"),))
        try:
            async for resp in call:
                if resp.canceled:
                    if resp.compact_revision:
                        raise ClientError("OUT_OF_RANGE",
                                          f"compacted: {resp.compact_revision}", True)
                    raise ClientError("CANCELLED", resp.cancel_reason or "watch canceled", False)
                if resp.events:
                    evs = [WatchEvent("DELETE" if e.type == 1 else "PUT", _kv(e.kv),
                                      _kv(e.prev_kv) if e.HasField("prev_kv") else None)
                           for e in resp.events]
                    yield int(resp.header.revision), evs
        except grpc.aio.AioRpcError as exc:
            raise _wrap(exc) from None
        finally:
            call.cancel()


class _OpenRequests:
    """A request stream that sends one request and then stays open: etcd ends a watch stream
    when the client half-closes. (A plain async generator here trips "aclose(): asynchronous
    generator is already running" when the call is cancelled.)"""

    def __init__(self, first: Any) -> None:
        self._first: Any = first
        self._never = asyncio.Event()

    def __aiter__(self) -> _OpenRequests:
        return self

    async def __anext__(self) -> Any:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        await self._never.wait()
        raise StopAsyncIteration


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range end for a prefix (``clientv3.GetPrefixRangeEnd``)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"
