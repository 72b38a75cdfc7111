"""Learners serve only Status and serializable Range, as etcd 3.5's interceptors enforce.

Every other RPC on a learner fails with "etcdserver: rpc not supported for learner".
`restrict` builds the learner's version of a method handler; the server's interceptor chain
(`interceptors.CachedChain`) builds it once per method and picks it per call, because a learner
may be promoted at any time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from petcd import errors

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


def restrict(method: str, handler: Handler) -> Handler:
    """`handler` as a learner serves `method`: unchanged, serializable reads only, or refused."""
    if handler is None or method == _STATUS or method.startswith("/grpc.health"):
        return handler
    if method == _RANGE:
        return _serializable_only(handler)
    return _refuse(handler)
