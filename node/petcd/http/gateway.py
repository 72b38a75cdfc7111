"""The gRPC-gateway JSON API on the client port (`POST /v3/<service>/<method>`), as etcd 3.5.1
serves it.

Like etcd's gateway, this one is a gRPC *client* of the member's own gRPC server (its private
address, see `petcd.http.mux`): every call passes through the same interceptors as a call
from etcdctl (auth, learner, quota, metrics), so the gateway cannot bypass a check. The
`Authorization` header is sent as the `authorization` metadata (the token etcd's auth reads)
and every `Grpc-Metadata-<Key>` header as metadata `<key>`, as grpc-gateway v1 does.

Encoding (grpc-gateway v1's JSONPb{OrigName}): original proto field names, int64 as strings,
bytes as base64, enums by name, fields with default values omitted. A request body is one JSON
object (empty body: the empty request; anything after the first value is ignored; unknown
fields are ignored), decoded into the method's request message.

Answers:
- unary: 200 and the response, or `{"error": msg, "code": grpc code, "message": msg}` with
  grpc-gateway's HTTP status for the code (`HTTP_STATUS`); a body that does not decode is
  code 3 (400).
- server streams (snapshot, observe) and bidirectional streams (watch, lease keep-alive):
  chunked, one `{"result": <response>}` line per message; an error ends the stream with a
  `{"error": {"grpc_code", "http_code", "message", "http_status"}}` line (and that HTTP status
  if nothing was sent before it). Nothing, not even the status line, is sent before the first
  message or the end of the stream. For a bidirectional method the body is a sequence of JSON
  objects, each sent as one request, then the sending side is closed (a watch keeps
  delivering; a keep-alive stream ends after its answers); if the first object does not
  decode the answer is code 2 (500), a later bad object just ends the sending.

Routes are declared as data by the gateway_* modules (`BINDINGS`: path, service, method);
`route_table()` builds them into one table and `add_routes(router, server, grpc_target)`
serves that table.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from petcd import errors
from petcd.api import deep
from petcd.http import (
    gateway_auth,
    gateway_concurrency,
    gateway_kv,
    gateway_lease,
    gateway_watch,
    gojson,
)
from petcd.http.http1 import JSON, Request, Response, Router, text_error
from petcd.server.etcdserver import EtcdServer

HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 408,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
"""grpc-gateway v1's HTTPStatusFromCode."""

SUCCESS_HEADERS = [("Grpc-Metadata-Content-Type", "application/grpc")]
"""The server's header metadata as grpc-gateway forwards it on answers that got one."""

METADATA_HEADER_PREFIX = "grpc-metadata-"
_METADATA_KEY = re.compile(r"[a-z0-9_.-]+")
MAX_MESSAGE_BYTES = 2**31 - 1
"""etcd's gateway client takes responses of any size (grpc.MaxCallRecvMsgSize(MaxInt32))."""


@dataclass(frozen=True, slots=True)
class Route:
    """One gateway path: the gRPC method (`/pkg.Service/Method`) it calls and its shapes."""

    method: str
    request_type: type[Message]
    response_type: type[Message]
    client_streaming: bool
    server_streaming: bool


def route(service: ServiceDescriptor, name: str) -> Route:
    """The route calling `service`'s method `name`."""
    m = service.methods_by_name[name]
    return Route(
        method=f"/{service.full_name}/{name}",
        request_type=message_factory.GetMessageClass(m.input_type),
        response_type=message_factory.GetMessageClass(m.output_type),
        client_streaming=m.client_streaming,
        server_streaming=m.server_streaming,
    )


def route_table() -> dict[str, Route]:
    """{path: Route} of every binding the gateway serves (the gateway_* modules' tables)."""
    return {
        path: route(service, name)
        for bindings in (
            gateway_kv.BINDINGS,
            gateway_lease.BINDINGS,
            gateway_watch.BINDINGS,
            gateway_auth.BINDINGS,
            gateway_concurrency.BINDINGS,
        )
        for path, service, name in bindings
    }


# -- encoding ---------------------------------------------------------------------------------


def to_json(msg: Message) -> str:
    """etcd's gateway encoding of one message."""
    d = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return json.dumps(d, separators=(",", ":"))


def error_body(code: grpc.StatusCode, message: str) -> bytes:
    return json.dumps(
        {"error": message, "code": code.value[0], "message": message}, separators=(",", ":")
    ).encode()


def error_response(code: grpc.StatusCode, message: str) -> Response:
    """A unary call's error as grpc-gateway v1's DefaultHTTPError writes it."""
    return Response(HTTP_STATUS.get(code, 500), error_body(code, message), JSON)


def stream_error_line(code: grpc.StatusCode, message: str) -> bytes:
    """The last line of a stream that ended with an error (grpc-gateway v1's StreamError)."""
    http = HTTP_STATUS.get(code, 500)
    err = {
        "grpc_code": code.value[0],
        "http_code": http,
        "message": message,
        "http_status": HTTPStatus(http).phrase,
    }
    return (json.dumps({"error": err}, separators=(",", ":")) + "\n").encode()


def result_line(msg: Message) -> bytes:
    return ('{"result":' + to_json(msg) + "}\n").encode()


DecodeError = gojson.GoJSONError
"""A request body that is not what the method takes; the text is etcd's error."""


def decode_one(body: bytes, request_type: type[Message]) -> Message:
    """A unary (or server-streaming) request: the first JSON value of the body, or the empty
    request if there is none."""
    for value in gojson.values(body):
        return gojson.to_message(value, request_type)
    return request_type()


