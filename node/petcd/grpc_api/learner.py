"""Learners serve only Status and serializable Range, as etcd 3.5's interceptors enforce.

Every other RPC on a learner fails with "etcdserver: rpc not supported for learner". The
check runs per call (a learner may be promoted at any time) and costs one attribute lookup
on a voting member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from petcd import errors
from petcd.server.etcdserver import EtcdServer

Handler = Any  # grpc.RpcMethodHandler; its stub types do not fit the aio servicer signatures

_STATUS = "/etcdserverpb.Maintenance/Status"
_RANGE = "/etcdserverpb.KV/Range"


def _refuse(handler: Handler) -> Handler:
    err = errors.NOT_SUPPORTED_FOR_LEARNER

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(err.code, err.message)

    async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(err.code, err.message)
        yield  # pragma: no cover - makes this an async generator

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, des, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, des, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, des, ser)
    return grpc.stream_stream_rpc_method_handler(streaming, des, ser)


def _serializable_only(handler: Handler) -> Handler:
    inner: Callable[[Any, Any], Awaitable[Any]] = handler.unary_unary
    err = errors.NOT_SUPPORTED_FOR_LEARNER

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if not request.serializable:
            await context.abort(err.code, err.message)
        return await inner(request, context)

    return grpc.unary_unary_rpc_method_handler(
        unary, handler.request_deserializer, handler.response_serializer
    )


class LearnerInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(details)
        if handler is None or not self.server.is_learner_member():
            return handler
        method = details.method
        if method == _STATUS or method.startswith("/grpc.health"):
            return handler
        if method == _RANGE:
            return _serializable_only(handler)
        return _refuse(handler)
