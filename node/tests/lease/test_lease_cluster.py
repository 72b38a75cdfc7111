"""Leases on a real 3-member petcd cluster (harness.local), driven by etcdctl 3.5.1:
persistence across a full restart, identical revocation history on every member, expiry by a
leader elected after a restart, forwarding of renewals and TimeToLive to a new leader.

The cluster-wide conformance checks (the same tests against etcd) live in
`conformance/test_lease.py`; these are petcd-specific and need process control.
"""

from __future__ import annotations

from harness.local import LocalCluster
from tests.support.clusters import agreed_leader
from tests.support.leases import TIME_TO_LIVE, grant
from tests.support.timeouts import CLUSTER_UP, CONVERGE
from tests.support.wait import wait_until


def restart_all(c: LocalCluster) -> None:
    for m in c.members:
        c.stop_member(m)
    for m in c.members:
        c.start_member(m)
    c.wait_healthy(timeout=CLUSTER_UP)


def test_lease_and_attachments_survive_full_restart(cluster: LocalCluster) -> None:
    ctl = cluster.ctl()
    lid = grant(ctl, 600)
    short = grant(ctl, 1)  # stored with the minimum TTL
    ctl("put", "/r/a", "1", f"--lease={lid}").check()
    ctl("put", "/r/b", "2", f"--lease={lid}").check()
    ctl("put", "/r/b", "3").check()  # detached again
    restart_all(cluster)
    out = ctl("lease", "timetolive", "--keys", lid).check().stdout.rstrip("\n")
    m = TIME_TO_LIVE.match(out)
    assert m and m.group(2) == "600" and m.group(4) == "/r/a", out
    ctl("lease", "revoke", lid).check()
    assert ctl("get", "/r/", "--prefix", "--keys-only").check().stdout.split() == ["/r/b"]
    # the 2s lease expires after the new leader's promotion
    wait_until(lambda: short not in ctl("lease", "list").check().stdout, CONVERGE,
               "the short lease to expire")


def test_revoke_gives_identical_history_everywhere(cluster: LocalCluster) -> None:
    ctl = cluster.ctl()
    lid = grant(ctl, 600)
    for k in ("c", "a", "b"):
        ctl("put", f"/h/{k}", "v", f"--lease={lid}").check()
    ctl("lease", "revoke", lid).check()
    rev = ctl("get", "/h/", "--prefix", "-w", "json").check().json()["header"]["revision"]

    def hashes() -> set[int] | None:
        out = set()
        for m in cluster.members:
            res = cluster.ctl([m])("endpoint", "hashkv", f"--rev={rev}", "-w", "json")
            if not res.ok:
                return None
            out.add(res.json()[0]["HashKV"]["hash"])
        return out

    wait_until(lambda: hashes() is not None, CONVERGE, "every member at the revoke's revision")
    got = hashes()
    assert got is not None and len(got) == 1, got
    for m in cluster.members:
        res = cluster.ctl([m])("get", "/h/", "--prefix", "--consistency=s").check()
        assert res.stdout == ""


def test_expiry_after_full_restart(cluster: LocalCluster) -> None:
    ctl = cluster.ctl()
    lid = grant(ctl, 4)
    ctl("put", "/x/k", "v", f"--lease={lid}").check()
    restart_all(cluster)
    # the new leader promotes its lessor; the lease expires some seconds later
    wait_until(lambda: ctl("get", "/x/k").check().stdout == "", CONVERGE, "the key to expire")
    assert ctl("lease", "timetolive", lid).check().stdout == f"lease {lid} already expired\n"


def test_follower_forwards_to_new_leader(cluster: LocalCluster) -> None:
    c = cluster
    old = c.leader()
    lid = grant(c.ctl([old]), 60)
    c.kill(old)
    survivors = [m for m in c.members if m != old]
    new = agreed_leader(c, survivors)
    follower = next(m for m in survivors if m != new)
    fctl = c.ctl([follower])
    assert fctl("lease", "keep-alive", "--once", lid).check().stdout == (
        f"lease {lid} keepalived with TTL(60)\n"
    )
    out = fctl("lease", "timetolive", lid).check().stdout.rstrip("\n")
    m = TIME_TO_LIVE.match(out)
    assert m and 55 <= int(m.group(3)) <= 60, out
    fctl("lease", "revoke", lid).check()
    assert fctl("lease", "timetolive", lid).check().stdout == f"lease {lid} already expired\n"