def decode_stream(body: bytes, request_type: type[Message]) -> list[Message]:
    """A bidirectional stream's requests: every JSON object of the body up to the first that
    does not decode (`DecodeError` if that is the first)."""
    out: list[Message] = []
    try:
        for value in gojson.values(body):
            out.append(gojson.to_message(value, request_type))
    except DecodeError:
        if not out:
            raise
    return out


def too_large(msg: Message, limit: int) -> Response | None:
    """grpc-go's answer (via the gateway: 429) to a request whose encoding exceeds the gRPC
    server's receive limit; None if it fits. Checked here so the text is etcd's."""
    n = msg.ByteSize()
    if n <= limit:
        return None
    err = errors.message_too_large(n, limit)
    return error_response(err.code, err.message)


def metadata_of(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata grpc-gateway v1 derives from a request's headers: `Authorization`
    verbatim as `authorization`, `Grpc-Metadata-<Key>` as `<key>`. Keys or values gRPC cannot
    carry are dropped."""
    md: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not (value.isascii() and value.isprintable()):
            continue
        if name == "authorization":
            md.append(("authorization", value))
        elif name.startswith(METADATA_HEADER_PREFIX):
            key = name[len(METADATA_HEADER_PREFIX):]
            if _METADATA_KEY.fullmatch(key) and not key.startswith("grpc-") and \
                    not key.endswith("-bin"):
                md.append((key, value))
    return tuple(md)


# -- calling the member's gRPC server -----------------------------------------------------------


class Loopback:
    """A gRPC channel to the member's own gRPC server, opened on first use (it must be made on
    the event loop that serves the client port)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._channel: grpc.aio.Channel | None = None

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                self.target,
                options=[
                    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ],
            )
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


async def _relay(call: Any, first: Message) -> AsyncIterator[bytes]:
    """The chunks of a stream whose first message is `first`: result lines until the call
    ends, then an error line if it ended with one. Cancels the call if the client goes."""
    try:
        msg: Any = first
        while msg is not grpc.aio.EOF:
            yield result_line(msg)
            msg = await call.read()
    except grpc.aio.AioRpcError as err:
        yield stream_error_line(err.code(), err.details() or "")
    finally:
        call.cancel()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover - makes this an async generator


async def _open_stream(r: Route, ch: grpc.aio.Channel, req: Request,
                       md: tuple[tuple[str, str], ...], limit: int) -> Response:
    ser = r.request_type.SerializeToString
    des = functools.partial(deep.parse, r.response_type)
    if r.client_streaming:
        try:
            msgs = decode_stream(req.body, r.request_type)
        except DecodeError as exc:
            return error_response(grpc.StatusCode.UNKNOWN, str(exc))
        call: Any = ch.stream_stream(r.method, ser, des)(metadata=md)
        for m in msgs:
            await call.write(m)
        await call.done_writing()
    else:
        try:
            one = decode_one(req.body, r.request_type)
        except DecodeError as exc:
            return error_response(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        refused = too_large(one, limit)
        if refused is not None:
            return refused
        call = ch.unary_stream(r.method, ser, des)(one, metadata=md)
    try:
        first = await call.read()
    except grpc.aio.AioRpcError as err:
        status = HTTP_STATUS.get(err.code(), 500)
        line = stream_error_line(err.code(), err.details() or "")

        async def only() -> AsyncIterator[bytes]:
            yield line

        return Response(status, only(), JSON)
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        # A bidi stream that ended before its header was read carries no header metadata.
        return Response(200, _empty(), JSON, [] if r.client_streaming else SUCCESS_HEADERS)
    return Response(200, _relay(call, first), JSON, list(SUCCESS_HEADERS))


async def _unary(r: Route, ch: grpc.aio.Channel, req: Request,
                 md: tuple[tuple[str, str], ...], limit: int) -> Response:
    try:
        one = decode_one(req.body, r.request_type)
    except DecodeError as exc:
        return error_response(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    refused = too_large(one, limit)
    if refused is not None:
        return refused
    mc = ch.unary_unary(
        r.method, r.request_type.SerializeToString, functools.partial(deep.parse, r.response_type)
    )
    try:
        resp = await mc(one, metadata=md)
    except grpc.aio.AioRpcError as err:
        return error_response(err.code(), err.details() or "")
    return Response(200, to_json(resp).encode(), JSON, list(SUCCESS_HEADERS))


def add_routes(router: Router, server: EtcdServer, grpc_target: str) -> Loopback:
    """Serve every declared route under /v3/ (and /v3beta/, which etcd rewrites to /v3/) by
    calling the gRPC server at `grpc_target`; returns the loopback (close it on shutdown)."""
    from petcd.grpc_api.server import GRPC_OVERHEAD_BYTES

    routes = route_table()
    loop = Loopback(grpc_target)
    limit = server.max_request_bytes + GRPC_OVERHEAD_BYTES  # the gRPC server's receive limit

    async def handle(req: Request) -> Response:
        path = req.path
        if path.startswith("/v3beta/"):
            path = "/v3/" + path[len("/v3beta/"):]
        if req.method == "OPTIONS":  # CORS preflight: etcd answers it before routing
            return Response(200, b"", None)
        r = routes.get(path)
        if r is None:
            return text_error(404, "Not Found")
        if req.method != "POST":
            return text_error(405, "Method Not Allowed")
        md = metadata_of(req.headers)
        if r.client_streaming or r.server_streaming:
            return await _open_stream(r, loop.channel(), req, md, limit)
        return await _unary(r, loop.channel(), req, md, limit)

    router.add_prefix("/v3/", handle)
    router.add_prefix("/v3beta/", handle)
    return loop
