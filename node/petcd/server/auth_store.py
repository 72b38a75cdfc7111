"""The auth store: users, roles, permissions, the enabled flag and the auth revision.

State lives in the backend exactly where etcd keeps it: the AUTH bucket holds `authEnabled`
(one byte, 1/0) and `authRevision` (8 bytes big-endian); AUTH_USERS maps a user name to an
`authpb.User` (password = bcrypt hash, roles sorted); AUTH_ROLES maps a role name to an
`authpb.Role` (permissions sorted by key). In memory: the enabled flag, the revision, one
merged `RangePermissions` per user (a cache, dropped whenever roles or grants change) and
the member's simple-token table.

Contract:
- Every mutation is the apply of a Raft entry: `apply_*` methods write into the caller's
  `Batch` (which also carries the entry's consistent index) and change in-memory state only
  after every check passed; an `EtcdError` leaves both untouched. The auth revision grows by
  one for every change that etcd counts (every successful mutation except AuthEnable and
  no-op grants).
- Checks follow etcd 3.5.1's authStore: `is_range_permitted`, `is_put_permitted`,
  `is_delete_range_permitted` (user empty without a token, "revision in header is old" for a
  stale auth revision, the root role permits everything), `is_admin_permitted` (root role).
  With auth disabled every check passes.
"""

from __future__ import annotations

import base64
import bisect
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import bcrypt

from petcd import errors
from petcd.api.authpb import auth_pb2 as authpb
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.server.auth_perms import READ, WRITE, RangePermissions
from petcd.server.auth_tokens import SimpleTokens
from petcd.storage import buckets
from petcd.storage.backend import Backend, Batch

ROOT_USER = "root"
ROOT_ROLE = "root"
ENABLE_KEY = b"authEnabled"
REVISION_KEY = b"authRevision"
_U64 = struct.Struct(">Q")

DEFAULT_BCRYPT_COST = 10
MIN_BCRYPT_COST, MAX_BCRYPT_COST = 4, 31



@dataclass(frozen=True, slots=True)
class AuthInfo:
    """Who sent a request: the token's user and the auth revision it was checked at."""

    username: str
    revision: int


NO_AUTH = AuthInfo("", 0)
"""The identity of a request without a token."""


def hash_password(password: str, cost: int = DEFAULT_BCRYPT_COST) -> str:
    """bcrypt hash of `password`, base64 as etcd puts it in `hashedPassword`. Go writes the
    `$2a$` variant; the hash is rewritten to it so stored users look like etcd's."""
    if not MIN_BCRYPT_COST <= cost <= MAX_BCRYPT_COST:
        cost = DEFAULT_BCRYPT_COST
    h = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost))
    if h.startswith(b"$2b$"):
        h = b"$2a$" + h[4:]
    return base64.b64encode(h).decode()


def password_matches(hashed: bytes, password: str) -> bool:
    """bcrypt check; a malformed stored hash never matches."""
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False


def _copy_perms(perms: Iterable[authpb.Permission]) -> list[authpb.Permission]:
    return [authpb.Permission(key=p.key, range_end=p.range_end, permType=p.permType) for p in perms]


def _has_root_role(user: authpb.User) -> bool:
    i = bisect.bisect_left(user.roles, ROOT_ROLE)
    return i < len(user.roles) and user.roles[i] == ROOT_ROLE


