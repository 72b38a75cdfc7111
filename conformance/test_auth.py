"""Auth (users, roles, permissions, tokens) through etcdctl 3.5.1 and raw gRPC, on a fresh
cluster per test (enabling auth changes the cluster for everyone).

Expected texts are etcd 3.5.1's. Where the targets differ:
- etcd 3.4 has no AuthStatus RPC: `auth status` fails with Unimplemented there (skipped).
- etcd 3.4 refuses a watch with watch_id -1 in the canceled response (3.5: the requested ID)
  and returns Alarm's invalid-token error unconverted ("auth: invalid auth token", code
  Unknown; 3.5: "etcdserver: invalid auth token", Unauthenticated). petcd
  follows 3.5 in both.
- etcd 3.5.1 does not check the ops of a txn nested in a txn (its checkTxnReqsPermission
  ignores RequestOp_RequestTxn), so a user can write any key that way; petcd checks nested
  ops and refuses, as later etcd releases do. `test_nested_txn` asserts each behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from conformance.util import error_line
from harness.etcdctl import Etcdctl, Result
from harness.local import LocalCluster
from tests.support.timeouts import CONVERGE, REQUEST

ROOT = ("--user", "root:rootpw")
ALICE = ("--user", "alice:apw")
DENIED = "Error: etcdserver: permission denied"
USER_EMPTY = "Error: etcdserver: user name is empty"
AUTH_FAILED = "Error: etcdserver: authentication failed, invalid user ID or password"
WATCH_DENIED = "rpc error: code = PermissionDenied desc = etcdserver: permission denied"


def ok(res: Result, stdout: str) -> None:
    assert res.rc == 0, f"{res.args}: rc={res.rc} stderr={res.stderr}"
    assert res.stdout == stdout, f"{res.args}: {res.stdout!r}"


def fails(res: Result, error: str, rc: int = 1) -> None:
    assert (res.rc, error_line(res)) == (rc, error), f"{res.args}: {res.rc} {res.stderr}"


def setup_users(ctl: Etcdctl) -> None:
    """root (root role), alice with r1 = READWRITE /p/ prefix + READ /r; auth enabled."""
    ok(ctl("user", "add", "root:rootpw"), "User root created\n")
    ok(ctl("user", "grant-role", "root", "root"), "Role root is granted to user root\n")
    ok(ctl("user", "add", "alice:apw"), "User alice created\n")
    ok(ctl("role", "add", "r1"), "Role r1 created\n")
    ok(ctl("role", "grant-permission", "r1", "readwrite", "/p/", "--prefix"), "Role r1 updated\n")
    ok(ctl("role", "grant-permission", "r1", "read", "/r"), "Role r1 updated\n")
    ok(ctl("user", "grant-role", "alice", "r1"), "Role r1 is granted to user alice\n")
    ok(ctl("put", "/r", "rv"), "OK\n")
    ok(ctl("put", "/x", "xv"), "OK\n")
    ok(ctl("auth", "enable"), "Authentication Enabled\n")


@pytest.fixture
def auth_cluster(fresh_cluster: LocalCluster) -> LocalCluster:
    setup_users(fresh_cluster.ctl())
    return fresh_cluster


# -- user and role management ---------------------------------------------------------------------

R1_DETAIL = (
    "Role r1\nKV Read:\n\t/a\n\t[/p/, /p0) (prefix /p/)\nKV Write:\n"
    "\t[/from, <open ended>\n\t[/p/, /p0) (prefix /p/)\n\t[/w, /wz)\n"
)


def test_user_and_role_commands(target: str, fresh_cluster: LocalCluster) -> None:
    ctl = fresh_cluster.ctl()
    if target != "etcd-3.4":
        ok(ctl("auth", "status"), "Authentication Status: false\nAuthRevision: 1\n")
    fails(ctl("auth", "enable"), "Error: etcdserver: root user does not exist")
    fails(ctl("user", "grant-role", "root", "root"), "Error: etcdserver: user name not found")
    ok(ctl("role", "add", "root"), "Role root created\n")
    ok(ctl("role", "get", "root"), "Role root\nKV Read:\nKV Write:\n")
    ok(ctl("user", "add", "alice:apw"), "User alice created\n")
    ok(ctl("user", "add", "bob", "--no-password"), "User bob created\n")
    fails(ctl("user", "add", "alice:x"), "Error: etcdserver: user name already exists")
    ok(ctl("role", "add", "r1"), "Role r1 created\n")
    fails(ctl("role", "add", "r1"), "Error: etcdserver: role name already exists")
    for perm in (
        ("read", "/a"),
        ("readwrite", "/p/", "--prefix"),
        ("write", "/w", "/wz"),
        ("write", "/from", "--from-key"),
    ):
        ok(ctl("role", "grant-permission", "r1", *perm), "Role r1 updated\n")
    fails(
        ctl("role", "grant-permission", "r1", "bogus", "/a"),
        "Error: invalid permission type: bogus",
        128,
    )
    ok(ctl("role", "get", "r1"), R1_DETAIL)
    fails(ctl("role", "get", "nope"), "Error: etcdserver: role name not found")
    ok(ctl("user", "grant-role", "alice", "r1"), "Role r1 is granted to user alice\n")
    fails(ctl("user", "grant-role", "alice", "nope"), "Error: etcdserver: role name not found")
    fails(ctl("user", "grant-role", "nope", "r1"), "Error: etcdserver: user name not found")
    ok(ctl("user", "get", "alice"), "User: alice\nRoles: r1\n")
    ok(ctl("user", "get", "alice", "--detail"), "User: alice\n\n" + R1_DETAIL)
    ok(ctl("user", "list"), "alice\nbob\n")
    ok(ctl("role", "list"), "r1\nroot\n")
    ok(ctl("user", "add", "root:rootpw"), "User root created\n")
    # etcdctl's auth enable adds the root role when missing; here it exists, unassigned
    fails(ctl("auth", "enable"), "Error: etcdserver: role name already exists")
    ok(
        ctl("role", "revoke-permission", "r1", "/a"),
        "Permission of key /a is revoked from role r1\n",
    )
    fails(
        ctl("role", "revoke-permission", "r1", "/a"),
        "Error: etcdserver: permission is not granted to the role",
    )
    ok(
        ctl("role", "revoke-permission", "r1", "/p/", "--prefix"),
        "Permission of range [/p/, /p0) is revoked from role r1\n",
    )
    ok(ctl("user", "revoke-role", "alice", "r1"), "Role r1 is revoked from user alice\n")
    fails(
        ctl("user", "revoke-role", "alice", "r1"),
        "Error: etcdserver: role is not granted to the user",
    )
    ok(ctl("user", "passwd", "alice", "--interactive=false", input="newpw\n"), "Password updated\n")
    ok(ctl("user", "delete", "bob"), "User bob deleted\n")
    fails(ctl("user", "delete", "bob"), "Error: etcdserver: user name not found")
    ok(ctl("role", "delete", "r1"), "Role r1 deleted\n")
    fails(ctl("role", "delete", "r1"), "Error: etcdserver: role name not found")
    fails(ctl("role", "add", ""), "Error: etcdserver: role name is empty")
    if target != "etcd-3.4":
        # 1 + 16 changes: adds, grants, revokes, passwd, deletes (failed requests count none)
        ok(ctl("auth", "status"), "Authentication Status: false\nAuthRevision: 17\n")
    with_auth = ctl("user", "get", "alice", *ROOT)  # auth disabled: credentials are ignored
    ok(with_auth, "User: alice\nRoles:\n")


def test_enable_disable_and_root_rules(target: str, fresh_cluster: LocalCluster) -> None:
    ctl = fresh_cluster.ctl()
    ok(ctl("user", "add", "root:rootpw"), "User root created\n")
    ok(ctl("auth", "enable"), "Authentication Enabled\n")  # etcdctl adds and grants root role
    fails(ctl("get", "/a"), USER_EMPTY)
    fails(ctl("put", "/a", "v"), USER_EMPTY)
    fails(ctl("user", "list"), USER_EMPTY)
    fails(ctl("get", "/a", "--user", "root:bad"), AUTH_FAILED, 2)
    fails(ctl("get", "/a", "--user", "nope:x"), AUTH_FAILED, 2)
    ok(ctl("role", "list", *ROOT), "root\n")
    if target != "etcd-3.4":
        ok(ctl("auth", "status", *ROOT), "Authentication Status: true\nAuthRevision: 4\n")
    fails(
        ctl("user", "revoke-role", "root", "root", *ROOT),
        "Error: etcdserver: invalid auth management",
    )
    fails(ctl("user", "delete", "root", *ROOT), "Error: etcdserver: invalid auth management")
    fails(ctl("role", "delete", "root", *ROOT), "Error: etcdserver: invalid auth management")
    ok(ctl("auth", "disable", *ROOT), "Authentication Disabled\n")
    ok(ctl("auth", "disable"), "Authentication Disabled\n")
    if target != "etcd-3.4":
        ok(ctl("auth", "status"), "Authentication Status: false\nAuthRevision: 5\n")
    ok(ctl("put", "/a", "v"), "OK\n")


# -- permissions ---------------------------------------------------------------------------------


def test_kv_permissions(target: str, auth_cluster: LocalCluster) -> None:
    ctl = auth_cluster.ctl()
    ok(ctl("get", "/r", *ALICE), "/r\nrv\n")
    fails(ctl("put", "/r", "v", *ALICE), DENIED)
    fails(ctl("del", "/r", *ALICE), DENIED)
    fails(ctl("get", "/x", *ALICE), DENIED)
    fails(ctl("get", "/p", *ALICE), DENIED)
    fails(ctl("get", "/p/", "--from-key", *ALICE), DENIED)
    ok(ctl("put", "/p/1", "v", "--prev-kv", *ALICE), "OK\n")
    ok(ctl("put", "/p/1", "v2", "--prev-kv", *ALICE), "OK\n/p/1\nv\n")
    ok(ctl("get", "/p/", "--prefix", *ALICE), "/p/1\nv2\n")
    ok(ctl("get", "/p/1", "/p/2", *ALICE), "/p/1\nv2\n")
    ok(ctl("del", "/p/1", "--prev-kv", *ALICE), "1\n/p/1\nv2\n")
    fails(
        ctl("txn", "--interactive=false", *ALICE, input='value("/x") = "xv"\n\nput /p/t 1\n\n\n'),
        DENIED,
    )
    fails(
        ctl(
            "txn",
            "--interactive=false",
            *ALICE,
            input='value("/p/a") = "1"\n\nput /p/t 1\n\nput /x 2\n\n',
        ),
        DENIED,
    )
    fails(ctl("txn", "--interactive=false", *ALICE, input="\nget /r\n\nget /x\n\n"), DENIED)
    ok(
        ctl("txn", "--interactive=false", *ALICE, input="\nget /r\nput /p/q 1\n\n\n"),
        "SUCCESS\n\n/r\nrv\n\nOK\n",
    )
    ok(ctl("get", "/x", *ROOT), "/x\nxv\n")
    fails(ctl("check", "perf", "--load=s", *ALICE), DENIED)


def test_admin_only_operations(target: str, auth_cluster: LocalCluster) -> None:
    c = auth_cluster
    ctl = c.ctl([c.members[0]])
    url = c.members[0].client_url
    fails(ctl("user", "list", *ALICE), DENIED)
    fails(ctl("role", "list", *ALICE), DENIED)
    fails(ctl("user", "get", "root", *ALICE), DENIED)
    fails(ctl("role", "get", "root", *ALICE), DENIED)
    ok(ctl("user", "get", "alice", *ALICE), "User: alice\nRoles: r1\n")  # oneself
    ok(
        ctl("role", "get", "r1", *ALICE),
        "Role r1\nKV Read:\n\t[/p/, /p0) (prefix /p/)\n\t/r\nKV Write:\n\t[/p/, /p0) (prefix /p/)\n",
    )
    if target != "etcd-3.4":
        fails(ctl("auth", "status", *ALICE), DENIED)
    for args in (
        ("member", "add", "m9", "--peer-urls=http://127.0.0.1:1"),
        ("member", "remove", "1234"),
        ("member", "update", "1234", "--peer-urls=http://127.0.0.1:1"),
        ("member", "promote", "1234"),
        ("user", "add", "eve:x"),
        ("role", "add", "r9"),
        ("auth", "disable"),
    ):
        fails(ctl(*args, *ALICE), DENIED)
    res = ctl("defrag", *ALICE)
    assert res.rc == 1 and res.stderr.splitlines()[-1] == (
        f"Failed to defragment etcd member[{url}] "
        "(rpc error: code = Unknown desc = auth: permission denied)"
    )
    fails(
        ctl("endpoint", "hashkv", *ALICE),
        "Error: rpc error: code = Unknown desc = auth: permission denied",
    )
    fails(
        ctl("snapshot", "save", str(c.root / "snap.db"), *ALICE),
        "Error: rpc error: code = Unknown desc = auth: permission denied",
        5,
    )
    # no admin needed (etcd 3.5.1): compaction, alarms, member list, status, leases
    ok(ctl("compaction", "1", *ALICE), "compacted revision 1\n")
    ok(ctl("alarm", "list", *ALICE), "")
    assert len(ctl("member", "list", *ALICE).check().lines()) == 3
    ctl("endpoint", "status", *ALICE).check()
    ctl("lease", "grant", "100", *ALICE).check()
    assert ctl("defrag", *ROOT).check().stdout == f"Finished defragmenting etcd member[{url}]\n"


def test_lease_permissions(target: str, auth_cluster: LocalCluster) -> None:
    ctl = auth_cluster.ctl()
    lease = ctl("lease", "grant", "100", *ROOT).check().stdout.split()[1]
    ok(ctl("put", "/x", "xv2", f"--lease={lease}", *ROOT), "OK\n")
    fails(
        ctl("lease", "revoke", lease, *ALICE),
        "Error: failed to revoke lease (etcdserver: permission denied)",
    )
    fails(ctl("put", "/p/l", "v", f"--lease={lease}", *ALICE), DENIED)
    ttl = ctl("lease", "timetolive", lease, "--keys", *ALICE).check().stdout
    assert ttl.endswith("attached keys([/x])\n")
    ok(ctl("lease", "revoke", lease, *ROOT), f"lease {lease} revoked\n")
    own = ctl("lease", "grant", "100", *ALICE).check().stdout.split()[1]
    ok(ctl("put", "/p/l", "v", f"--lease={own}", *ALICE), "OK\n")
    ok(ctl("lease", "revoke", own, *ALICE), f"lease {own} revoked\n")
    ok(ctl("get", "/p/l", *ALICE), "")


def test_password_change_and_user_delete(target: str, auth_cluster: LocalCluster) -> None:
    ctl = auth_cluster.ctl()
    ok(
        ctl("user", "passwd", "alice", "--interactive=false", *ROOT, input="newpw\n"),
        "Password updated\n",
    )
    fails(ctl("get", "/r", *ALICE), AUTH_FAILED, 2)
    ok(ctl("get", "/r", "--user", "alice:newpw"), "/r\nrv\n")
    ok(ctl("user", "add", "bob", "--no-password", *ROOT), "User bob created\n")
    fails(ctl("get", "/r", "--user", "bob:"), USER_EMPTY)
    res = ctl("get", "/r", "--user", "bob", "--password=x")
    fails(
        res,
        "Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user",
        2,
    )
    ok(ctl("user", "revoke-role", "alice", "r1", *ROOT), "Role r1 is revoked from user alice\n")
    fails(ctl("get", "/r", "--user", "alice:newpw"), DENIED)
    ok(ctl("user", "delete", "alice", *ROOT), "User alice deleted\n")
    fails(ctl("get", "/r", "--user", "alice:newpw"), AUTH_FAILED, 2)


def test_watch_permission(target: str, auth_cluster: LocalCluster) -> None:
    ctl = auth_cluster.ctl()
    res = ctl("watch", "/x", "--rev=1", *ALICE)
    assert res.rc == 5
    assert f"watch was canceled ({WATCH_DENIED})" in res.stdout + res.stderr
    assert error_line(res) == "Error: watch is canceled by the server"


# -- raw gRPC: tokens on every member, invalid tokens, raw errors ------------------------------


@pytest.fixture
def rpc(auth_cluster: LocalCluster) -> Iterator[tuple[LocalCluster, Any, list[grpc.Channel]]]:
    from aetcd import rpc as r

    chans = [
        grpc.insecure_channel(m.client_url.removeprefix("http://")) for m in auth_cluster.members
    ]
    try:
        yield auth_cluster, r, chans
    finally:
        for ch in chans:
            ch.close()


def _call(fn: Any, req: Any, token: str | None = None) -> tuple[str, str]:
    md = [("token", token)] if token is not None else None
    try:
        fn(req, metadata=md, timeout=5)
    except grpc.RpcError as e:
        return e.code().name, e.details() or ""
    return "OK", ""


def _token(r: Any, ch: grpc.Channel, name: str, password: str) -> str:
    tok: str = (
        r.AuthStub(ch).Authenticate(r.AuthenticateRequest(name=name, password=password)).token
    )
    prefix, _, index = tok.partition(".")
    assert len(prefix) == 16 and prefix.isalpha() and index.isdigit(), tok
    return tok


def test_token_valid_on_every_member(
    target: str, rpc: tuple[LocalCluster, Any, list[grpc.Channel]]
) -> None:
    _, r, chans = rpc
    tok = _token(r, chans[0], "alice", "apw")
    for ch in chans:  # followers learned the token when they applied the Authenticate entry
        deadline = time.monotonic() + CONVERGE
        while (got := _call(r.KVStub(ch).Range, r.RangeRequest(key=b"/r"), tok)) != ("OK", ""):
            assert time.monotonic() < deadline, got
            time.sleep(0.1)
        assert _call(r.KVStub(ch).Range, r.RangeRequest(key=b"/x"), tok) == (
            "PERMISSION_DENIED",
            "etcdserver: permission denied",
        )


def test_invalid_tokens(target: str, rpc: tuple[LocalCluster, Any, list[grpc.Channel]]) -> None:
    _, r, chans = rpc
    kv, auth, mt = r.KVStub(chans[0]), r.AuthStub(chans[0]), r.MaintenanceStub(chans[0])
    invalid = ("UNAUTHENTICATED", "etcdserver: invalid auth token")
    for bogus in ("bogus", "", "abcdefghijklmnop.1", "a.b.1"):
        assert _call(kv.Range, r.RangeRequest(key=b"/r"), bogus) == invalid
    assert _call(kv.Put, r.PutRequest(key=b"/p/1", value=b"v"), "bogus") == invalid
    assert _call(r.LeaseStub(chans[0]).LeaseGrant, r.LeaseGrantRequest(TTL=10), "bogus") == invalid
    assert _call(auth.UserList, r.AuthUserListRequest(), "bogus") == invalid
    # etcd 3.4 returns Alarm's auth error unconverted (code Unknown, "auth: ..." text)
    alarm = ("UNKNOWN", "auth: invalid auth token") if target == "etcd-3.4" else invalid
    assert _call(mt.Alarm, r.AlarmRequest(), "bogus") == alarm
    assert _call(mt.Defragment, r.DefragmentRequest(), "bogus") == (
        "UNKNOWN",
        "auth: invalid auth token",
    )
    assert _call(mt.Defragment, r.DefragmentRequest()) == ("UNKNOWN", "auth: user name is empty")
    assert _call(mt.HashKV, r.HashKVRequest()) == ("UNKNOWN", "auth: user name is empty")
    assert _call(mt.Status, r.StatusRequest(), "bogus") == ("OK", "")
    assert _call(r.ClusterStub(chans[0]).MemberList, r.MemberListRequest(), "bogus") == ("OK", "")
    assert _call(kv.Compact, r.CompactionRequest(revision=1)) == ("OK", "")
    assert _call(kv.Range, r.RangeRequest(key=b"/r")) == (
        "INVALID_ARGUMENT",
        "etcdserver: user name is empty",
    )
    assert _call(auth.Authenticate, r.AuthenticateRequest(name="alice", password="x")) == (
        "INVALID_ARGUMENT",
        "etcdserver: authentication failed, invalid user ID or password",
    )
    root = _token(r, chans[0], "root", "rootpw")
    assert _call(auth.AuthDisable, r.AuthDisableRequest(), root) == ("OK", "")
    # with auth disabled, any token (even one that was valid) is refused; none is fine
    assert _call(kv.Range, r.RangeRequest(key=b"/r"), root) == invalid
    assert _call(kv.Range, r.RangeRequest(key=b"/r")) == ("OK", "")
    assert _call(auth.Authenticate, r.AuthenticateRequest(name="root", password="rootpw")) == (
        "FAILED_PRECONDITION",
        "etcdserver: authentication is not enabled",
    )


def test_watch_denied_response(
    target: str, rpc: tuple[LocalCluster, Any, list[grpc.Channel]]
) -> None:
    _, r, chans = rpc
    tok = _token(r, chans[0], "alice", "apw")

    def reqs() -> Iterator[Any]:
        yield r.WatchRequest(create_request=r.WatchCreateRequest(key=b"/x", watch_id=7))
        yield r.WatchRequest(create_request=r.WatchCreateRequest(key=b"/p/", range_end=b"/p0"))
        time.sleep(2)

    got = []
    stream = r.WatchStub(chans[0]).Watch(reqs(), metadata=[("token", tok)], timeout=3)
    try:
        for m in stream:
            got.append((m.watch_id, m.created, m.canceled, m.cancel_reason))
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # etcd 3.5 answers with the requested watch ID, etcd 3.4 with -1
    denied_id = -1 if target == "etcd-3.4" else 7
    assert (denied_id, True, True, WATCH_DENIED) in got
    assert any(created and not canceled for _, created, canceled, _ in got), got


def test_nested_txn(target: str, rpc: tuple[LocalCluster, Any, list[grpc.Channel]]) -> None:
    _, r, chans = rpc
    tok = _token(r, chans[0], "alice", "apw")
    inner = r.TxnRequest(success=[r.RequestOp(request_put=r.PutRequest(key=b"/x", value=b"n"))])
    outer = r.TxnRequest(success=[r.RequestOp(request_txn=inner)])
    got = _call(r.KVStub(chans[0]).Txn, outer, tok)
    if target == "petcd":
        assert got == ("PERMISSION_DENIED", "etcdserver: permission denied")
    else:  # etcd 3.4/3.5.1 do not check nested txn ops
        assert got == ("OK", "")


# -- permissions are checked at apply: a revoke racing a write ----------------------------------

OLD_REVISION = ("UNKNOWN", "auth: revision in header is old")
PUT_DELAY_MS = 1500
"""petcd only (failpoint putDelay): how long each Put waits between its auth and its proposal."""


def _puts_started(url: str) -> float:
    """grpc_server_started_total for KV/Put on the member at `url` (etcd and petcd alike)."""
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith("grpc_server_started_total{") and 'grpc_method="Put"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_permission_revoked_while_put_in_flight(
    target: str, cluster_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice's Put is in flight (past its auth check, not yet applied) when root revokes her
    permission: it is applied before the revoke or refused, never applied after it. etcd
    checks at apply against the auth revision the request was authorized at: a newer auth
    store answers "auth: revision in header is old" (code Unknown in 3.5.1; clientv3 does not
    retry it). On petcd the failpoint holds the Put between its auth and its proposal, so the
    race is always hit: the Put must be refused (etcdctl as for any Unknown error)."""
    from aetcd import rpc as r

    if target == "petcd":
        monkeypatch.setenv("PETCD_FAILPOINTS", f"putDelay=delay:{PUT_DELAY_MS}")
    c = cluster_factory(1)
    ctl = c.ctl()
    setup_users(ctl)
    url = c.members[0].client_url
    ch = grpc.insecure_channel(url.removeprefix("http://"))
    try:
        kv, auth = r.KVStub(ch), r.AuthStub(ch)
        alice, root = _token(r, ch, "alice", "apw"), _token(r, ch, "root", "rootpw")
        revoke = r.AuthRoleRevokePermissionRequest(role="r1", key=b"/p/", range_end=b"/p0")
        before = _puts_started(url)
        put = kv.Put.future(r.PutRequest(key=b"/p/raced", value=b"v"),
                            metadata=[("token", alice)], timeout=REQUEST)
        deadline = time.monotonic() + REQUEST
        while _puts_started(url) <= before and not put.done():  # the Put reached the server
            assert time.monotonic() < deadline, "the Put never started"
            time.sleep(0.01)
        revoked = auth.RoleRevokePermission(revoke, metadata=[("token", root)], timeout=REQUEST)
        try:
            got: tuple[str, str] | int = put.result().header.revision
        except grpc.RpcError as e:
            got = (e.code().name, e.details() or "")
        stored = kv.Range(r.RangeRequest(key=b"/p/raced"), metadata=[("token", root)],
                          timeout=REQUEST).kvs
        if isinstance(got, int):  # applied: then before the revoke
            assert got <= revoked.header.revision and len(stored) == 1, (got, revoked)
        else:
            assert got in (OLD_REVISION, ("PERMISSION_DENIED", "etcdserver: permission denied"))
            assert not stored
        if target == "petcd":
            assert got == OLD_REVISION
            # the same through etcdctl 3.5.1 (it does not retry): grant, race, refused
            ok(ctl("role", "grant-permission", "r1", "readwrite", "/p/", "--prefix", *ROOT),
               "Role r1 updated\n")
            before = _puts_started(url)
            with ThreadPoolExecutor(1) as pool:
                res = pool.submit(ctl, "put", "/p/raced", "v", *ALICE)
                deadline = time.monotonic() + REQUEST
                while _puts_started(url) <= before and not res.done():
                    assert time.monotonic() < deadline, "etcdctl's Put never started"
                    time.sleep(0.01)
                ok(ctl("role", "revoke-permission", "r1", "/p/", "--prefix", *ROOT),
                   "Permission of range [/p/, /p0) is revoked from role r1\n")
                fails(res.result(),
                      "Error: rpc error: code = Unknown desc = auth: revision in header is old")
    finally:
        ch.close()
