"""gRPC servicers for KV, Cluster and Maintenance: validate -> server -> header -> errors.

Each method is a thin adapter. `EtcdError`s become a gRPC status with etcd's code and message;
anything else is a bug and surfaces as UNKNOWN with the exception text (never a crash).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc
from petcd.grpc_api import validate
from petcd.server import alarms, maintenance
from petcd.server.etcdserver import EtcdServer

T = TypeVar("T")


async def _call(context: grpc.aio.ServicerContext[Any, Any], coro: Awaitable[T]) -> T:
    try:
        return await coro
    except errors.EtcdError as err:
        await context.abort(err.code, err.message)
        raise  # unreachable: abort raises


def _check(
    context: grpc.aio.ServicerContext[Any, Any], fn: Callable[[], None]
) -> errors.EtcdError | None:
    try:
        fn()
    except errors.EtcdError as err:
        return err
    return None


class KVService(pb_grpc.KVServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.s = server

    async def Range(self, request: pb.RangeRequest, context: Any) -> pb.RangeResponse:
        if (err := _check(context, lambda: validate.check_range(request))) is not None:
            await context.abort(err.code, err.message)
        return await _call(context, self.s.range(request))

    async def Put(self, request: pb.PutRequest, context: Any) -> pb.PutResponse:
        if (err := _check(context, lambda: validate.check_put(request))) is not None:
            await context.abort(err.code, err.message)
        return await _call(context, self.s.put(request))

    async def DeleteRange(
        self, request: pb.DeleteRangeRequest, context: Any
    ) -> pb.DeleteRangeResponse:
        if (err := _check(context, lambda: validate.check_delete(request))) is not None:
            await context.abort(err.code, err.message)
        return await _call(context, self.s.delete_range(request))

    async def Txn(self, request: pb.TxnRequest, context: Any) -> pb.TxnResponse:
        chk = lambda: validate.check_txn(request, self.s.max_txn_ops)
        if (err := _check(context, chk)) is not None:
            await context.abort(err.code, err.message)
        return await _call(context, self.s.txn(request))

    async def Compact(self, request: pb.CompactionRequest, context: Any) -> pb.CompactionResponse:
        return await _call(context, self.s.compact(request))


class ClusterService(pb_grpc.ClusterServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.c = server.cluster

    async def MemberAdd(self, request: pb.MemberAddRequest, context: Any) -> pb.MemberAddResponse:
        return await _call(context, self.c.member_add(request))

    async def MemberRemove(
        self, request: pb.MemberRemoveRequest, context: Any
    ) -> pb.MemberRemoveResponse:
        return await _call(context, self.c.member_remove(request))

    async def MemberUpdate(
        self, request: pb.MemberUpdateRequest, context: Any
    ) -> pb.MemberUpdateResponse:
        return await _call(context, self.c.member_update(request))

    async def MemberList(
        self, request: pb.MemberListRequest, context: Any
    ) -> pb.MemberListResponse:
        return await _call(context, self.c.member_list(request.linearizable))

    async def MemberPromote(
        self, request: pb.MemberPromoteRequest, context: Any
    ) -> pb.MemberPromoteResponse:
        return await _call(context, self.c.member_promote(request))


class MaintenanceService(pb_grpc.MaintenanceServicer):
    """etcd's Maintenance service; the work lives in `petcd.server.maintenance` and `alarms`."""

    def __init__(self, server: EtcdServer) -> None:
        self.s = server

    async def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        return maintenance.status(self.s)

    async def Alarm(self, request: pb.AlarmRequest, context: Any) -> pb.AlarmResponse:
        a = alarms.get(self.s)
        if a is None:
            return self.s.header(pb.AlarmResponse())
        return await _call(context, a.alarm(request))

    async def Hash(self, request: pb.HashRequest, context: Any) -> pb.HashResponse:
        return await _call(context, maintenance.hash_backend(self.s))

    async def HashKV(self, request: pb.HashKVRequest, context: Any) -> pb.HashKVResponse:
        return await _call(context, _async(lambda: self.s.hash_kv(request.revision)))

    async def Defragment(
        self, request: pb.DefragmentRequest, context: Any
    ) -> pb.DefragmentResponse:
        return await _call(context, maintenance.defragment(self.s))

    async def Snapshot(
        self, request: pb.SnapshotRequest, context: Any
    ) -> AsyncIterator[pb.SnapshotResponse]:
        try:
            async for chunk in maintenance.snapshot_stream(self.s):
                yield chunk
        except errors.EtcdError as err:
            await context.abort(err.code, err.message)

    async def MoveLeader(
        self, request: pb.MoveLeaderRequest, context: Any
    ) -> pb.MoveLeaderResponse:
        return await _call(context, maintenance.move_leader(self.s, request.targetID))


async def _async(fn: Callable[[], T]) -> T:
    return fn()


def register(gs: grpc.aio.Server, server: EtcdServer) -> None:
    pb_grpc.add_KVServicer_to_server(KVService(server), gs)
    pb_grpc.add_ClusterServicer_to_server(ClusterService(server), gs)
    pb_grpc.add_MaintenanceServicer_to_server(MaintenanceService(server), gs)
