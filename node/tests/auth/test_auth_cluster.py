"""Auth on a real 3-member petcd cluster (harness.local), through etcdctl 3.5.1: auth state
replicated to every member and kept across a full restart (tokens are not: clients
authenticate again), and a token minted through one member accepted by the others.

The cross-target checks live in `conformance/test_auth.py`; these need process control.
"""

from __future__ import annotations

from harness.etcdctl import Etcdctl, Result
from harness.local import LocalCluster
from tests.support.timeouts import CLUSTER_UP
from tests.support.wait import wait_for

ROOT = ("--user", "root:rootpw")
ALICE = ("--user", "alice:apw")


def test_auth_state_replicated_and_durable(cluster: LocalCluster) -> None:
    c = cluster
    first, *others = c.members
    ctl0 = c.ctl([first])
    for args in (
        ("user", "add", "root:rootpw"),
        ("user", "add", "alice:apw"),
        ("role", "add", "r1"),
        ("role", "grant-permission", "r1", "readwrite", "/p/", "--prefix"),
        ("user", "grant-role", "alice", "r1"),
        ("auth", "enable"),
    ):
        ctl0(*args).check()
    status = ctl0("auth", "status", *ROOT).check().stdout
    assert status.startswith("Authentication Status: true\n")
    for m in others:  # every member applied the same changes
        ctl = c.ctl([m])
        assert ctl("auth", "status", *ROOT).check().stdout == status
        assert ctl("user", "get", "alice", *ROOT).check().stdout == "User: alice\nRoles: r1\n"
        assert ctl("put", "/p/k", m.name, *ALICE).check().stdout == "OK\n"
        assert ctl("put", "/x", "v", *ALICE).stderr.endswith(
            "Error: etcdserver: permission denied\n"
        )

    for m in c.members:
        c.stop_member(m)
    for m in c.members:
        c.start_member(m)
    # (not wait_healthy: `endpoint health` without a user fails once auth is on, as on etcd)
    for m in c.members:
        ctl = c.ctl([m])

        def auth_status(ctl: Etcdctl = ctl) -> Result | None:
            res = ctl("auth", "status", *ROOT)
            return res if res.ok else None

        res = wait_for(auth_status, CLUSTER_UP, f"{m.name} to serve `auth status` after restart")
        assert res.stdout == status
        assert (
            ctl("get", "/p/k", "--print-value-only", *ALICE).check().stdout
            == f"{others[-1].name}\n"
        )
        assert ctl("get", "/x", *ALICE).stderr.endswith("Error: etcdserver: permission denied\n")
        assert ctl("get", "/x").stderr.endswith("Error: etcdserver: user name is empty\n")


def test_token_from_one_member_works_on_the_others(cluster: LocalCluster) -> None:
    import grpc
    from aetcd import rpc as r

    c = cluster
    ctl = c.ctl()
    for args in (("user", "add", "root:rootpw"), ("auth", "enable")):
        ctl(*args).check()
    chans = [grpc.insecure_channel(m.client_url.removeprefix("http://")) for m in c.members]
    try:
        tok = (
            r.AuthStub(chans[1])
            .Authenticate(r.AuthenticateRequest(name="root", password="rootpw"), timeout=10)
            .token
        )
        for i, ch in enumerate(chans):
            md = [("token", tok)]
            r.KVStub(ch).Put(r.PutRequest(key=b"k", value=str(i).encode()), metadata=md, timeout=10)
            got = r.KVStub(ch).Range(r.RangeRequest(key=b"k"), metadata=md, timeout=10)
            assert got.kvs[0].value == str(i).encode()
    finally:
        for ch in chans:
            ch.close()
