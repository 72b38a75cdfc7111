"""Server interceptors for the client gRPC server: backend quota and gRPC metrics.

- `QuotaInterceptor`: before Put, Txn and LeaseGrant reach their servicer, runs the alarm
  subsystem's `check_write` (etcd's quotaKVServer/quotaLeaseServer), turning its `EtcdError`
  into the gRPC status etcd returns. Other methods pass through untouched.
- `MetricsInterceptor`: go-grpc-prometheus's counters (started, handled by code, messages
  received and sent) with its label names and values, for every method and stream type.

- `CachedChain`: runs those two, the learner restrictions and auth as ONE interceptor that
  builds each method's handler once (grpc.aio awaits every interceptor on every call).

The wrappers cost a few counter increments per RPC (label children are cached per method).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from petcd import errors, metrics
from petcd.server import alarms as alarms_mod
from petcd.server.etcdserver import EtcdServer

QUOTA_METHODS = frozenset(
    {"/etcdserverpb.KV/Put", "/etcdserverpb.KV/Txn", "/etcdserverpb.Lease/LeaseGrant"}
)

_CODE_NAMES = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}
"""grpc-go's code names (codes.Code.String()), the label values etcd's metrics carry."""

Handler = Any  # grpc.RpcMethodHandler (a namedtuple); its stubs do not fit aio behaviours
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]


class QuotaInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, server: EtcdServer) -> None:
        self.server = server

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(details)
        if handler is None or details.method not in QUOTA_METHODS or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        server = self.server

        async def checked(request: Any, context: Any) -> Any:
            a = alarms_mod.get(server)
            if a is not None:
                try:
                    await a.check_write(request)
                except errors.EtcdError as err:
                    await context.abort(err.code, err.message)
            return await inner(request, context)

        return handler._replace(unary_unary=checked)


def _code(context: Any, exc: BaseException | None) -> str:
    code = None
    try:
        code = context.code()
    except Exception:  # noqa: BLE001 - older grpc: no code() on aio contexts
        code = None
    if code is None:
        if exc is None:
            return "OK"
        if isinstance(exc, errors.EtcdError):
            return _CODE_NAMES.get(exc.code, "Unknown")
        return "Unknown"
    if isinstance(code, int):
        for sc in grpc.StatusCode:
            if sc.value[0] == code:
                return _CODE_NAMES.get(sc, "Unknown")
    return _CODE_NAMES.get(code, "Unknown")


class _Labels:
    __slots__ = ("labels", "received", "sent", "started")

    def __init__(self, kind: str, service: str, method: str) -> None:
        self.labels = (method, service, kind)  # sorted label names: method, service, type
        self.started = metrics.GRPC_STARTED.labels(*self.labels)
        self.received = metrics.GRPC_MSG_RECEIVED.labels(*self.labels)
        self.sent = metrics.GRPC_MSG_SENT.labels(*self.labels)

    def handled(self, code: str) -> None:
        metrics.GRPC_HANDLED.labels(code, *self.labels).inc()


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._cache: dict[str, _Labels] = {}

    def _labels(self, method: str, kind: str) -> _Labels:
        lab = self._cache.get(method)
        if lab is None:
            _, service, name = method.split("/", 2) if method.count("/") >= 2 else ("", "", method)
            lab = self._cache[method] = _Labels(kind, service, name)
        return lab

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            lab = self._labels(details.method, "unary")
            return handler._replace(unary_unary=_wrap_unary(handler.unary_unary, lab))
        if handler.unary_stream is not None:
            lab = self._labels(details.method, "server_stream")
            return handler._replace(unary_stream=_wrap_stream(handler.unary_stream, lab, False))
        if handler.stream_unary is not None:
            lab = self._labels(details.method, "client_stream")
            return handler._replace(stream_unary=_wrap_stream(handler.stream_unary, lab, True))
        if handler.stream_stream is not None:
            lab = self._labels(details.method, "bidi_stream")
            return handler._replace(stream_stream=_wrap_stream(handler.stream_stream, lab, True))
        return handler


def _wrap_unary(inner: Any, lab: _Labels) -> Any:
    async def run(request: Any, context: Any) -> Any:
        lab.started.inc()
        lab.received.inc()
        try:
            resp = await inner(request, context)
        except BaseException as exc:
            lab.handled(_code(context, exc))
            raise
        lab.sent.inc()
        lab.handled(_code(context, None))
        return resp

    return run


def _wrap_stream(inner: Any, lab: _Labels, client_streams: bool) -> Any:
    """Wrap a streaming behaviour. grpc.aio tells async behaviours from sync ones by the
    function's kind (async generator function, or coroutine function writing with
    `context.write`), so the wrapper is of the same kind as `inner`."""

    async def count_in(it: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for m in it:
            lab.received.inc()
            yield m

    def start(request: Any) -> Any:
        lab.started.inc()
        if client_streams and hasattr(request, "__aiter__"):
            return count_in(request)
        if not client_streams:
            lab.received.inc()
        return request

    if inspect.isasyncgenfunction(inner):

        async def gen(request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for m in inner(start(request), context):
                    lab.sent.inc()
                    yield m
            except BaseException as exc:
                lab.handled(_code(context, exc))
                raise
            lab.handled(_code(context, None))

        return gen

    async def coro(request: Any, context: Any) -> Any:
        try:
            out = await inner(start(request), context)
        except BaseException as exc:
            lab.handled(_code(context, exc))
            raise
        lab.handled(_code(context, None))
        return out

    return coro


def _const(handler: Handler) -> Continuation:
    async def continuation(details: grpc.HandlerCallDetails) -> Handler:
        return handler

    return continuation


async def _fold(chain: list[grpc.aio.ServerInterceptor], details: grpc.HandlerCallDetails,
                handler: Handler) -> Handler:
    """`handler` as `chain` (outermost first) would hand it to grpc."""
    for ic in reversed(chain):
        handler = await ic.intercept_service(_const(handler), details)
    return handler


class CachedChain(grpc.aio.ServerInterceptor):
    """The interceptor chain `outer + [learner switch] + inner`, built once per method.

    grpc.aio runs every interceptor's coroutine on every call, and each of petcd's built a new
    wrapper and handler tuple per call. The handlers they build depend only on the method (and
    on subsystems installed before the server starts), so this one interceptor builds them on
    a method's first call and hands out the same handler afterwards: one for a voting member
    and one as `learner.restrict` shapes it for a learner, picked per call because a learner
    can be promoted at any time. The registered handler grpc resolves is compared by identity,
    so a method whose handler is built anew per call (a generic handler) is rebuilt each time.
    """

    def __init__(self, outer: list[grpc.aio.ServerInterceptor],
                 inner: list[grpc.aio.ServerInterceptor],
                 is_learner: Callable[[], bool],
                 restrict: Callable[[str, Handler], Handler]) -> None:
        self._outer = outer
        self._inner = inner
        self._is_learner = is_learner
        self._restrict = restrict
        self._cache: dict[str, tuple[Handler, Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler:
        base = await continuation(details)
        if base is None:
            return None
        method = details.method
        hit = self._cache.get(method)
        if hit is None or hit[0] is not base:
            inner = await _fold(self._inner, details, base)
            voter = await _fold(self._outer, details, inner)
            learner = await _fold(self._outer, details, self._restrict(method, inner))
            hit = self._cache[method] = (base, voter, learner)
        return hit[2] if self._is_learner() else hit[1]
