"""Leases through etcdctl 3.5.1 (and aetcd for what etcdctl cannot send): grant, revoke,
timetolive, list, keep-alive, keys deleted on revoke and on expiry, expiry across a leader
kill, renewals through a follower.

Output is compared with etcd 3.5.1's modulo lease IDs (16 hex digits) and remaining TTLs. The
clusters run with --heartbeat-interval=100 --election-timeout=1000, so the minimum TTL is 2s.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

from conformance.util import error_line, kv_pairs, revision
from harness.cluster import Cluster
from harness.etcdctl import Etcdctl
from harness.local import LocalCluster
from tests.support import leases
from tests.support.clusters import agreed_leader
from tests.support.encoding import b64
from tests.support.leases import TIME_TO_LIVE
from tests.support.timeouts import CONVERGE
from tests.support.wait import wait_until

MIN_TTL = 2


def grant(ctl: Etcdctl, ttl: int) -> str:
    """Grant a lease; etcd grants a TTL below the minimum as MIN_TTL (checked)."""
    return leases.grant(ctl, ttl, expect_ttl=max(ttl, MIN_TTL))


def wait_gone(ctl: Etcdctl, key: str, deadline: float = CONVERGE) -> float:
    """Poll until `key` is gone (linearizable get); return how long that took. `deadline`
    bounds TTL + election + etcd's retries."""
    start = time.monotonic()

    def gone() -> bool:
        res = ctl("get", key, "--print-value-only")
        return res.ok and res.stdout == ""

    wait_until(gone, deadline, f"{key} to be deleted", interval=0.2)
    return time.monotonic() - start


def follower_ctl(cluster: Cluster) -> Etcdctl:
    leader = cluster.leader()
    follower = next(m for m in cluster.members if m != leader)
    return cluster.ctl([follower])


# -- grant -------------------------------------------------------------------------------------


def test_grant_output(target: str, etcdctl: Etcdctl) -> None:
    grant(etcdctl, 60)
    assert grant(etcdctl, 1)  # below the minimum: granted with the minimum TTL
    doc = etcdctl("lease", "grant", "30", "-w", "json").check().json()
    assert set(doc) == {"cluster_id", "member_id", "revision", "raft_term", "ID", "TTL", "Error"}
    assert doc["TTL"] == 30 and doc["Error"] == "" and doc["ID"] > 0


def test_grant_too_large(target: str, etcdctl: Etcdctl) -> None:
    res = etcdctl("lease", "grant", "9000000001")
    assert res.rc != 0
    assert error_line(res) == "Error: failed to grant lease (etcdserver: too large lease TTL)"
    grant(etcdctl, 9000000000)


def test_grant_given_id(target: str, aetcd: Any) -> None:
    async def fn(client: Any) -> tuple[int, int, str, str]:
        from aetcd import rpc

        resp = await client.leasestub.LeaseGrant(rpc.LeaseGrantRequest(TTL=40, ID=0x1234ABCD))
        try:
            await client.leasestub.LeaseGrant(rpc.LeaseGrantRequest(TTL=40, ID=0x1234ABCD))
        except rpc.AioRpcError as err:
            dup = f"{err.code().name}: {err.details()}"
        else:
            dup = "granted twice"
        await client.leasestub.LeaseRevoke(rpc.LeaseRevokeRequest(ID=0x1234ABCD))
        try:
            await client.leasestub.LeaseRevoke(rpc.LeaseRevokeRequest(ID=0x1234ABCD))
        except rpc.AioRpcError as err:
            gone = f"{err.code().name}: {err.details()}"
        else:
            gone = "revoked twice"
        return resp.ID, resp.TTL, dup, gone

    lid, ttl, dup, gone = aetcd.run(fn)
    assert (lid, ttl) == (0x1234ABCD, 40)
    assert dup == "FAILED_PRECONDITION: etcdserver: lease already exists"
    assert gone == "NOT_FOUND: etcdserver: requested lease not found"


# -- timetolive / list -------------------------------------------------------------------------


