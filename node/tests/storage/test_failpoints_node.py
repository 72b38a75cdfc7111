"""etcd's failpoints on real petcd processes: each fires at its place, armed from the
environment (PETCD_FAILPOINTS) or at runtime over gofail's HTTP endpoint (PETCD_FAILPOINTS_HTTP).

A ``panic`` must end the member with exit code 2 and gofail's text at the right moment (what
survives the restart says where); a ``sleep`` must delay its path and only that path; ``error``
must fail the request that reached the point.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from petcd.storage import failpoints

from harness import gofail, ports
from harness.cluster import Member
from harness.local import LocalCluster

UP = 60.0
DEADLINE = 20.0


def poll(what: str, cond: Callable[[], bool], deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def _cluster(size: int, extra_env: dict[str, str] | None = None,
             extra_args: tuple[str, ...] = ()) -> Iterator[tuple[LocalCluster, dict[str, str]]]:
    """A healthy cluster whose members serve gofail's endpoint (name -> its address)."""
    c = LocalCluster("petcd", size=size, extra_args=extra_args)
    addrs: dict[str, str] = {}
    for m in c.members:
        addrs[m.name] = f"127.0.0.1:{ports.free_port()}"
        c.member_env[m.name] = {gofail.ENV: addrs[m.name], **(extra_env or {})}
    try:
        c.start()
        c.wait_healthy(timeout=UP)
        yield c, addrs
    finally:
        c.stop()


@pytest.fixture
def one() -> Iterator[tuple[LocalCluster, dict[str, str]]]:
    with _cluster(1) as got:
        yield got


def exit_code(c: LocalCluster, m: Member) -> int | None:
    proc = c._procs.get(m.name)
    return None if proc is None or proc.popen is None else proc.popen.poll()


def wait_panicked(c: LocalCluster, m: Member, name: str) -> None:
    poll(f"{m.name} to exit", lambda: exit_code(c, m) is not None)
    assert exit_code(c, m) == 2
    assert f"panic: failpoint panic: {name}" in c.log_path(m).read_text(errors="replace")
    c._reap(m)


def timed_put(c: LocalCluster, key: str) -> float:
    t0 = time.monotonic()
    c.ctl(command_timeout="10s")("put", key, "v").check()
    return time.monotonic() - t0


