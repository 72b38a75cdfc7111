"""The auth store on a real LevelDB backend: records, revisions, enable rules, permission
checks with etcd 3.5.1's interval semantics, persistence across reopen; and the simple-token
table with an injected clock. Apply methods are driven exactly as the Raft apply does: a
`Batch` per entry, written after the call, dropped when it raises."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from petcd import errors
from petcd.api.authpb import auth_pb2 as authpb
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.server.auth_perms import READ, READWRITE, WRITE, RangePermissions
from petcd.server.auth_store import (
    AuthInfo,
    AuthStore,
    hash_password,
    password_matches,
)
from petcd.server.auth_tokens import SimpleTokens, token_index
from petcd.storage.backend import Backend, Batch

COST = 4  # bcrypt's minimum: these tests are about the store, not hashing speed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    b = Backend(tmp_path / "db")
    yield b
    b.close()


@pytest.fixture
def store(backend: Backend) -> AuthStore:
    return AuthStore(backend, SimpleTokens(300, Clock()), bcrypt_cost=COST)


def apply(store: AuthStore, fn: Callable[[Batch], None]) -> None:
    """Run one apply method the way the apply path does (write the batch only on success)."""
    batch = Batch()
    fn(batch)
    store.backend.write(batch)


def add_user(store: AuthStore, name: str, password: str = "pw", no_password: bool = False) -> None:
    r = pb.AuthUserAddRequest(name=name, options=authpb.UserAddOptions(no_password=no_password))
    if not no_password:
        r.hashedPassword = hash_password(password, COST)
    apply(store, lambda b: store.apply_user_add(r, b))


def add_role(store: AuthStore, name: str, *perms: tuple[int, bytes, bytes]) -> None:
    apply(store, lambda b: store.apply_role_add(pb.AuthRoleAddRequest(name=name), b))
    for typ, key, end in perms:
        perm = authpb.Permission(permType=typ, key=key, range_end=end)  # type: ignore[arg-type]
        req = pb.AuthRoleGrantPermissionRequest(name=name, perm=perm)
        apply(store, functools.partial(store.apply_role_grant_permission, req))


def grant(store: AuthStore, user: str, role: str) -> None:
    req = pb.AuthUserGrantRoleRequest(user=user, role=role)
    apply(store, lambda b: store.apply_user_grant_role(req, b))


def enable_with_root(store: AuthStore) -> None:
    add_user(store, "root", "rootpw")
    grant(store, "root", "root")
    apply(store, store.apply_enable)


def ai(store: AuthStore, user: str) -> AuthInfo:
    return AuthInfo(user, store.revision)


def raises(err: errors.EtcdError, fn: Callable[[], object]) -> None:
    with pytest.raises(errors.EtcdError) as exc:
        fn()
    assert exc.value.message == err.message and exc.value.code == err.code


# -- range permissions (etcd's adt affine intervals) ----------------------------------------------


def perms(*grants: tuple[int, bytes, bytes]) -> RangePermissions:
    return RangePermissions.merge(
        authpb.Permission(permType=t, key=k, range_end=e)  # type: ignore[arg-type]
        for t, k, e in grants
    )


def test_point_permission_covers_only_that_key() -> None:
    p = perms((READ, b"/a", b""))
    assert p.permits(b"/a", b"", READ)
    assert not p.permits(b"/a", b"", WRITE)
    assert not p.permits(b"/ab", b"", READ)
    assert p.permits(b"/a", b"/a\x00", READ)  # the range holding exactly /a
    assert not p.permits(b"/a", b"/b", READ)


def test_prefix_and_from_key_permissions() -> None:
    p = perms((READWRITE, b"/p/", b"/p0"), (WRITE, b"/from", b"\x00"))
    assert p.permits(b"/p/x", b"", READ) and p.permits(b"/p/x", b"", WRITE)
    assert p.permits(b"/p/", b"/p0", READ)
    assert not p.permits(b"/p/", b"/p1", READ)
    assert not p.permits(b"/p", b"", READ)
    assert p.permits(b"/zzz", b"", WRITE) and p.permits(b"/from", b"\x00", WRITE)
    assert not p.permits(b"/fro", b"\x00", WRITE)
    assert not p.permits(b"/zzz", b"", READ)


def test_adjacent_grants_cover_a_range_only_without_gaps() -> None:
    p = perms((READ, b"a", b"c"), (READ, b"c", b"e"))
    assert p.permits(b"a", b"e", READ)
    assert p.permits(b"b", b"d", READ)
    gap = perms((READ, b"a", b"c"), (READ, b"d", b"e"))
    assert not gap.permits(b"a", b"e", READ)
    assert gap.permits(b"d", b"e", READ)


# -- records and revisions ------------------------------------------------------------------------


def test_new_store_starts_at_revision_one_disabled(store: AuthStore) -> None:
    assert store.revision == 1 and not store.enabled
    assert store.user_list() == [] and store.role_list() == []


def test_every_change_bumps_the_revision_once(store: AuthStore) -> None:
    add_user(store, "alice")
    assert store.revision == 2
    add_role(store, "r1", (READ, b"/a", b""))
    assert store.revision == 4
    grant(store, "alice", "r1")
    assert store.revision == 5
    grant(store, "alice", "r1")  # already granted: no change
    assert store.revision == 5
    assert store.user_get("alice") == ["r1"]
    assert [(p.key, p.permType) for p in store.role_get("r1")] == [(b"/a", READ)]


def test_record_errors_are_etcds(store: AuthStore) -> None:
    add_user(store, "alice")
    raises(errors.USER_EMPTY, lambda: store.apply_user_add(pb.AuthUserAddRequest(), Batch()))
    raises(
        errors.USER_ALREADY_EXIST,
        lambda: store.apply_user_add(pb.AuthUserAddRequest(name="alice"), Batch()),
    )
    raises(errors.ROLE_EMPTY, lambda: store.apply_role_add(pb.AuthRoleAddRequest(), Batch()))
    raises(errors.USER_NOT_FOUND, lambda: store.user_get("bob"))
    raises(errors.ROLE_NOT_FOUND, lambda: store.role_get("nope"))
    raises(
        errors.ROLE_NOT_FOUND,
        lambda: store.apply_user_grant_role(
            pb.AuthUserGrantRoleRequest(user="alice", role="x"), Batch()
        ),
    )
    raises(
        errors.ROLE_NOT_GRANTED,
        lambda: store.apply_user_revoke_role(
            pb.AuthUserRevokeRoleRequest(name="alice", role="x"), Batch()
        ),
    )
    raises(
        errors.PERMISSION_NOT_GIVEN,
        lambda: store.apply_role_grant_permission(
            pb.AuthRoleGrantPermissionRequest(name="x"), Batch()
        ),
    )
    add_role(store, "r1")
    raises(
        errors.PERMISSION_NOT_GRANTED,
        lambda: store.apply_role_revoke_permission(
            pb.AuthRoleRevokePermissionRequest(role="r1", key=b"/a"), Batch()
        ),
    )
    assert store.revision == 3  # failed applies changed nothing


def test_grant_permission_updates_same_range_and_sorts_by_key(store: AuthStore) -> None:
    add_role(store, "r", (READ, b"/b", b""), (READ, b"/a", b"/c"), (WRITE, b"/a", b"/c"))
    assert [(p.key, p.range_end, p.permType) for p in store.role_get("r")] == [
        (b"/a", b"/c", WRITE),
        (b"/b", b"", READ),
    ]


def test_role_delete_removes_it_from_users(store: AuthStore) -> None:
    add_user(store, "alice")
    add_role(store, "r1")
    add_role(store, "r2")
    grant(store, "alice", "r1")
    grant(store, "alice", "r2")
    apply(store, lambda b: store.apply_role_delete(pb.AuthRoleDeleteRequest(role="r1"), b))
    assert store.user_get("alice") == ["r2"] and store.role_list() == ["r2"]


def test_state_survives_reopen(tmp_path: Path) -> None:
    b = Backend(tmp_path / "db")
    s = AuthStore(b, bcrypt_cost=COST)
    enable_with_root(s)
    add_role(s, "r1", (READWRITE, b"/p/", b"/p0"))
    rev = s.revision
    b.close()
    b2 = Backend(tmp_path / "db")
    try:
        s2 = AuthStore(b2, bcrypt_cost=COST)
        assert s2.enabled and s2.revision == rev
        assert [p.key for p in s2.role_get("r1")] == [b"/p/"]
        hashed, _ = s2.password_record("root")
        assert hashed.startswith(b"$2a$04$") and password_matches(hashed, "rootpw")
    finally:
        b2.close()


# -- enable / disable / root rules ----------------------------------------------------------------


def test_enable_needs_root_user_with_root_role(store: AuthStore) -> None:
    raises(errors.ROOT_USER_NOT_EXIST, lambda: store.apply_enable(Batch()))
    add_user(store, "root")
    raises(errors.ROOT_ROLE_NOT_EXIST, lambda: store.apply_enable(Batch()))
    grant(store, "root", "root")  # the root role need not exist as a record
    rev = store.revision
    apply(store, store.apply_enable)
    assert store.enabled and store.revision == rev  # enable does not count
    apply(store, store.apply_enable)  # again: no-op
    apply(store, store.apply_disable)
    assert not store.enabled and store.revision == rev + 1
    apply(store, store.apply_disable)
    assert store.revision == rev + 1


def test_root_is_protected_only_while_enabled(store: AuthStore) -> None:
    enable_with_root(store)
    raises(
        errors.INVALID_AUTH_MGMT,
        lambda: store.apply_user_delete(pb.AuthUserDeleteRequest(name="root"), Batch()),
    )
    raises(
        errors.INVALID_AUTH_MGMT,
        lambda: store.apply_user_revoke_role(
            pb.AuthUserRevokeRoleRequest(name="root", role="root"), Batch()
        ),
    )
    raises(
        errors.INVALID_AUTH_MGMT,
        lambda: store.apply_role_delete(pb.AuthRoleDeleteRequest(role="root"), Batch()),
    )
    apply(store, store.apply_disable)
    apply(store, lambda b: store.apply_user_delete(pb.AuthUserDeleteRequest(name="root"), b))
    assert store.user_list() == []


# -- permission checks ------------------------------------------------------------------------------


def test_everything_is_permitted_while_disabled(store: AuthStore) -> None:
    store.is_range_permitted(None, b"/x", b"")
    store.is_put_permitted(None, b"/x")
    store.is_admin_permitted(None)


def test_checks_follow_etcd(store: AuthStore) -> None:
    enable_with_root(store)
    add_user(store, "alice")
    add_role(store, "r1", (READWRITE, b"/p/", b"/p0"), (READ, b"/r", b""))
    grant(store, "alice", "r1")
    a = ai(store, "alice")
    store.is_range_permitted(a, b"/r", b"")
    store.is_put_permitted(a, b"/p/1")
    store.is_delete_range_permitted(a, b"/p/", b"/p0")
    raises(errors.PERMISSION_DENIED, lambda: store.is_put_permitted(a, b"/r"))
    raises(errors.PERMISSION_DENIED, lambda: store.is_range_permitted(a, b"/p/", b"\x00"))
    raises(errors.USER_EMPTY, lambda: store.is_range_permitted(None, b"/r", b""))
    raises(errors.PERMISSION_DENIED, lambda: store.is_admin_permitted(a))
    raises(errors.USER_EMPTY, lambda: store.is_admin_permitted(None))
    raises(errors.USER_NOT_FOUND, lambda: store.is_admin_permitted(AuthInfo("ghost", 9)))
    store.is_admin_permitted(ai(store, "root"))
    store.is_put_permitted(ai(store, "root"), b"/anything")
    # a grant after the token was checked makes the request's auth revision stale
    add_role(store, "r2")
    raises(errors.AUTH_OLD_REVISION, lambda: store.is_range_permitted(a, b"/r", b""))
    # revoking the role drops the cached permissions
    req = pb.AuthUserRevokeRoleRequest(name="alice", role="r1")
    apply(store, lambda b: store.apply_user_revoke_role(req, b))
    raises(
        errors.PERMISSION_DENIED, lambda: store.is_range_permitted(ai(store, "alice"), b"/r", b"")
    )


def test_txn_checks_compares_both_branches_and_nested(store: AuthStore) -> None:
    enable_with_root(store)
    add_user(store, "alice")
    add_role(store, "r1", (READWRITE, b"/p/", b"/p0"))
    grant(store, "alice", "r1")
    a = ai(store, "alice")

    def put(key: bytes) -> pb.RequestOp:
        return pb.RequestOp(request_put=pb.PutRequest(key=key))

    store.check_txn(a, pb.TxnRequest(compare=[pb.Compare(key=b"/p/a")], success=[put(b"/p/b")]))
    for bad in (
        pb.TxnRequest(compare=[pb.Compare(key=b"/x")]),
        pb.TxnRequest(failure=[put(b"/x")]),
        pb.TxnRequest(success=[pb.RequestOp(request_txn=pb.TxnRequest(success=[put(b"/x")]))]),
        pb.TxnRequest(
            success=[
                pb.RequestOp(
                    request_delete_range=pb.DeleteRangeRequest(key=b"/p/", range_end=b"/q")
                )
            ]
        ),
    ):
        raises(errors.PERMISSION_DENIED, functools.partial(store.check_txn, a, bad))


def test_lease_keys_must_be_writable(store: AuthStore) -> None:
    enable_with_root(store)
    add_user(store, "alice")
    add_role(store, "r1", (READWRITE, b"/p/", b"/p0"))
    grant(store, "alice", "r1")
    a = ai(store, "alice")
    keys = {7: {b"/p/1"}, 8: {b"/p/1", b"/secret"}}
    store.check_lease_puts(a, keys.get, 7)
    store.check_lease_puts(a, keys.get, 99)  # unknown lease: the revoke itself reports it
    raises(errors.PERMISSION_DENIED, lambda: store.check_lease_puts(a, keys.get, 8))


# -- passwords and tokens ---------------------------------------------------------------------------


def test_password_records(store: AuthStore) -> None:
    raises(errors.AUTH_NOT_ENABLED, lambda: store.password_record("root"))
    enable_with_root(store)
    add_user(store, "bob", no_password=True)
    raises(errors.AUTH_FAILED, lambda: store.password_record("nobody"))
    raises(errors.NO_PASSWORD_USER, lambda: store.password_record("bob"))
    hashed, rev = store.password_record("root")
    assert rev == store.revision
    assert base64.b64decode(hash_password("x", COST)).startswith(b"$2a$04$")
    assert password_matches(hashed, "rootpw") and not password_matches(hashed, "nope")
    assert not password_matches(b"garbage", "rootpw")


def test_authenticate_mints_prefix_dot_index(store: AuthStore) -> None:
    raises(
        errors.AUTH_NOT_ENABLED,
        lambda: store.apply_authenticate(ipb.InternalAuthenticate(name="root"), 5),
    )
    enable_with_root(store)
    add_user(store, "bob", no_password=True)
    tok = store.apply_authenticate(ipb.InternalAuthenticate(name="root", simple_token="abc"), 42)
    assert tok == "abc.42" and store.tokens.lookup(tok) == "root"
    raises(
        errors.AUTH_FAILED,
        lambda: store.apply_authenticate(
            ipb.InternalAuthenticate(name="bob", simple_token="x"), 43
        ),
    )
    # a password change invalidates the user's tokens; disabling auth forgets all tokens
    req = pb.AuthUserChangePasswordRequest(name="root", hashedPassword=hash_password("n", COST))
    apply(store, lambda b: store.apply_user_change_password(req, b))
    assert store.tokens.lookup(tok) is None
    tok2 = store.apply_authenticate(ipb.InternalAuthenticate(name="root", simple_token="d"), 50)
    apply(store, store.apply_disable)
    assert store.tokens.lookup(tok2) is None


def test_token_ttl_is_refreshed_by_use() -> None:
    clock = Clock()
    t = SimpleTokens(10, clock)
    t.assign("u", "a.1")
    assert t.lookup("a.1") is None and len(t) == 0  # disabled: nothing is minted
    t.enable()
    t.assign("u", "a.1")
    t.assign("v", "b.2")
    clock.now += 8
    assert t.lookup("a.1") == "u"
    clock.now += 8
    assert t.lookup("a.1") == "u"  # refreshed 8s ago
    assert t.lookup("b.2") is None  # unused for 16s
    clock.now += 11
    assert t.sweep() == 1 and len(t) == 0


@pytest.mark.parametrize(
    ("token", "index"),
    [
        ("abc.12", 12),
        ("abc", None),
        ("a.b.1", None),
        ("abc.-1", None),
        ("abc.+1", None),
        ("abc.", None),
        ("abc.18446744073709551616", None),
        ("abc.18446744073709551615", 2**64 - 1),
    ],
)
def test_token_index(token: str, index: int | None) -> None:
    assert token_index(token) == index
