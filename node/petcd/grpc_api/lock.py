"""gRPC v3lockpb.Lock service (etcd's `v3lock/lock.go`): a thin adapter over
`petcd.server.concurrency`.

etcd serves this service through an in-process clientv3, so every failure reaches the
client as status UNKNOWN with etcd's message (e.g. "etcdserver: requested lease not found");
`call` reproduces that. A client that cancels a waiting Lock (or whose deadline passes)
cancels the handler, and the concurrency layer deletes the key it queued.

Each RPC sets `concurrency.REQUEST_GUARD` (`auth.request_guard`), so the KV and lease requests
it makes are checked against the caller's token as if the caller had sent them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.v3lockpb import v3lock_pb2 as lpb
from petcd.api.v3lockpb import v3lock_pb2_grpc as lpb_grpc
from petcd.grpc_api import validate
from petcd.grpc_api.auth import request_guard
from petcd.server.concurrency import REQUEST_GUARD, Concurrency
from petcd.server.etcdserver import EtcdServer

T = TypeVar("T")


async def call(context: grpc.aio.ServicerContext[Any, Any], coro: Awaitable[T]) -> T:
    """Await `coro`; an `EtcdError` aborts the RPC with UNKNOWN and its message, as etcd's
    clientv3-backed services do."""
    try:
        return await coro
    except errors.EtcdError as err:
        await context.abort(grpc.StatusCode.UNKNOWN, err.message)
        raise  # unreachable: abort raises


def guard_as_caller(conc: Concurrency, context: Any) -> None:
    """Check every request `conc` issues in this RPC as the caller's (auth). grpc.aio runs
    each RPC in a task of its own, so the context variable is confined to this call and the
    cleanup tasks it spawns."""
    guard = request_guard(conc.s, context)
    if guard is not None:
        REQUEST_GUARD.set(guard)


class LockService(lpb_grpc.LockServicer):
    def __init__(self, conc: Concurrency) -> None:
        self.c = conc

    async def Lock(self, request: lpb.LockRequest, context: Any) -> lpb.LockResponse:
        guard_as_caller(self.c, context)
        hdr, key = await call(context, self.c.lock(request.name, request.lease))
        return lpb.LockResponse(header=hdr, key=key)

    async def Unlock(self, request: lpb.UnlockRequest, context: Any) -> lpb.UnlockResponse:
        try:
            validate.check_delete(pb.DeleteRangeRequest(key=request.key))
        except errors.EtcdError as err:
            await context.abort(grpc.StatusCode.UNKNOWN, err.message)
        guard_as_caller(self.c, context)
        hdr = await call(context, self.c.unlock(request.key))
        return lpb.UnlockResponse(header=hdr)


def register(gs: grpc.aio.Server, server: EtcdServer) -> None:
    lpb_grpc.add_LockServicer_to_server(LockService(Concurrency(server)), gs)
