"""Request decoding for every gRPC method: etcd's answers for bodies that do not decode.

grpcio answers a request whose deserializer raises with UNKNOWN "Unexpected <class ...>";
grpc-go (etcd) answers INTERNAL "grpc: error unmarshalling request: <go error>". And upb refuses
messages nested deeper than 100 levels, which etcd accepts (see `petcd.api.deep`).

`hardened(grpc_server)` is a stand-in for the grpc.aio server handed to the service
registrars: each method handler they register gets a deserializer that never raises (a body
that does not decode becomes an `Undecodable`) and a behaviour that answers an `Undecodable`
with etcd's status before the servicer sees it. A body over etcd's receive limit is one too:
RESOURCE_EXHAUSTED "grpc: received message larger than max (N vs. L)" in grpc-go's words. This is done once at registration, so a
well-formed request pays one isinstance check.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from petcd import errors
from petcd.api import deep
from petcd.api.etcdserverpb import rpc_pb2 as pb

Handler = Any  # grpc.RpcMethodHandler (a namedtuple)


class Undecodable:
    """A request body that did not decode; `error` is the status to answer with."""

    __slots__ = ("error",)

    def __init__(self, error: errors.EtcdError) -> None:
        self.error = error


_WIRE_OF_TYPE = {
    FieldDescriptor.TYPE_DOUBLE: 1, FieldDescriptor.TYPE_FIXED64: 1,
    FieldDescriptor.TYPE_SFIXED64: 1, FieldDescriptor.TYPE_FLOAT: 5,
    FieldDescriptor.TYPE_FIXED32: 5, FieldDescriptor.TYPE_SFIXED32: 5,
    FieldDescriptor.TYPE_STRING: 2, FieldDescriptor.TYPE_BYTES: 2,
    FieldDescriptor.TYPE_MESSAGE: 2,
}  # every other type is a varint (0)


def _go_name(field: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in field.split("_"))


def go_unmarshal_detail(data: bytes, desc: Any) -> str:
    """gogo-protobuf's error text for the first malformed field of `data` (a `desc` message),
    depth first as its generated Unmarshal methods go: truncation, bad tags, wrong wire types."""
    detail = _scan(data, desc, 0)
    return detail if detail is not None else errors.UNEXPECTED_EOF


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while True:
        if shift >= 64:
            return None
        if pos >= len(data):
            return None
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def _scan(data: bytes, desc: Any, depth: int) -> str | None:
    pos, n = 0, len(data)
    name = desc.name
    while pos < n:
        got = _read_varint(data, pos)
        if got is None:
            return errors.UNEXPECTED_EOF
        tag, pos = got
        wire, num = tag & 7, tag >> 3
        if wire == 4:
            return f"proto: {name}: wiretype end group for non-group"
        if num <= 0:
            return f"proto: {name}: illegal tag {num} (wire type {wire})"
        fd = desc.fields_by_number.get(num)
        if fd is not None:
            want = _WIRE_OF_TYPE.get(fd.type, 0)
            packed_ok = fd.is_repeated and want != 2 and wire == 2
            if wire != want and not packed_ok:
                return f"proto: wrong wireType = {wire} for field {_go_name(fd.name)}"
        elif wire in (3, 6, 7):
            return f"proto: illegal wireType {wire}"
        if wire == 0:
            got = _read_varint(data, pos)
            if got is None:
                return errors.UNEXPECTED_EOF
            pos = got[1]
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > n:
                return errors.UNEXPECTED_EOF
        else:
            got = _read_varint(data, pos)
            if got is None:
                return errors.UNEXPECTED_EOF
            size, pos = got
            if pos + size > n:
                return errors.UNEXPECTED_EOF
            if (fd is not None and fd.type == FieldDescriptor.TYPE_MESSAGE
                    and depth < deep.MAX_DEPTH):
                inner = _scan(data[pos:pos + size], fd.message_type, depth + 1)
                if inner is not None:
                    return inner
            pos += size
    return None


def _deserializer(des: Callable[[bytes], Any], limit: int) -> Callable[[bytes], Any]:
    owner = getattr(des, "__self__", None)
    if not (isinstance(owner, type) and issubclass(owner, Message)):

        def sized(data: bytes) -> Any:
            if len(data) > limit:
                return Undecodable(errors.message_too_large(len(data), limit))
            return des(data)

        return sized
    cls: type[Message] = owner

    def decode(data: bytes) -> Any:
        if len(data) > limit:
            return Undecodable(errors.message_too_large(len(data), limit))
        try:
            return deep.parse(cls, data)
        except DecodeError as exc:
            if deep.is_too_deep(exc) and cls is pb.TxnRequest:
                # Only a txn nests without bound; this deep it exceeds any --max-txn-ops.
                return Undecodable(errors.TOO_MANY_OPS)
            return Undecodable(errors.unmarshal_error(go_unmarshal_detail(data, cls.DESCRIPTOR)))

    return decode


async def _checked_stream(it: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
    async for req in it:
        if isinstance(req, Undecodable):
            await context.abort(req.error.code, req.error.message)
        yield req


def harden(handler: Handler, limit: int) -> Handler:
    """`handler` with etcd's answers for undecodable requests and for requests over `limit`
    bytes (see the module docstring)."""
    if handler is None or handler.request_deserializer is None:
        return handler
    des = _deserializer(handler.request_deserializer, limit)
    if handler.unary_unary is not None:
        uu = handler.unary_unary

        async def unary_unary(req: Any, context: Any) -> Any:
            if isinstance(req, Undecodable):
                await context.abort(req.error.code, req.error.message)
            return await uu(req, context)

        return handler._replace(request_deserializer=des, unary_unary=unary_unary)
    if handler.unary_stream is not None:
        us = handler.unary_stream

        if inspect.iscoroutinefunction(us):  # writes with context.write

            async def unary_stream_w(req: Any, context: Any) -> Any:
                if isinstance(req, Undecodable):
                    await context.abort(req.error.code, req.error.message)
                return await us(req, context)

            return handler._replace(request_deserializer=des, unary_stream=unary_stream_w)

        async def unary_stream(req: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(req, Undecodable):
                await context.abort(req.error.code, req.error.message)
            async for resp in us(req, context):
                yield resp

        return handler._replace(request_deserializer=des, unary_stream=unary_stream)
    if handler.stream_unary is not None:
        su = handler.stream_unary

        async def stream_unary(it: AsyncIterator[Any], context: Any) -> Any:
            return await su(_checked_stream(it, context), context)

        return handler._replace(request_deserializer=des, stream_unary=stream_unary)
    ss = handler.stream_stream

    if inspect.iscoroutinefunction(ss):  # writes with context.write

        async def stream_stream_w(it: AsyncIterator[Any], context: Any) -> Any:
            return await ss(_checked_stream(it, context), context)

        return handler._replace(request_deserializer=des, stream_stream=stream_stream_w)

    async def stream_stream(it: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for resp in ss(_checked_stream(it, context), context):
            yield resp

    return handler._replace(request_deserializer=des, stream_stream=stream_stream)


class _Generic(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    def service(self, details: grpc.HandlerCallDetails) -> Handler:
        return harden(self.inner.service(details), self.limit)


class _Table(grpc.GenericRpcHandler):
    """Every registered method's handler by full method name (`/service/Method`)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> Handler:
        return self.handlers.get(details.method)


