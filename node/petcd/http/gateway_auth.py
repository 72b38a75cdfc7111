"""Gateway routes of the Auth service (etcd 3.5.1's `/v3/auth/*` bindings). The token
`/v3/auth/authenticate` returns goes in the `Authorization` header of later requests."""

from __future__ import annotations

from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.http.gateway import route

_AUTH = pb.DESCRIPTOR.services_by_name["Auth"]

for _path, _method in (
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
):
    route(f"/v3/auth/{_path}", _AUTH, _method)