class AuthStore:
    """See the module docstring. Event-loop only; `backend` is the member's backend."""

    def __init__(
        self,
        backend: Backend,
        tokens: SimpleTokens | None = None,
        bcrypt_cost: int = DEFAULT_BCRYPT_COST,
    ) -> None:
        self.backend = backend
        self.tokens = tokens if tokens is not None else SimpleTokens()
        self.bcrypt_cost = bcrypt_cost
        self.enabled = False
        self.revision = 0
        self._perms: dict[str, RangePermissions] = {}
        self.reload()
        if self.revision == 0:
            # etcd's NewAuthStore: a new store starts at revision 1 on every member alike.
            self.revision = 1
            self.backend.put(buckets.AUTH, REVISION_KEY, _U64.pack(1))

    def reload(self) -> None:
        """(Re)read the flag and revision from the backend (start, snapshot restore)."""
        self.enabled = self.backend.get(buckets.AUTH, ENABLE_KEY) == b"\x01"
        raw = self.backend.get(buckets.AUTH, REVISION_KEY)
        self.revision = _U64.unpack(raw)[0] if raw is not None and len(raw) == 8 else 0
        self._perms.clear()
        if self.enabled:
            self.tokens.enable()
        else:
            self.tokens.disable()

    # -- records ------------------------------------------------------------------------------

    def get_user(self, name: str) -> authpb.User | None:
        raw = self.backend.get(buckets.AUTH_USERS, name.encode())
        return None if raw is None else authpb.User.FromString(raw)

    def get_role(self, name: str) -> authpb.Role | None:
        raw = self.backend.get(buckets.AUTH_ROLES, name.encode())
        return None if raw is None else authpb.Role.FromString(raw)

    def users(self) -> Iterator[authpb.User]:
        for _, raw in self.backend.iterate(buckets.AUTH_USERS):
            yield authpb.User.FromString(raw)

    def roles(self) -> Iterator[authpb.Role]:
        for _, raw in self.backend.iterate(buckets.AUTH_ROLES):
            yield authpb.Role.FromString(raw)

    def _commit_revision(self, batch: Batch) -> None:
        self.revision += 1
        batch.put(buckets.AUTH, REVISION_KEY, _U64.pack(self.revision))

    @staticmethod
    def _put_user(batch: Batch, user: authpb.User) -> None:
        batch.put(buckets.AUTH_USERS, user.name, user.SerializeToString())

    @staticmethod
    def _put_role(batch: Batch, role: authpb.Role) -> None:
        batch.put(buckets.AUTH_ROLES, role.name, role.SerializeToString())

    def _select_password(self, password: str, hashed: str) -> bytes:
        if password and not hashed:
            # An entry proposed with a plain password (etcd < 3.5 did that): hash it here.
            hashed = hash_password(password, self.bcrypt_cost)
        try:
            return base64.b64decode(hashed, validate=True)
        except ValueError:
            raise errors.NO_PASSWORD_USER from None

    # -- reads (API layer, after a linearizable read) ------------------------------------------

    def user_get(self, name: str) -> list[str]:
        user = self.get_user(name)
        if user is None:
            raise errors.USER_NOT_FOUND
        return list(user.roles)

    def user_list(self) -> list[str]:
        return [u.name.decode(errors="replace") for u in self.users()]

    def role_get(self, name: str) -> list[authpb.Permission]:
        role = self.get_role(name)
        if role is None:
            raise errors.ROLE_NOT_FOUND
        return list(role.keyPermission)

    def role_list(self) -> list[str]:
        return [r.name.decode(errors="replace") for r in self.roles()]

    def password_record(self, name: str) -> tuple[bytes, int]:
        """The stored hash of `name` and the auth revision it was read at (etcd's
        CheckPassword before bcrypt). Raises AUTH_NOT_ENABLED, AUTH_FAILED, NO_PASSWORD_USER."""
        if not self.enabled:
            raise errors.AUTH_NOT_ENABLED
        user = self.get_user(name)
        if user is None:
            raise errors.AUTH_FAILED
        if user.options.no_password:
            raise errors.NO_PASSWORD_USER
        return user.password, self.revision

    # -- permission checks --------------------------------------------------------------------

    def has_role(self, username: str, role: str) -> bool:
        user = self.get_user(username)
        return user is not None and role in user.roles

    def is_admin_permitted(self, ai: AuthInfo | None) -> None:
        if not self.enabled:
            return
        if ai is None or not ai.username:
            raise errors.USER_EMPTY
        user = self.get_user(ai.username)
        if user is None:
            raise errors.USER_NOT_FOUND
        if not _has_root_role(user):
            raise errors.PERMISSION_DENIED

    def _is_op_permitted(self, ai: AuthInfo | None, key: bytes, end: bytes, typ: int) -> None:
        if not self.enabled:
            return
        if ai is None or ai.revision == 0:
            raise errors.USER_EMPTY
        if ai.revision < self.revision:
            raise errors.AUTH_OLD_REVISION
        user = self.get_user(ai.username)
        if user is None:
            raise errors.PERMISSION_DENIED
        if _has_root_role(user):
            return
        perms = self._perms.get(ai.username)
        if perms is None:
            perms = RangePermissions.merge(
                p
                for name in user.roles
                if (role := self.get_role(name)) is not None
                for p in role.keyPermission
            )
            self._perms[ai.username] = perms
        if not perms.permits(key, end, typ):
            raise errors.PERMISSION_DENIED

    def is_range_permitted(self, ai: AuthInfo | None, key: bytes, end: bytes) -> None:
        self._is_op_permitted(ai, key, end, READ)

    def is_put_permitted(self, ai: AuthInfo | None, key: bytes) -> None:
        self._is_op_permitted(ai, key, b"", WRITE)

    def is_delete_range_permitted(self, ai: AuthInfo | None, key: bytes, end: bytes) -> None:
        self._is_op_permitted(ai, key, end, WRITE)

    def check_txn(self, ai: AuthInfo | None, txn: pb.TxnRequest) -> None:
        """etcd's checkTxnAuth: every compare needs READ, then every op of both branches.
        Nested txns are checked too (etcd 3.5.1 skips them; later releases check them)."""
        for c in txn.compare:
            self.is_range_permitted(ai, c.key, c.range_end)
        for ops in (txn.success, txn.failure):
            for op in ops:
                kind = op.WhichOneof("request")
                if kind == "request_range":
                    self.is_range_permitted(ai, op.request_range.key, op.request_range.range_end)
                elif kind == "request_put":
                    self.is_put_permitted(ai, op.request_put.key)
                elif kind == "request_delete_range":
                    d = op.request_delete_range
                    if d.prev_kv:
                        self.is_range_permitted(ai, d.key, d.range_end)
                    self.is_delete_range_permitted(ai, d.key, d.range_end)
                elif kind == "request_txn":
                    self.check_txn(ai, op.request_txn)

    def check_lease_puts(
        self, ai: AuthInfo | None, lease_keys: Callable[[int], set[bytes] | None], lease: int
    ) -> None:
        """etcd's checkLeasePuts: a lease's attached keys must all be writable by the user."""
        if not self.enabled or lease == 0:
            return
        for key in sorted(lease_keys(lease) or ()):
            self.is_put_permitted(ai, key)

    # -- apply (one Raft entry each) ------------------------------------------------------------

    def apply_enable(self, batch: Batch) -> None:
        if self.enabled:
            return
        root = self.get_user(ROOT_USER)
        if root is None:
            raise errors.ROOT_USER_NOT_EXIST
        if not _has_root_role(root):
            raise errors.ROOT_ROLE_NOT_EXIST
        batch.put(buckets.AUTH, ENABLE_KEY, b"\x01")
        self.enabled = True
        self.tokens.enable()
        self._perms.clear()

    def apply_disable(self, batch: Batch) -> None:
        if not self.enabled:
            return
        batch.put(buckets.AUTH, ENABLE_KEY, b"\x00")
        self._commit_revision(batch)
        self.enabled = False
        self.tokens.disable()

    def apply_authenticate(self, r: ipb.InternalAuthenticate, index: int) -> str:
        """Mint the token `<prefix>.<index>` for `r.name` in this member's table."""
        if not self.enabled:
            raise errors.AUTH_NOT_ENABLED
        user = self.get_user(r.name)
        if user is None or user.options.no_password:
            raise errors.AUTH_FAILED
        token = f"{r.simple_token}.{index}"
        self.tokens.assign(r.name, token)
        return token

    def apply_user_add(self, r: pb.AuthUserAddRequest, batch: Batch) -> None:
        if not r.name:
            raise errors.USER_EMPTY
        if self.get_user(r.name) is not None:
            raise errors.USER_ALREADY_EXIST
        user = authpb.User(name=r.name.encode())
        user.options.no_password = r.options.no_password
        if not r.options.no_password:
            user.password = self._select_password(r.password, r.hashedPassword)
        self._put_user(batch, user)
        self._commit_revision(batch)

    def apply_user_delete(self, r: pb.AuthUserDeleteRequest, batch: Batch) -> None:
        if self.enabled and r.name == ROOT_USER:
            raise errors.INVALID_AUTH_MGMT
        if self.get_user(r.name) is None:
            raise errors.USER_NOT_FOUND
        batch.delete(buckets.AUTH_USERS, r.name.encode())
        self._commit_revision(batch)
        self._perms.pop(r.name, None)
        self.tokens.invalidate_user(r.name)

    def apply_user_change_password(self, r: pb.AuthUserChangePasswordRequest, batch: Batch) -> None:
        user = self.get_user(r.name)
        if user is None:
            raise errors.USER_NOT_FOUND
        password = b""
        if not user.options.no_password:
            password = self._select_password(r.password, r.hashedPassword)
        user.password = password
        self._put_user(batch, user)
        self._commit_revision(batch)
        self._perms.pop(r.name, None)
        self.tokens.invalidate_user(r.name)

    def apply_user_grant_role(self, r: pb.AuthUserGrantRoleRequest, batch: Batch) -> None:
        user = self.get_user(r.user)
        if user is None:
            raise errors.USER_NOT_FOUND
        if r.role != ROOT_ROLE and self.get_role(r.role) is None:
            raise errors.ROLE_NOT_FOUND
        roles = list(user.roles)
        i = bisect.bisect_left(roles, r.role)
        if i < len(roles) and roles[i] == r.role:
            return  # already granted: no change, no new revision (as etcd)
        roles.insert(i, r.role)
        del user.roles[:]
        user.roles.extend(roles)
        self._put_user(batch, user)
        self._perms.pop(r.user, None)
        self._commit_revision(batch)

    def apply_user_revoke_role(self, r: pb.AuthUserRevokeRoleRequest, batch: Batch) -> None:
        if self.enabled and r.name == ROOT_USER and r.role == ROOT_ROLE:
            raise errors.INVALID_AUTH_MGMT
        user = self.get_user(r.name)
        if user is None:
            raise errors.USER_NOT_FOUND
        kept = [role for role in user.roles if role != r.role]
        if len(kept) == len(user.roles):
            raise errors.ROLE_NOT_GRANTED
        del user.roles[:]
        user.roles.extend(kept)
        self._put_user(batch, user)
        self._perms.pop(r.name, None)
        self._commit_revision(batch)

    def apply_role_add(self, r: pb.AuthRoleAddRequest, batch: Batch) -> None:
        if not r.name:
            raise errors.ROLE_EMPTY
        if self.get_role(r.name) is not None:
            raise errors.ROLE_ALREADY_EXIST
        self._put_role(batch, authpb.Role(name=r.name.encode()))
        self._commit_revision(batch)

    def apply_role_delete(self, r: pb.AuthRoleDeleteRequest, batch: Batch) -> None:
        if self.enabled and r.role == ROOT_ROLE:
            raise errors.INVALID_AUTH_MGMT
        if self.get_role(r.role) is None:
            raise errors.ROLE_NOT_FOUND
        batch.delete(buckets.AUTH_ROLES, r.role.encode())
        for user in list(self.users()):
            kept = [role for role in user.roles if role != r.role]
            if len(kept) == len(user.roles):
                continue
            del user.roles[:]
            user.roles.extend(kept)
            self._put_user(batch, user)
            self._perms.pop(user.name.decode(errors="replace"), None)
        self._commit_revision(batch)

    def apply_role_grant_permission(
        self, r: pb.AuthRoleGrantPermissionRequest, batch: Batch
    ) -> None:
        if not r.HasField("perm"):
            raise errors.PERMISSION_NOT_GIVEN
        role = self.get_role(r.name)
        if role is None:
            raise errors.ROLE_NOT_FOUND
        perms = _copy_perms(role.keyPermission)
        i = bisect.bisect_left([p.key for p in perms], r.perm.key)
        if i < len(perms) and perms[i].key == r.perm.key and perms[i].range_end == r.perm.range_end:
            perms[i].permType = r.perm.permType
        else:
            perms.append(
                authpb.Permission(
                    key=r.perm.key, range_end=r.perm.range_end, permType=r.perm.permType
                )
            )
            perms.sort(key=lambda p: p.key)
        del role.keyPermission[:]
        role.keyPermission.extend(perms)
        self._put_role(batch, role)
        self._perms.clear()
        self._commit_revision(batch)

    def apply_role_revoke_permission(
        self, r: pb.AuthRoleRevokePermissionRequest, batch: Batch
    ) -> None:
        role = self.get_role(r.role)
        if role is None:
            raise errors.ROLE_NOT_FOUND
        kept = [
            p
            for p in _copy_perms(role.keyPermission)
            if p.key != r.key or p.range_end != r.range_end
        ]
        if len(kept) == len(role.keyPermission):
            raise errors.PERMISSION_NOT_GRANTED
        del role.keyPermission[:]
        role.keyPermission.extend(kept)
        self._put_role(batch, role)
        self._perms.clear()
        self._commit_revision(batch)