class HardenedServer:
    """Forwards to a grpc.aio server; method handlers registered through it are hardened.
    `max_receive_bytes` is etcd's receive limit: the server's own (grpc core's) must be set
    above it, so that a larger message reaches the deserializer and gets grpc-go's text.

    Registered method handlers are served through ONE generic handler (a dict by method
    name, ahead of every other generic handler) instead of grpc.aio's registered methods:
    grpc.aio keeps one pending request future per registered method and runs `asyncio.wait`
    over all of them for every incoming call, which with etcd's ~50 methods cost a leader
    about 7% of its CPU under load (asyncio.wait's per-future callbacks and checks)."""

    def __init__(self, server: grpc.aio.Server, max_receive_bytes: int) -> None:
        self._server = server
        self._limit = max_receive_bytes
        self._table = _Table()
        server.add_generic_rpc_handlers([self._table])

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers([_Generic(h, self._limit) for h in handlers])

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self._table.handlers.update(
            {f"/{service}/{k}": harden(v, self._limit) for k, v in handlers.items()}
        )

    def plain(self) -> Any:
        """A stand-in that registers through the same table, unhardened (gRPC's own services,
        e.g. health)."""
        return _Plain(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _Plain:
    def __init__(self, hardened: HardenedServer) -> None:
        self._h = hardened

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._h._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self._h._table.handlers.update({f"/{service}/{k}": v for k, v in handlers.items()})
