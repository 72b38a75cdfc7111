"""Gateway routes of the Auth service (etcd 3.5.1's `/v3/auth/*` bindings). The token
`/v3/auth/authenticate` returns goes in the `Authorization` header of later requests."""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from petcd.api.etcdserverpb import rpc_pb2 as pb

_AUTH = pb.DESCRIPTOR.services_by_name["Auth"]

BINDINGS: tuple[tuple[str, ServiceDescriptor, str], ...] = tuple(
    (f"/v3/auth/{path}", _AUTH, method)
    for path, method in (
        ("enable", "AuthEnable"),
        ("disable", "AuthDisable"),
        ("status", "AuthStatus"),
        ("authenticate", "Authenticate"),
        ("user/add", "UserAdd"),
        ("user/get", "UserGet"),
        ("user/list", "UserList"),
        ("user/delete", "UserDelete"),
        ("user/changepw", "UserChangePassword"),
        ("user/grant", "UserGrantRole"),
        ("user/revoke", "UserRevokeRole"),
        ("role/add", "RoleAdd"),
        ("role/get", "RoleGet"),
        ("role/list", "RoleList"),
        ("role/delete", "RoleDelete"),
        ("role/grant", "RoleGrantPermission"),
        ("role/revoke", "RoleRevokePermission"),
    )
)
"""(path, service, method) of every route (built into the table by `gateway.route_table`)."""
