"""The auth API of one member (`server.auth`): etcd 3.5.1's EtcdServer auth methods.

- Mutations (enable, disable, users, roles, grants) are proposed through Raft with the
  caller's user name and auth revision in the entry header; the apply handler re-checks
  admin permission there (etcd's authApplierV3 + needAdminPermission), applies the change to
  the `AuthStore` and persists it in the same backend write as the entry's consistent index.
- Passwords are hashed with bcrypt (`--bcrypt-cost`) before proposing, so the log carries only
  hashes; bcrypt runs in a worker thread so the event loop keeps serving.
- Authenticate: linearizable read, bcrypt check of the password, then an Authenticate entry
  carrying only the user name and a fresh random token prefix; every member mints
  `<prefix>.<index>` when it applies the entry. Retried if the auth revision moved while the
  password was being checked (etcd does the same).
- Reads (status, user/role get and list) are linearizable reads of the local store with
  etcd's permission rules (admin, or the user itself / a holder of the role). etcd routes them
  through Raft; the answers and errors are the same.
- `resolve(token)` turns a `token` metadata value into an `AuthInfo` (waiting, bounded, for
  the entry that minted it to be applied here) or raises "invalid auth token".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.protobuf.message import DecodeError, Message

from petcd import errors
from petcd.api import deep
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.raft.types import Entry
from petcd.server.auth_store import (
    AuthInfo,
    AuthStore,
    hash_password,
    password_matches,
)
from petcd.server.auth_tokens import DEFAULT_TTL_SECONDS, SimpleTokens, gen_prefix, token_index
from petcd.storage.backend import Batch

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

SWEEP_SECONDS = 1.0
"""How often expired tokens are dropped (etcd's simpleTokenTTLResolution)."""

_ADMIN_KINDS = frozenset(
    {
        "auth_enable",
        "auth_disable",
        "auth_user_add",
        "auth_user_delete",
        "auth_user_change_password",
        "auth_user_grant_role",
        "auth_user_revoke_role",
        "auth_role_add",
        "auth_role_delete",
        "auth_role_grant_permission",
        "auth_role_revoke_permission",
    }
)

_RESPONSES: dict[str, Callable[[], Message]] = {
    "auth_enable": pb.AuthEnableResponse,
    "auth_disable": pb.AuthDisableResponse,
    "auth_user_add": pb.AuthUserAddResponse,
    "auth_user_delete": pb.AuthUserDeleteResponse,
    "auth_user_change_password": pb.AuthUserChangePasswordResponse,
    "auth_user_grant_role": pb.AuthUserGrantRoleResponse,
    "auth_user_revoke_role": pb.AuthUserRevokeRoleResponse,
    "auth_role_add": pb.AuthRoleAddResponse,
    "auth_role_delete": pb.AuthRoleDeleteResponse,
    "auth_role_grant_permission": pb.AuthRoleGrantPermissionResponse,
    "auth_role_revoke_permission": pb.AuthRoleRevokePermissionResponse,
}


def _entry_auth_info(e: Entry) -> AuthInfo:
    """The user and auth revision the proposer stamped on the entry."""
    try:
        hdr = deep.parse(ipb.InternalRaftRequest, e.data).header
    except DecodeError:
        return AuthInfo("", 0)
    return AuthInfo(hdr.username, hdr.auth_revision)


class AuthOps:
    """See the module docstring."""

    def __init__(self, server: EtcdServer, store: AuthStore) -> None:
        self.s = server
        self.store = store

    # -- tokens -------------------------------------------------------------------------------

    async def resolve(self, token: str | None, timeout: float | None = None) -> AuthInfo | None:
        """etcd's AuthInfoFromCtx for a simple token: None without a token, else the token's
        user at the current auth revision; raises INVALID_AUTH_TOKEN for a malformed,
        unknown or expired token (whether or not auth is enabled, as etcd)."""
        if token is None:
            return None
        index = token_index(token)
        if index is None:
            raise errors.INVALID_AUTH_TOKEN
        if index > self.s.applied_index:
            wait = self.s.request_timeout if timeout is None else max(timeout, 0.0)
            try:
                await asyncio.wait_for(self.s.applied_wait.wait(index), wait)
            except TimeoutError:
                raise errors.INVALID_AUTH_TOKEN from None
        user = self.store.tokens.lookup(token)
        if user is None:
            raise errors.INVALID_AUTH_TOKEN
        return AuthInfo(user, self.store.revision)

    async def run_sweeper(self) -> None:
        """Background task: drop expired tokens once a second."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.store.tokens.sweep()

    # -- proposals ----------------------------------------------------------------------------

    async def _propose(self, kind: str, msg: Message, ai: AuthInfo | None) -> Any:
        req = ipb.InternalRaftRequest()
        getattr(req, kind).CopyFrom(msg)
        if ai is not None:
            req.header.username = ai.username
            req.header.auth_revision = ai.revision
        return await self.s.propose(req)

    async def enable(self, ai: AuthInfo | None) -> pb.AuthEnableResponse:
        resp: pb.AuthEnableResponse = await self._propose("auth_enable", pb.AuthEnableRequest(), ai)
        return resp

    async def disable(self, ai: AuthInfo | None) -> pb.AuthDisableResponse:
        resp: pb.AuthDisableResponse = await self._propose(
            "auth_disable", pb.AuthDisableRequest(), ai
        )
        return resp

    async def user_add(
        self, r: pb.AuthUserAddRequest, ai: AuthInfo | None
    ) -> pb.AuthUserAddResponse:
        req = pb.AuthUserAddRequest()
        req.CopyFrom(r)
        if not r.options.no_password:
            req.hashedPassword = await asyncio.to_thread(
                hash_password, r.password, self.store.bcrypt_cost
            )
            req.password = ""
        resp: pb.AuthUserAddResponse = await self._propose("auth_user_add", req, ai)
        return resp

    async def user_change_password(
        self, r: pb.AuthUserChangePasswordRequest, ai: AuthInfo | None
    ) -> pb.AuthUserChangePasswordResponse:
        req = pb.AuthUserChangePasswordRequest()
        req.CopyFrom(r)
        if r.password:
            req.hashedPassword = await asyncio.to_thread(
                hash_password, r.password, self.store.bcrypt_cost
            )
            req.password = ""
        resp: pb.AuthUserChangePasswordResponse = await self._propose(
            "auth_user_change_password", req, ai
        )
        return resp

    async def mutate(self, kind: str, r: Message, ai: AuthInfo | None) -> Any:
        """Propose one of the auth mutations that need no preparation (grants, deletes, adds
        of roles); `kind` is its InternalRaftRequest field."""
        if kind not in _ADMIN_KINDS:
            raise ValueError(f"not an auth mutation: {kind}")
        return await self._propose(kind, r, ai)

    async def authenticate(self, r: pb.AuthenticateRequest) -> pb.AuthenticateResponse:
        await self.s.linearizable_read()
        while True:
            hashed, checked_rev = self.store.password_record(r.name)
            if not await asyncio.to_thread(password_matches, hashed, r.password):
                self.s.log.info("invalid password", **{"user-name": r.name})
                raise errors.AUTH_FAILED
            internal = ipb.InternalAuthenticate(name=r.name, simple_token=gen_prefix())
            resp: pb.AuthenticateResponse = await self._propose("authenticate", internal, None)
            if checked_rev == self.store.revision:
                return resp
            self.s.log.info("revision when password checked became stale; retrying")

    # -- linearizable reads ---------------------------------------------------------------------

    async def status(self, ai: AuthInfo | None) -> pb.AuthStatusResponse:
        await self.s.linearizable_read()
        self.store.is_admin_permitted(ai)
        return self.s.header(
            pb.AuthStatusResponse(enabled=self.store.enabled, authRevision=self.store.revision)
        )

    async def user_get(
        self, r: pb.AuthUserGetRequest, ai: AuthInfo | None
    ) -> pb.AuthUserGetResponse:
        await self.s.linearizable_read()
        try:
            self.store.is_admin_permitted(ai)
        except errors.EtcdError:
            if ai is None or r.name != ai.username:
                raise
        return self.s.header(pb.AuthUserGetResponse(roles=self.store.user_get(r.name)))

    async def user_list(self, ai: AuthInfo | None) -> pb.AuthUserListResponse:
        await self.s.linearizable_read()
        self.store.is_admin_permitted(ai)
        return self.s.header(pb.AuthUserListResponse(users=self.store.user_list()))

    async def role_get(
        self, r: pb.AuthRoleGetRequest, ai: AuthInfo | None
    ) -> pb.AuthRoleGetResponse:
        await self.s.linearizable_read()
        try:
            self.store.is_admin_permitted(ai)
        except errors.EtcdError:
            if ai is None or not self.store.has_role(ai.username, r.role):
                raise
        return self.s.header(pb.AuthRoleGetResponse(perm=self.store.role_get(r.role)))

    async def role_list(self, ai: AuthInfo | None) -> pb.AuthRoleListResponse:
        await self.s.linearizable_read()
        self.store.is_admin_permitted(ai)
        return self.s.header(pb.AuthRoleListResponse(roles=self.store.role_list()))

    # -- apply ----------------------------------------------------------------------------------

    def _apply_mutation(self, kind: str) -> Callable[[Any, Entry], Any]:
        store = self.store
        appliers: dict[str, Callable[[Any, Batch], None]] = {
            "auth_enable": lambda r, b: store.apply_enable(b),
            "auth_disable": lambda r, b: store.apply_disable(b),
            "auth_user_add": store.apply_user_add,
            "auth_user_delete": store.apply_user_delete,
            "auth_user_change_password": store.apply_user_change_password,
            "auth_user_grant_role": store.apply_user_grant_role,
            "auth_user_revoke_role": store.apply_user_revoke_role,
            "auth_role_add": store.apply_role_add,
            "auth_role_delete": store.apply_role_delete,
            "auth_role_grant_permission": store.apply_role_grant_permission,
            "auth_role_revoke_permission": store.apply_role_revoke_permission,
        }
        apply_fn = appliers[kind]
        make_resp = _RESPONSES[kind]

        def handler(r: Any, e: Entry) -> Any:
            batch = Batch()
            result: Any
            try:
                store.is_admin_permitted(_entry_auth_info(e))
                apply_fn(r, batch)
                result = self.s.header(make_resp())
            except errors.EtcdError as err:
                batch = Batch()
                result = err
            self.s.store.save_consistent_index(e.index, e.term, batch=batch)
            self.s.backend.write(batch)
            return result

        return handler

    def _apply_authenticate(self, r: ipb.InternalAuthenticate, e: Entry) -> Any:
        self.s.store.save_consistent_index(e.index, e.term)
        try:
            token = self.store.apply_authenticate(r, e.index)
        except errors.EtcdError as err:
            return err
        return self.s.header(pb.AuthenticateResponse(token=token))

    def register(self) -> None:
        for kind in _ADMIN_KINDS:
            self.s.register_apply(kind, self._apply_mutation(kind))
        self.s.register_apply("authenticate", self._apply_authenticate)


def install(server: EtcdServer) -> None:
    """Set `server.auth` (--bcrypt-cost, --auth-token-ttl from `server.options`)."""
    opts = server.options
    ttl = opts.auth_token_ttl if opts.auth_token_ttl > 0 else DEFAULT_TTL_SECONDS
    store = AuthStore(server.backend, SimpleTokens(ttl), opts.bcrypt_cost)
    ops = AuthOps(server, store)
    ops.register()
    server.restore_listeners.append(store.reload)
    server.add_task("auth-token-sweeper", ops.run_sweeper)
    server.auth = ops


def get(server: EtcdServer) -> AuthOps | None:
    """The server's auth subsystem, if installed."""
    return server.auth