def test_timetolive_with_keys(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    lid = grant(etcdctl, 100)
    etcdctl("put", prefix + "k1", "v1", f"--lease={lid}").check()
    etcdctl("put", prefix + "k2", "v2", f"--lease={lid}").check()
    m = TIME_TO_LIVE.match(etcdctl("lease", "timetolive", lid).check().stdout.rstrip("\n"))
    assert m and m.group(1) == lid and m.group(2) == "100" and m.group(4) is None
    assert 90 <= int(m.group(3)) <= 100
    out = etcdctl("lease", "timetolive", "--keys", lid).check().stdout.rstrip("\n")
    m = TIME_TO_LIVE.match(out)
    assert m, out
    assert sorted(m.group(4).split(" ")) == [prefix + "k1", prefix + "k2"]  # any order
    doc = etcdctl("lease", "timetolive", "--keys", lid, "-w", "json").check().json()
    assert set(doc) == {
        "cluster_id", "member_id", "revision", "raft_term", "id", "ttl", "granted-ttl", "keys"
    }  # fmt: skip
    assert doc["id"] == int(lid, 16) and doc["granted-ttl"] == 100 and 90 <= doc["ttl"] <= 100
    assert sorted(doc["keys"]) == [b64(prefix + "k1"), b64(prefix + "k2")]
    # a key put again without the lease is detached; a deleted key too
    etcdctl("put", prefix + "k1", "v").check()
    etcdctl("del", prefix + "k2").check()
    doc = etcdctl("lease", "timetolive", "--keys", lid, "-w", "json").check().json()
    assert doc["keys"] is None
    etcdctl("lease", "revoke", lid).check()


def test_timetolive_unknown(target: str, etcdctl: Etcdctl) -> None:
    res = etcdctl("lease", "timetolive", "123").check()
    assert res.stdout == "lease 0000000000000123 already expired\n"
    doc = etcdctl("lease", "timetolive", "123", "-w", "json").check().json()
    assert (doc["id"], doc["ttl"], doc["granted-ttl"], doc["keys"]) == (0x123, -1, 0, None)


def test_list(target: str, etcdctl: Etcdctl) -> None:
    ids = {grant(etcdctl, 120), grant(etcdctl, 130)}
    res = etcdctl("lease", "list").check()
    lines = res.lines()
    assert (
        re.fullmatch(r"found \d+ leases", lines[0]) and int(lines[0].split()[1]) == len(lines) - 1
    )
    assert ids <= set(lines[1:])
    doc = etcdctl("lease", "list", "-w", "json").check().json()
    assert {f"{ls['id']:016x}" for ls in doc["leases"]} >= ids
    for lid in ids:
        etcdctl("lease", "revoke", lid).check()
    assert not ids & set(etcdctl("lease", "list").check().lines())


# -- put with a lease --------------------------------------------------------------------------


def test_put_unknown_lease(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    res = etcdctl("put", prefix + "k", "v", "--lease=1234")
    assert error_line(res) == "Error: etcdserver: requested lease not found"
    assert etcdctl("get", prefix + "k").check().stdout == ""


def test_txn_put_unknown_lease(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    res = etcdctl("txn", input=f"\nput {prefix}k v --lease=1234\n\n\n")
    assert error_line(res) == "Error: etcdserver: requested lease not found"
    assert etcdctl("get", prefix + "k").check().stdout == ""


def test_put_ignore_lease_keeps_lease(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    lid = grant(etcdctl, 100)
    etcdctl("put", prefix + "k", "v1", f"--lease={lid}").check()
    etcdctl("put", prefix + "k", "v2", "--ignore-lease").check()
    (kv,) = etcdctl("get", prefix + "k", "-w", "json").check().json()["kvs"]
    assert kv["lease"] == int(lid, 16) and kv["value"] == b64("v2")
    etcdctl("lease", "revoke", lid).check()
    assert etcdctl("get", prefix + "k").check().stdout == ""


# -- revoke ------------------------------------------------------------------------------------


def test_revoke_deletes_keys_at_one_revision(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    lid = grant(etcdctl, 100)
    for k in ("a", "b", "c"):
        etcdctl("put", prefix + k, "v", f"--lease={lid}").check()
    rev = revision(etcdctl("put", prefix + "other", "v", "-w", "json"))
    res = etcdctl("lease", "revoke", lid).check()
    assert res.stdout == f"lease {lid} revoked\n"
    assert kv_pairs(etcdctl("get", prefix, "--prefix", "-w", "json").check().json()) == [
        (prefix + "other", "v")
    ]
    # all three deletions happened at rev + 1: reading at rev still sees them, rev + 1 not
    at_rev = etcdctl("get", prefix, "--prefix", f"--rev={rev}", "--keys-only").check()
    assert len([ln for ln in at_rev.lines() if ln]) == 4
    after = etcdctl("get", prefix, "--prefix", f"--rev={rev + 1}", "--keys-only").check()
    assert [ln for ln in after.lines() if ln] == [prefix + "other"]
    res = etcdctl("lease", "revoke", lid)
    assert (
        error_line(res) == "Error: failed to revoke lease (etcdserver: requested lease not found)"
    )


def test_revoke_json(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    lid = grant(etcdctl, 100)
    rev = revision(etcdctl("put", prefix + "k", "v", f"--lease={lid}", "-w", "json"))
    doc = etcdctl("lease", "revoke", lid, "-w", "json").check().json()
    assert set(doc) == {"header"} and doc["header"]["revision"] == rev + 1


# -- keep-alive --------------------------------------------------------------------------------


def test_keep_alive_once(target: str, etcdctl: Etcdctl) -> None:
    lid = grant(etcdctl, 50)
    res = etcdctl("lease", "keep-alive", "--once", lid).check()
    assert res.stdout == f"lease {lid} keepalived with TTL(50)\n"
    doc = etcdctl("lease", "keep-alive", "--once", lid, "-w", "json").check().json()
    assert set(doc) == {"cluster_id", "member_id", "revision", "raft_term", "ID", "TTL"}
    assert (doc["ID"], doc["TTL"]) == (int(lid, 16), 50)
    etcdctl("lease", "revoke", lid).check()
    res = etcdctl("lease", "keep-alive", "--once", lid)
    assert res.rc != 0
    assert error_line(res) == "Error: etcdserver: requested lease not found"


def test_keep_alive_and_timetolive_through_follower(
    target: str, cluster: Cluster, etcdctl: Etcdctl, prefix: str
) -> None:
    fctl = follower_ctl(cluster)
    lid = grant(etcdctl, 100)
    etcdctl("put", prefix + "k", "v", f"--lease={lid}").check()
    res = fctl("lease", "keep-alive", "--once", lid).check()
    assert res.stdout == f"lease {lid} keepalived with TTL(100)\n"
    m = TIME_TO_LIVE.match(fctl("lease", "timetolive", "--keys", lid).check().stdout.rstrip("\n"))
    assert m and m.group(2) == "100" and 90 <= int(m.group(3)) <= 100
    assert m.group(4) == prefix + "k"
    assert fctl("lease", "timetolive", "123").check().stdout == (
        "lease 0000000000000123 already expired\n"
    )
    fctl("lease", "revoke", lid).check()
    assert error_line(fctl("lease", "keep-alive", "--once", lid)) == (
        "Error: etcdserver: requested lease not found"
    )


def test_keep_alive_stream_through_follower_keeps_keys(
    target: str, cluster: Cluster, etcdctl: Etcdctl, prefix: str
) -> None:
    fctl = follower_ctl(cluster)
    ttl = 3
    lid = grant(etcdctl, ttl)
    etcdctl("put", prefix + "k", "v", f"--lease={lid}").check()
    argv = [str(fctl.binary), f"--endpoints={','.join(fctl.endpoints)}", "lease", "keep-alive", lid]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        # etcdctl renews every TTL/3; over 3 TTLs the key must stay
        end = time.monotonic() + 3 * ttl
        while time.monotonic() < end:
            assert etcdctl("get", prefix + "k", "--print-value-only").check().stdout == "v\n"
            time.sleep(0.2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"lease {lid} keepalived with TTL({ttl})" in out
    wait_gone(etcdctl, prefix + "k")


# -- expiry ------------------------------------------------------------------------------------


def test_expiry_deletes_keys(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    lid = grant(etcdctl, MIN_TTL)
    etcdctl("put", prefix + "k", "v", f"--lease={lid}").check()
    etcdctl("put", prefix + "stay", "v").check()
    took = wait_gone(etcdctl, prefix + "k")
    assert took >= MIN_TTL - 1.0  # not revoked early (some of the TTL passed before the put)
    assert etcdctl("get", prefix + "stay", "--print-value-only").check().stdout == "v\n"
    assert etcdctl("lease", "timetolive", lid).check().stdout == f"lease {lid} already expired\n"


def test_expiry_after_leader_kill(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    old = c.leader()
    ctl = c.ctl([old])
    lid = grant(ctl, 5)
    ctl("put", "/lease/expiring", "v", f"--lease={lid}").check()
    ctl("put", "/lease/kept", "v").check()
    c.kill(old)
    survivors = [m for m in c.members if m != old]
    new = agreed_leader(c, survivors)
    sctl = c.ctl([new])
    wait_gone(sctl, "/lease/expiring")
    assert sctl("get", "/lease/kept", "--print-value-only").check().stdout == "v\n"
    assert sctl("lease", "timetolive", lid).check().stdout == f"lease {lid} already expired\n"
