"""gRPC side of auth: the etcdserverpb.Auth service and the interceptor that enforces auth on
every other service, as etcd 3.5.1 does.

The token rides in the `token` metadata key (etcd also accepts `authorization`, which its JSON
gateway uses). Where etcd looks at the token (`AuthInfoFromCtx`) petcd resolves it; a
malformed, unknown or expired token fails the call with "etcdserver: invalid auth token" even
when auth is disabled, as in etcd. Then, with auth enabled:

| RPC | check (etcd) |
|---|---|
| KV Range, read-only Txn | READ on the range / every op and compare, before the read; after it, "auth: revision in header is old" if the auth store changed meanwhile (etcd: doSerialize) |
| KV Put, DeleteRange, write Txn, Lease LeaseRevoke | at apply, against the auth store as of the entry (`server.auth_apply`): WRITE on keys (+READ for prev_kv, the lease's keys writable) |
| Cluster MemberAdd/Remove/Update/Promote | admin (root role) |
| Maintenance Defragment/Snapshot/Hash/HashKV | admin; errors as raw "auth: ..." text, code Unknown (etcd returns its auth errors unconverted there) |
| Watch create | READ on the range, else the watch is created canceled with etcd's reason |
| Compact, LeaseGrant, Alarm | token must be valid, nothing else (etcd 3.5.1) |
| Status, MemberList, MoveLeader, LeaseTimeToLive/Leases/KeepAlive | nothing |

The writes are checked as etcd checks them: the interceptor only resolves the token and sets
`auth_apply.REQUEST_AUTH`; the proposal's header carries the user and the auth revision; every
member re-checks at apply, so a permission revoked between the request and its apply is
honoured (the request fails with "auth: revision in header is old"). Read checks are skipped
for requests that fail validation (they fail in the servicer, validation errors first).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc
from petcd.grpc_api import validate
from petcd.grpc_api.services import _call
from petcd.server import auth_apply, auth_ops, concurrency
from petcd.server.applier import is_read_only_txn
from petcd.server.auth_ops import AuthOps
from petcd.server.auth_store import AuthInfo, AuthStore
from petcd.server.etcdserver import EtcdServer

Handler = Any  # grpc.RpcMethodHandler; its stubs do not fit the aio behaviours
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]
Check = Callable[[Any, AuthInfo | None], None]

TOKEN_KEYS = ("token", "authorization")
WATCH_DENIED_REASON = "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
"""The cancel_reason etcd puts on a watch it refuses (the gRPC error's Error() text)."""

_RAW_AUTH_TEXT = {
    errors.INVALID_AUTH_TOKEN.message: "auth: invalid auth token",
    errors.USER_EMPTY.message: "auth: user name is empty",
    errors.USER_NOT_FOUND.message: "auth: user not found",
    errors.PERMISSION_DENIED.message: "auth: permission denied",
}


def token_of(context: Any) -> str | None:
    """The auth token of a call, or None."""
    for key, value in context.invocation_metadata() or ():
        if key in TOKEN_KEYS:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


def _raw(err: errors.EtcdError) -> errors.EtcdError:
    """The error as etcd's maintenance server returns it: unconverted auth error text."""
    text = _RAW_AUTH_TEXT.get(err.message)
    return err if text is None else errors.EtcdError(grpc.StatusCode.UNKNOWN, text)


# -- the Auth service --------------------------------------------------------------------------


class AuthService(pb_grpc.AuthServicer):
    def __init__(self, server: EtcdServer, ops: AuthOps) -> None:
        self.s = server
        self.ops = ops

    async def _ai(self, context: Any) -> AuthInfo | None:
        return await self.ops.resolve(token_of(context), context.time_remaining())

    async def _run(self, context: Any, fn: Callable[[AuthInfo | None], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            return await fn(await self._ai(context))

        return await _call(context, go())

    async def AuthEnable(self, request: pb.AuthEnableRequest, context: Any) -> Any:
        return await self._run(context, self.ops.enable)

    async def AuthDisable(self, request: pb.AuthDisableRequest, context: Any) -> Any:
        return await self._run(context, self.ops.disable)

    async def AuthStatus(self, request: pb.AuthStatusRequest, context: Any) -> Any:
        return await self._run(context, self.ops.status)

    async def Authenticate(self, request: pb.AuthenticateRequest, context: Any) -> Any:
        return await _call(context, self.ops.authenticate(request))

    async def UserAdd(self, request: pb.AuthUserAddRequest, context: Any) -> Any:
        return await self._run(context, lambda ai: self.ops.user_add(request, ai))

    async def UserGet(self, request: pb.AuthUserGetRequest, context: Any) -> Any:
        return await self._run(context, lambda ai: self.ops.user_get(request, ai))

    async def UserList(self, request: pb.AuthUserListRequest, context: Any) -> Any:
        return await self._run(context, self.ops.user_list)

    async def UserDelete(self, request: pb.AuthUserDeleteRequest, context: Any) -> Any:
        return await self._run(context, lambda ai: self.ops.mutate("auth_user_delete", request, ai))

    async def UserChangePassword(
        self, request: pb.AuthUserChangePasswordRequest, context: Any
    ) -> Any:
        return await self._run(context, lambda ai: self.ops.user_change_password(request, ai))

    async def UserGrantRole(self, request: pb.AuthUserGrantRoleRequest, context: Any) -> Any:
        return await self._run(
            context, lambda ai: self.ops.mutate("auth_user_grant_role", request, ai)
        )

    async def UserRevokeRole(self, request: pb.AuthUserRevokeRoleRequest, context: Any) -> Any:
        return await self._run(
            context, lambda ai: self.ops.mutate("auth_user_revoke_role", request, ai)
        )

    async def RoleAdd(self, request: pb.AuthRoleAddRequest, context: Any) -> Any:
        return await self._run(context, lambda ai: self.ops.mutate("auth_role_add", request, ai))

    async def RoleGet(self, request: pb.AuthRoleGetRequest, context: Any) -> Any:
        return await self._run(context, lambda ai: self.ops.role_get(request, ai))

    async def RoleList(self, request: pb.AuthRoleListRequest, context: Any) -> Any:
        return await self._run(context, self.ops.role_list)

    async def RoleDelete(self, request: pb.AuthRoleDeleteRequest, context: Any) -> Any:
        return await self._run(context, lambda ai: self.ops.mutate("auth_role_delete", request, ai))

    async def RoleGrantPermission(
        self, request: pb.AuthRoleGrantPermissionRequest, context: Any
    ) -> Any:
        return await self._run(
            context, lambda ai: self.ops.mutate("auth_role_grant_permission", request, ai)
        )

    async def RoleRevokePermission(
        self, request: pb.AuthRoleRevokePermissionRequest, context: Any
    ) -> Any:
        return await self._run(
            context, lambda ai: self.ops.mutate("auth_role_revoke_permission", request, ai)
        )


def register(gs: grpc.aio.Server, server: EtcdServer) -> None:
    """Serve Auth if the auth subsystem is installed (`server.auth`)."""
    ops = auth_ops.get(server)
    if ops is not None:
        pb_grpc.add_AuthServicer_to_server(AuthService(server, ops), gs)


# -- checks per RPC ----------------------------------------------------------------------------

_GUARDED_METHODS: dict[type, str] = {
    pb.TxnRequest: "/etcdserverpb.KV/Txn",
    pb.RangeRequest: "/etcdserverpb.KV/Range",
    pb.DeleteRangeRequest: "/etcdserverpb.KV/DeleteRange",
    pb.LeaseGrantRequest: "/etcdserverpb.Lease/LeaseGrant",
}
"""The KV/Lease method whose check applies to each request kind `concurrency` issues."""


def request_guard(server: EtcdServer, context: Any) -> concurrency.Guard | None:
    """A `concurrency.REQUEST_GUARD` that checks each request the Lock/Election services issue
    for the caller of `context` exactly as the interceptor checks the same request sent over
    gRPC with the caller's token (etcd's in-process client carries the caller's metadata).
    None if auth is not installed."""
    ops = auth_ops.get(server)
    if ops is None:
        return None
    token = token_of(context)
    checks = _kv_checks(server, ops.store)

    async def guard(req: concurrency.Request) -> None:
        if token is None and not ops.store.enabled:
            return
        # No deadline from `context`: cleanups run under the guard after the RPC has ended.
        ai = await ops.resolve(token, None)
        checks[_GUARDED_METHODS[type(req)]](req, ai)
        # `guard` is awaited by the caller's own task: the identity stays for its request.
        auth_apply.REQUEST_AUTH.set(ai)

    return guard



def _valid(fn: Callable[[], None]) -> bool:
    try:
        fn()
    except errors.EtcdError:
        return False
    return True


def _kv_checks(server: EtcdServer, store: AuthStore) -> dict[str, Check]:
    """The check made before serving each method. Put, DeleteRange, a write Txn and
    LeaseRevoke are checked at apply instead (`server.auth_apply`): here only their token."""

    def range_(r: pb.RangeRequest, ai: AuthInfo | None) -> None:
        if _valid(lambda: validate.check_range(r)):
            store.is_range_permitted(ai, r.key, r.range_end)

    def txn(r: pb.TxnRequest, ai: AuthInfo | None) -> None:
        if is_read_only_txn(r) and _valid(lambda: validate.check_txn(r, server.max_txn_ops)):
            store.check_txn(ai, r)

    def admin(r: Any, ai: AuthInfo | None) -> None:
        store.is_admin_permitted(ai)

    def token_only(r: Any, ai: AuthInfo | None) -> None:
        return None

    return {
        "/etcdserverpb.KV/Range": range_,
        "/etcdserverpb.KV/Put": token_only,
        "/etcdserverpb.KV/DeleteRange": token_only,
        "/etcdserverpb.KV/Txn": txn,
        "/etcdserverpb.KV/Compact": token_only,
        "/etcdserverpb.Lease/LeaseGrant": token_only,
        "/etcdserverpb.Lease/LeaseRevoke": token_only,
        "/etcdserverpb.Maintenance/Alarm": token_only,
        "/etcdserverpb.Cluster/MemberAdd": admin,
        "/etcdserverpb.Cluster/MemberRemove": admin,
        "/etcdserverpb.Cluster/MemberUpdate": admin,
        "/etcdserverpb.Cluster/MemberPromote": admin,
    }


def is_serialized(request: Any) -> bool:
    """A read served locally after a permission check (etcd's doSerialize): Range and a
    read-only Txn."""
    return isinstance(request, pb.RangeRequest) or (
        isinstance(request, pb.TxnRequest) and is_read_only_txn(request))


def check_still_current(store: AuthStore, ai: AuthInfo | None) -> None:
    """etcd's doSerialize, after the read: the auth store changed while the read was served
    (a permission may have been revoked after it was checked) -> AUTH_OLD_REVISION."""
    if ai is not None and ai.revision and ai.revision != store.revision:
        raise errors.AUTH_OLD_REVISION


_RAW_ADMIN = frozenset(
    {
        "/etcdserverpb.Maintenance/Defragment",
        "/etcdserverpb.Maintenance/Snapshot",
        "/etcdserverpb.Maintenance/Hash",
        "/etcdserverpb.Maintenance/HashKV",
    }
)
_WATCH = "/etcdserverpb.Watch/Watch"


class _SerialWrites:
    """A servicer context whose `write`s are serialised with the interceptor's own."""

    def __init__(self, context: Any, lock: asyncio.Lock) -> None:
        self._ctx = context
        self._lock = lock

    async def write(self, message: Any) -> None:
        async with self._lock:
            await self._ctx.write(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Enforces auth on the non-Auth services; see the module docstring."""

    def __init__(self, server: EtcdServer) -> None:
        self.server = server
        self._checks: dict[str, Check] | None = None

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(details)
        ops = auth_ops.get(self.server)
        if handler is None or ops is None:
            return handler
        method = details.method
        if method == _WATCH and handler.stream_stream is not None:
            return handler._replace(stream_stream=self._watch(handler.stream_stream, ops))
        if method in _RAW_ADMIN:
            return self._raw_admin(handler, ops)
        if self._checks is None:
            self._checks = _kv_checks(self.server, ops.store)
        check = self._checks.get(method)
        if check is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        store = ops.store

        async def guarded(request: Any, context: Any) -> Any:
            token = token_of(context)
            if token is None and not store.enabled:
                return await inner(request, context)  # the common case: nothing to check
            ai: AuthInfo | None = None
            try:
                ai = await ops.resolve(token, context.time_remaining())
                check(request, ai)
            except errors.EtcdError as err:
                await context.abort(err.code, err.message)
            reset = auth_apply.REQUEST_AUTH.set(ai)  # stamped on the proposal, checked at apply
            try:
                resp = await inner(request, context)
            finally:
                auth_apply.REQUEST_AUTH.reset(reset)
            if is_serialized(request):
                try:
                    check_still_current(store, ai)
                except errors.EtcdError as err:
                    await context.abort(err.code, err.message)
            return resp

        return handler._replace(unary_unary=guarded)

    @staticmethod
    async def _admin(ops: AuthOps, context: Any) -> errors.EtcdError | None:
        try:
            ai = await ops.resolve(token_of(context), context.time_remaining())
            ops.store.is_admin_permitted(ai)
        except errors.EtcdError as err:
            return _raw(err)
        return None

    def _raw_admin(self, handler: Handler, ops: AuthOps) -> Handler:
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                if (err := await self._admin(ops, context)) is not None:
                    await context.abort(err.code, err.message)
                return await inner(request, context)

            return handler._replace(unary_unary=unary)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                if (err := await self._admin(ops, context)) is not None:
                    await context.abort(err.code, err.message)
                res = inner_stream(request, context)
                if inspect.isasyncgen(res):
                    async for item in res:
                        yield item
                else:
                    await res

            return handler._replace(unary_stream=stream)
        return handler

    def _watch(self, inner: Any, ops: AuthOps) -> Any:
        server = self.server

        async def permitted(context: Any, cr: pb.WatchCreateRequest) -> bool:
            key = cr.key or b"\x00"
            end = b"" if cr.range_end == b"\x00" else cr.range_end
            try:
                ai = await ops.resolve(token_of(context), None)
                ops.store.is_range_permitted(ai if ai is not None else AuthInfo("", 0), key, end)
            except errors.EtcdError:
                return False
            return True

        async def run(request_iterator: AsyncIterator[pb.WatchRequest], context: Any) -> Any:
            lock = asyncio.Lock()

            async def filtered() -> AsyncIterator[pb.WatchRequest]:
                async for req in request_iterator:
                    if req.WhichOneof("request_union") == "create_request":
                        cr = req.create_request
                        if not await permitted(context, cr):
                            msg = pb.WatchResponse(
                                watch_id=cr.watch_id,
                                created=True,
                                canceled=True,
                                cancel_reason=WATCH_DENIED_REASON,
                            )
                            server.header(msg)
                            async with lock:
                                await context.write(msg)
                            continue
                    yield req

            return await inner(filtered(), _SerialWrites(context, lock))

        return run
