"""Locks and elections on a real 3-member petcd cluster (harness.local) with process control:
queue order of many waiters spread over the members, waiters and observers on followers
that outlive a leader kill, and a holder's key released by lease expiry under a new leader.

The gRPC services are driven by `lockctl.py` in subprocesses (never import petcd's stubs
here: this process may share pytest with aetcd). The same behaviour without faults is checked
against etcd in `conformance/test_lock_election.py`; both drive processes with
`tests.support.procs`.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from harness.cluster import Member
from harness.etcdctl import Etcdctl
from harness.local import LocalCluster
from tests.support.clusters import agreed_leader
from tests.support.leases import grant_id
from tests.support.procs import Proc, ok_response, start_lockctl
from tests.support.timeouts import CONVERGE
from tests.support.wait import wait_until

WAITERS = 4


class Runner:
    """lockctl processes against chosen members; all closed at the end."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def start(self, member: Member, op: str, **args: Any) -> Proc:
        proc = start_lockctl(member.client_url, op, **args)
        self.procs.append(proc)
        return proc

    def ok(self, member: Member, op: str, **args: Any) -> dict[str, Any]:
        return ok_response(json.loads(self.start(member, op, **args).line(CONVERGE)))

    def close(self) -> None:
        for p in self.procs:
            p.close()


@pytest.fixture
def run() -> Iterator[Runner]:
    r = Runner()
    try:
        yield r
    finally:
        r.close()


def count_keys(ctl: Etcdctl, pfx: str) -> int:
    res = ctl("get", pfx, "--prefix", "--keys-only", "-w", "json").check()
    return int(res.json().get("count", 0))


def _has_keys(ctl: Etcdctl, pfx: str, n: int) -> bool:
    return count_keys(ctl, pfx) == n


def test_waiters_on_every_member_acquire_in_queue_order(cluster: LocalCluster, run: Runner) -> None:
    ctl = cluster.ctl()
    name = "/q/lock"
    holder = run.ok(cluster.members[0], "lock", name=name, lease=grant_id(ctl, 60))
    waiters: list[tuple[int, Proc]] = []
    for i in range(WAITERS):
        lease = grant_id(ctl, 60)
        waiters.append((lease, run.start(cluster.members[i % 3], "lock", name=name, lease=lease)))
        # queue them one after the other, so their create revisions give the expected order
        # the holder's key, the earlier waiters' and this one's
        wait_until(partial(_has_keys, ctl, name + "/", i + 2), CONVERGE, f"waiter {i} queued")
    run.ok(cluster.members[1], "unlock", key=holder["key"])
    for i, (lease, proc) in enumerate(waiters):
        got = json.loads(proc.line(CONVERGE))["ok"]
        assert got["key"] == f"{name}/{lease:x}", (i, got)
        for _, later in waiters[i + 1 :]:
            assert later.silent_for(0.2)
        run.ok(cluster.members[2], "unlock", key=got["key"])
    assert count_keys(ctl, name + "/") == 0


def test_follower_waiter_and_observer_outlive_leader_kill(
    cluster: LocalCluster, run: Runner
) -> None:
    c = cluster
    old = c.leader()
    survivors = [m for m in c.members if m != old]
    f1, f2 = survivors
    sctl = c.ctl(survivors)
    name = "/k/elect"
    leader = run.ok(f1, "campaign", name=name, lease=grant_id(sctl, 60), value="a")["leader"]
    observer = run.start(f2, "observe", name=name)
    assert json.loads(observer.line(CONVERGE))["ok"]["kv"]["value"] == "a"
    lock_name = "/k/lock"
    held = run.ok(f1, "lock", name=lock_name, lease=grant_id(sctl, 60))
    waiter_lease = grant_id(sctl, 60)
    waiter = run.start(f2, "lock", name=lock_name, lease=waiter_lease)
    wait_until(lambda: count_keys(sctl, lock_name + "/") == 2, CONVERGE, "the waiter queued")

    c.kill(old)
    agreed_leader(c, survivors)
    run.ok(f1, "proclaim", leader=leader, value="b")
    assert json.loads(observer.line(CONVERGE))["ok"]["kv"]["value"] == "b"
    run.ok(f1, "unlock", key=held["key"])
    got = json.loads(waiter.line(CONVERGE))["ok"]
    assert got["key"] == f"{lock_name}/{waiter_lease:x}"
    run.ok(f2, "resign", leader=leader)
    observer.signal(signal.SIGKILL)


def test_holder_lease_expires_under_new_leader(cluster: LocalCluster, run: Runner) -> None:
    c = cluster
    old = c.leader()
    survivors = [m for m in c.members if m != old]
    sctl = c.ctl(survivors)
    name = "/x/lock"
    run.ok(survivors[0], "lock", name=name, lease=grant_id(sctl, 3))
    waiter_lease = grant_id(sctl, 600)
    waiter = run.start(survivors[1], "lock", name=name, lease=waiter_lease)
    wait_until(lambda: count_keys(sctl, name + "/") == 2, CONVERGE, "the waiter queued")
    c.kill(old)
    agreed_leader(c, survivors)
    # the new leader's lessor expires the holder's 3s lease; the waiter gets the lock
    got = json.loads(waiter.line(CONVERGE))["ok"]
    assert got["key"] == f"{name}/{waiter_lease:x}"
    assert count_keys(sctl, name + "/") == 1
