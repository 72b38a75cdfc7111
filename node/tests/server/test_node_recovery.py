"""End-to-end recovery behaviour of a 3-member petcd cluster on loopback.

Real processes, the real etcdctl 3.5.1; waits poll a condition with a deadline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.cluster import Member
from harness.local import LocalCluster
from tests.support.timeouts import CONVERGE
from tests.support.wait import wait_until


@pytest.fixture
def snapshotting_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCluster]:
    # Snapshot every 50 entries and keep only 10 behind it, so a lagging member must be sent
    # a snapshot instead of log entries.
    monkeypatch.setenv("PETCD_SNAPSHOT_CATCHUP_ENTRIES", "10")
    with LocalCluster("petcd", extra_args=("--snapshot-count=50",)) as c:
        c.wait_healthy()
        yield c


def _hashes(c: LocalCluster) -> set[str]:
    res = c.ctl(command_timeout="2s")("endpoint", "hashkv", "-w", "json")
    if res.rc != 0:
        return {"unavailable"}
    return {str(d["HashKV"]["hash"]) for d in res.json()}


def _value(c: LocalCluster, m: Member, key: str) -> str:
    res = c.ctl([m], command_timeout="2s")("get", key, "--consistency=s", "--print-value-only")
    return res.stdout.strip() if res.rc == 0 else ""


def test_lagging_member_catches_up_by_snapshot_and_restarts(
    snapshotting_cluster: LocalCluster,
) -> None:
    c = snapshotting_cluster
    m1, _m2, m3 = c.members
    c.kill(m3)
    c.wait_healthy(members=c.members[:2])
    ctl = c.ctl(c.members[:2])
    for i in range(200):
        ctl("put", f"k{i}", f"v{i}").check()
    c.start_member(m3)
    wait_until(lambda: _value(c, m3, "k199") == "v199", CONVERGE, "m3 to catch up")
    assert "applying snapshot" in c.log_path(m3).read_text()
    # Restart two members from their data dirs (one of them restored from a snapshot): each
    # must come back as itself, with the same data.
    c.kill(m1)
    c.kill(m3)
    c.start_member(m1)
    c.start_member(m3)
    c.wait_healthy()
    c.ctl()("put", "after", "restart").check()
    wait_until(lambda: len(_hashes(c)) == 1 and "unavailable" not in _hashes(c), CONVERGE,
               "equal hashes")
    ids = {
        d["Status"]["header"]["member_id"]
        for d in c.ctl()("endpoint", "status", "-w", "json").check().json()
    }
    assert len(ids) == 3


def test_removed_member_exits_with_message() -> None:
    with LocalCluster("petcd") as c:
        c.wait_healthy()
        m3 = c.members[2]
        listed = c.ctl()("member", "list", "-w", "json").check().json()
        mid = next(m["ID"] for m in listed["members"] if m["name"] == m3.name)
        c.ctl(c.members[:2])("member", "remove", format(mid, "x")).check()
        wait_until(lambda: not c.is_running(m3), CONVERGE, "the removed member to exit")
        assert "permanently removed from the cluster" in c.log_path(m3).read_text()
        c.forget(m3)
        c.ctl()("put", "still", "works").check()


def test_member_added_after_the_last_snapshot_catches_up_by_snapshot(
    snapshotting_cluster: LocalCluster,
) -> None:
    # The leader's last saved snapshot predates the new member, so that snapshot's ConfState
    # does not list it: the snapshot it is sent must carry the current configuration (etcd's
    # createMergedSnapshotMessage), or the member ignores it and is sent it again forever.
    c = snapshotting_cluster
    ctl = c.ctl()
    for i in range(120):
        ctl("put", f"k{i}", f"v{i}").check()
    new = c.plan_member("m4")
    ctl("member", "add", new.name, f"--peer-urls={new.peer_url}").check()
    initial = ",".join(f"{m.name}={m.peer_url}" for m in [*c.members, new])
    c.join(new, initial)
    wait_until(lambda: _value(c, new, "k119") == "v119", CONVERGE, "m4 to catch up")
    assert "applying snapshot" in c.log_path(new).read_text()
    ctl("put", "after", "join").check()
    wait_until(lambda: _value(c, new, "after") == "join", CONVERGE, "m4 to follow")