def test_http_endpoint_arms_lists_and_disarms(one: tuple[LocalCluster, dict[str, str]]) -> None:
    c, addrs = one
    addr = addrs[c.members[0].name]
    listed = gofail.listing(addr)
    assert sorted(listed) == sorted(failpoints.NAMES)
    assert set(listed.values()) == {""}
    assert gofail.request(addr, "PUT", "/nope", "panic") == (400, "failed to set failpoint nope\n")
    assert gofail.request(addr, "PUT", "/beforeCommit", "explode")[0] == 400
    assert gofail.request(addr, "GET", "/beforeCommit") == (
        404, "failed to GET: failpoint: failpoint is disabled\n")
    assert gofail.request(addr, "DELETE", "/beforeCommit") == (
        400, "failed to delete failpoint failpoint: failpoint is disabled\n")
    assert gofail.request(addr, "POST", "/beforeCommit")[0] == 405

    # raftBeforeSave=sleep(1000): the Raft loop waits a second per Ready; a put waits at least
    # that, while a serializable read, served off the loop's Ready path, does not.
    gofail.arm(addr, "raftBeforeSave", "sleep(1000)")
    assert gofail.request(addr, "GET", "/raftBeforeSave") == (200, "sleep(1000)\n")
    assert gofail.listing(addr)["raftBeforeSave"] == "sleep(1000)"
    put = subprocess.Popen(
        [str(c.impl.etcdctl), f"--endpoints={c.members[0].client_url}", "put", "slow", "v"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.monotonic()
        poll("the slow put to reach the point", lambda: gofail.count(addr, "raftBeforeSave") > 0)
        c.ctl(command_timeout="5s")("get", "x", "--consistency=s").check()
        read = time.monotonic() - t0
        assert put.wait(timeout=30) == 0
        slow = time.monotonic() - t0
    finally:
        put.kill()
        put.wait()
    assert slow >= 0.9 > read, (slow, read)
    gofail.disarm(addr, "raftBeforeSave")
    assert gofail.listing(addr)["raftBeforeSave"] == ""
    assert timed_put(c, "fast") < 0.9


@pytest.mark.parametrize(
    ("point", "survives"),
    [
        ("raftBeforeSave", False),  # the entry never reached the log
        ("raftAfterSave", True),  # in the log: replayed on restart
        ("beforeStartDBTxn", True),  # crashed while applying: the log has it
        ("afterStartDBTxn", True),
        ("beforeWritebackBuf", True),
        ("afterWritebackBuf", True),
    ],
)
def test_write_path_panic(one: tuple[LocalCluster, dict[str, str]], point: str,
                          survives: bool) -> None:
    c, addrs = one
    m = c.members[0]
    c.ctl()("put", "before", "1").check()
    gofail.arm(addrs[m.name], point, "panic")
    res = c.ctl(command_timeout="3s")("put", "k", "v")
    assert not res.ok
    wait_panicked(c, m, point)
    c.start_member(m)  # the table is not armed again: the restart runs clean
    c.wait_healthy(timeout=UP)
    got = c.ctl()("get", "k", "--print-value-only").check().stdout.strip()
    assert (got == "v") is survives
    assert c.ctl()("get", "before", "--print-value-only").check().stdout.strip() == "1"


def test_defrag_points(one: tuple[LocalCluster, dict[str, str]]) -> None:
    c, addrs = one
    m, addr = c.members[0], addrs[c.members[0].name]
    for i in range(20):
        c.ctl()("put", f"k{i}", "v" * 100).check()
    gofail.arm(addr, "defragBeforeCopy", "error")
    res = c.ctl(command_timeout="10s")("defrag")
    assert not res.ok and "defragBeforeCopy" in res.stderr + res.stdout
    gofail.disarm(addr, "defragBeforeCopy")
    c.ctl(command_timeout="10s")("defrag").check()
    gofail.arm(addr, "defragBeforeRename", "panic")
    assert not c.ctl(command_timeout="10s")("defrag").ok
    wait_panicked(c, m, "defragBeforeRename")
    c.start_member(m)
    c.wait_healthy(timeout=UP)
    assert c.ctl()("get", "k19", "--print-value-only").check().stdout.strip() == "v" * 100
    # The defrag sentinels a crash left behind are gone: a snapshot dump is intact.
    snap = c.root / "after.db"
    c.ctl(command_timeout="10s")("snapshot", "save", str(snap)).check()


def first_event_after(c: LocalCluster, key: str) -> float:
    """Seconds until `etcdctl watch --rev=1 key` prints the first event."""
    t0 = time.monotonic()
    w = subprocess.Popen(
        [str(c.impl.etcdctl), f"--endpoints={c.members[0].client_url}", "watch", key, "--rev=1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert w.stdout is not None
        assert w.stdout.readline().strip() == "PUT"  # bounded: the watcher is killed below
        return time.monotonic() - t0
    finally:
        w.kill()
        w.wait()


@pytest.mark.parametrize("point", ["beforeSendWatchResponse", "beforeSyncWatchers"])
def test_watch_sleep_points(one: tuple[LocalCluster, dict[str, str]], point: str) -> None:
    c, addrs = one
    addr = addrs[c.members[0].name]
    c.ctl()("put", "w", "1").check()
    quick = first_event_after(c, "w")
    gofail.arm(addr, point, "sleep(1500)")
    slow = first_event_after(c, "w")
    assert gofail.count(addr, point) >= 1
    gofail.disarm(addr, point)
    assert slow >= 1.4 and slow > quick, (quick, slow)
    assert timed_put(c, "still-fast") < 1.4  # writes never waited on the watch path


def test_raft_send_and_conf_change_points() -> None:
    with _cluster(3) as (c, addrs):
        lead = c.leader()
        follower = next(m for m in c.members if m.name != lead.name)
        # beforeApplyOneConfChange: not passed by puts, passed once per conf change.
        gofail.arm(addrs[follower.name], "beforeApplyOneConfChange", "sleep(200)")
        c.ctl()("put", "a", "1").check()
        assert gofail.count(addrs[follower.name], "beforeApplyOneConfChange") == 0
        added = c.ctl([lead], command_timeout="5s")(
            "member", "add", "extra", "--learner", "--peer-urls=http://127.0.0.1:1").check()
        assert "added" in added.stdout
        poll("the follower to apply the conf change",
             lambda: gofail.count(addrs[follower.name], "beforeApplyOneConfChange") == 1)
        gofail.disarm(addrs[follower.name], "beforeApplyOneConfChange")

        gofail.arm(addrs[follower.name], "raftBeforeFollowerSend", "panic")
        gofail.arm(addrs[lead.name], "raftBeforeFollowerSend", "panic")  # not passed by a leader
        c.ctl([lead], command_timeout="5s")("put", "b", "1")
        wait_panicked(c, follower, "raftBeforeFollowerSend")
        assert c.is_running(lead)
        gofail.disarm(addrs[lead.name], "raftBeforeFollowerSend")
        c.start_member(follower)
        c.wait_healthy(timeout=UP)

        lead = c.leader()
        gofail.arm(addrs[lead.name], "raftBeforeLeaderSend", "panic")
        c.ctl([lead], command_timeout="3s")("put", "c", "1")
        wait_panicked(c, lead, "raftBeforeLeaderSend")
        c.start_member(lead)
        c.wait_healthy(timeout=UP)
        assert c.ctl()("get", "b", "--print-value-only").check().stdout.strip() == "1"


SNAPSHOT_POINTS = ["raftBeforeSaveSnap", "raftAfterSaveSnap", "raftBeforeApplySnap",
                   "applyBeforeOpenSnapshot", "raftAfterApplySnap", "raftAfterWALRelease"]


@pytest.mark.parametrize("point", SNAPSHOT_POINTS)
def test_snapshot_points(point: str) -> None:
    """A follower that missed enough entries gets a snapshot; armed from the environment at
    its restart (as etcd's suite arms them), it panics while taking it, and a clean restart
    after that must still bring it level with the leader."""
    env = {"PETCD_SNAPSHOT_CATCHUP_ENTRIES": "5"}
    with _cluster(3, env, ("--snapshot-count=20",)) as (c, _):
        lead = c.leader()
        follower = next(m for m in c.members if m.name != lead.name)
        c.stop_member(follower)
        for i in range(60):
            c.ctl([lead])("put", f"s{i}", str(i)).check()
        c.member_env[follower.name]["PETCD_FAILPOINTS"] = f"{point}=panic"
        c.start_member(follower)
        wait_panicked(c, follower, point)
        del c.member_env[follower.name]["PETCD_FAILPOINTS"]
        c.start_member(follower)
        c.wait_healthy(timeout=UP)
        c.ctl([lead])("put", "last", "x").check()
        poll("the follower to catch up", lambda: c.ctl([follower])(
            "get", "last", "--consistency=s", "--print-value-only").stdout.strip() == "x")
        got = c.ctl([follower])("get", "s", "--prefix", "--consistency=s", "--keys-only")
        assert len([ln for ln in got.lines() if ln]) == 60
