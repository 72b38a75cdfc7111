"""The gRPC-gateway JSON API on the client port (`POST /v3/<service>/<method>`).

Each route decodes the JSON body into the request message (proto3 JSON: int64 as strings or
numbers, bytes as base64, enums by name or number), runs the same validation and server
coroutine the gRPC adapter runs, and encodes the response as etcd's gateway does: original
proto field names, int64 as strings, bytes as base64, fields with default values omitted.
Errors are `{"error": msg, "code": grpc code, "message": msg}` with grpc-gateway's HTTP status
for the code. Server-streaming methods answer with newline-delimited `{"result": ...}` objects.

Extension point: `route(path, request_type, fn)` adds a method; `fn(server, request)` returns
the response message (or an async iterator of them for a stream) or raises `EtcdError`.
Lease, auth and watch modules add their routes here as they land.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.grpc_api import validate
from petcd.http.http1 import JSON, Request, Response, Router, text_error
from petcd.server import alarms as alarms_mod
from petcd.server import maintenance
from petcd.server.etcdserver import EtcdServer

Fn = Callable[[EtcdServer, Any], Awaitable[Any]]

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


@dataclass(frozen=True, slots=True)
class Route:
    request_type: type[Message]
    fn: Fn
    streaming: bool = False


ROUTES: dict[str, Route] = {}


def route(path: str, request_type: type[Message], fn: Fn, streaming: bool = False) -> None:
    ROUTES[path] = Route(request_type, fn, streaming)


def to_json(msg: Message) -> str:
    """etcd's gateway encoding of one message."""
    d = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return json.dumps(d, separators=(",", ":"))


def error_response(code: grpc.StatusCode, message: str) -> Response:
    body = json.dumps({"error": message, "code": code.value[0], "message": message},
                      separators=(",", ":"))
    return Response(HTTP_STATUS.get(code, 500), body.encode(), JSON)


# -- the routes -------------------------------------------------------------------------------


async def _quota(s: EtcdServer, r: Any) -> None:
    a = alarms_mod.get(s)
    if a is not None:
        await a.check_write(r)


async def _range(s: EtcdServer, r: pb.RangeRequest) -> Any:
    validate.check_range(r)
    return await s.range(r)


async def _put(s: EtcdServer, r: pb.PutRequest) -> Any:
    validate.check_put(r)
    await _quota(s, r)
    return await s.put(r)


async def _delete(s: EtcdServer, r: pb.DeleteRangeRequest) -> Any:
    validate.check_delete(r)
    return await s.delete_range(r)


async def _txn(s: EtcdServer, r: pb.TxnRequest) -> Any:
    validate.check_txn(r, s.max_txn_ops)
    await _quota(s, r)
    return await s.txn(r)


async def _alarm(s: EtcdServer, r: pb.AlarmRequest) -> Any:
    a = alarms_mod.get(s)
    if a is None:
        return s.header(pb.AlarmResponse())
    return await a.alarm(r)


async def _status(s: EtcdServer, _r: Any) -> Any:
    return maintenance.status(s)


async def _hash_kv(s: EtcdServer, r: pb.HashKVRequest) -> Any:
    return s.hash_kv(r.revision)


async def _snapshot(s: EtcdServer, _r: Any) -> Any:
    return maintenance.snapshot_stream(s)


route("/v3/kv/range", pb.RangeRequest, _range)
route("/v3/kv/put", pb.PutRequest, _put)
route("/v3/kv/deleterange", pb.DeleteRangeRequest, _delete)
route("/v3/kv/txn", pb.TxnRequest, _txn)
route("/v3/kv/compaction", pb.CompactionRequest, lambda s, r: s.compact(r))
route("/v3/cluster/member/add", pb.MemberAddRequest, lambda s, r: s.cluster.member_add(r))
route("/v3/cluster/member/remove", pb.MemberRemoveRequest,
      lambda s, r: s.cluster.member_remove(r))
route("/v3/cluster/member/update", pb.MemberUpdateRequest,
      lambda s, r: s.cluster.member_update(r))
route("/v3/cluster/member/list", pb.MemberListRequest,
      lambda s, r: s.cluster.member_list(r.linearizable))
route("/v3/cluster/member/promote", pb.MemberPromoteRequest,
      lambda s, r: s.cluster.member_promote(r))
route("/v3/maintenance/alarm", pb.AlarmRequest, _alarm)
route("/v3/maintenance/status", pb.StatusRequest, _status)
route("/v3/maintenance/defragment", pb.DefragmentRequest, lambda s, r: maintenance.defragment(s))
route("/v3/maintenance/hash", pb.HashRequest, lambda s, r: maintenance.hash_backend(s))
route("/v3/maintenance/hashkv", pb.HashKVRequest, _hash_kv)
route("/v3/maintenance/snapshot", pb.SnapshotRequest, _snapshot, streaming=True)
route("/v3/maintenance/transfer-leadership", pb.MoveLeaderRequest,
      lambda s, r: maintenance.move_leader(s, r.targetID))


# -- dispatch ---------------------------------------------------------------------------------


async def _stream(it: AsyncIterator[Message]) -> AsyncIterator[bytes]:
    try:
        async for m in it:
            yield ('{"result":' + to_json(m) + "}\n").encode()
    except errors.EtcdError as err:
        body = {"error": {"grpc_code": err.code.value[0], "http_code": HTTP_STATUS.get(
            err.code, 500), "message": err.message, "http_status": ""}}
        yield (json.dumps(body, separators=(",", ":")) + "\n").encode()


def add_routes(router: Router, server: EtcdServer) -> None:
    async def handle(req: Request) -> Response:
        r = ROUTES.get(req.path)
        if r is None:
            return text_error(404, "Not Found")
        if req.method != "POST":
            return text_error(405, "Method Not Allowed")
        msg = r.request_type()
        try:
            json_format.Parse(req.body.decode("utf-8") if req.body.strip() else "{}", msg)
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            return error_response(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            out = await r.fn(server, msg)
        except errors.EtcdError as err:
            return error_response(err.code, err.message)
        if r.streaming:
            return Response(200, _stream(out), JSON)
        return Response(200, to_json(out).encode(), JSON)

    router.add_prefix("/v3/", handle)
