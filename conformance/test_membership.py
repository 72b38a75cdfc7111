"""member add / update / remove / promote on a dedicated cluster per test."""

from __future__ import annotations

import re
import time

from conformance.util import error_line
from harness.etcdctl import Etcdctl, Result
from harness.local import LocalCluster
from tests.support.timeouts import CONVERGE

ADDED = re.compile(r"^Member +([0-9a-f]+) added to cluster +([0-9a-f]+)$")  # etcdctl pads %16x


def _parse_add(stdout: str) -> tuple[str, dict[str, str]]:
    lines = stdout.splitlines()
    m = ADDED.match(lines[0])
    assert m, stdout
    env = {}
    for ln in lines[1:]:
        if ln:
            k, _, v = ln.partition("=")
            env[k] = v.strip('"')
    return m.group(1), env


def _reconfig(ctl: Etcdctl, *args: str) -> Result:
    """Run a membership change, retrying while etcd refuses with "unhealthy cluster".

    etcd rejects member add (voter or learner) until the leader has been connected to every
    member for a while (5 s in 3.4/3.5), so the first attempt on a fresh cluster may fail.
    """
    deadline = time.monotonic() + CONVERGE
    while True:
        res = ctl(*args)
        if error_line(res) != "Error: etcdserver: unhealthy cluster":
            return res
        assert time.monotonic() < deadline, f"cluster stayed unhealthy for {args}"
        time.sleep(0.2)


def _list_row(c: LocalCluster, member_id: str) -> list[str] | None:
    for ln in c.ctl()("member", "list").check().lines():
        cols = [x.strip() for x in ln.split(",")]
        if cols[0] == member_id:
            return cols
    return None


def test_member_add_update_remove(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    ctl = c.ctl()
    dup = _reconfig(ctl, "member", "add", "dup", f"--peer-urls={c.members[0].peer_url}")
    assert dup.rc != 0 and error_line(dup) == "Error: etcdserver: Peer URLs already exists"

    planned = c.plan_member("m4")
    res = _reconfig(ctl, "member", "add", "m4", f"--peer-urls={planned.peer_url}").check()
    mid, env = _parse_add(res.stdout)
    assert env["ETCD_NAME"] == "m4"
    assert sorted(env["ETCD_INITIAL_CLUSTER"].split(",")) == sorted(
        [f"{m.name}={m.peer_url}" for m in c.members] + [f"m4={planned.peer_url}"]
    )
    assert env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == planned.peer_url
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == "existing"
    # Not started yet: no name, no client URLs.
    assert _list_row(c, mid) == [mid, "unstarted", "", planned.peer_url, "", "false"]

    moved = c.plan_member("m4b")
    upd = ctl("member", "update", mid, f"--peer-urls={moved.peer_url}").check()
    assert re.fullmatch(rf"Member +{mid} updated in cluster +[0-9a-f]+\n", upd.stdout)
    row = _list_row(c, mid)
    assert row is not None and row[3] == moved.peer_url

    voter = ctl("member", "promote", _id_of(c, c.members[0].name))
    assert voter.rc != 0
    assert error_line(voter) == "Error: etcdserver: can only promote a learner member"

    rm = ctl("member", "remove", mid).check()
    assert re.fullmatch(rf"Member +{mid} removed from cluster +[0-9a-f]+\n", rm.stdout)
    assert _list_row(c, mid) is None
    again = ctl("member", "remove", mid)
    assert again.rc != 0 and error_line(again) == "Error: etcdserver: member not found"
    c.wait_healthy(timeout=CONVERGE)


def _id_of(c: LocalCluster, name: str) -> str:
    for ln in c.ctl()("member", "list").check().lines():
        cols = [x.strip() for x in ln.split(",")]
        if cols[2] == name:
            return cols[0]
    raise AssertionError(f"{name} not in member list")


def test_learner_join_promote_remove(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    ctl = c.ctl()
    ctl("put", "before-learner", "x").check()
    planned = c.plan_member("m4")
    mid, env = _parse_add(
        _reconfig(ctl, "member", "add", "m4", f"--peer-urls={planned.peer_url}", "--learner")
        .check()
        .stdout
    )
    assert _list_row(c, mid) == [mid, "unstarted", "", planned.peer_url, "", "true"]
    early = ctl("member", "promote", mid)
    assert early.rc != 0
    assert error_line(early) == (
        "Error: etcdserver: can only promote a learner member which is in sync with leader"
    )

    c.join(planned, env["ETCD_INITIAL_CLUSTER"])
    learner = c.ctl([planned])
    # The learner replicates data and serves serializable reads, but not linearizable ones.
    deadline = time.monotonic() + CONVERGE
    while learner("get", "before-learner", "--consistency=s", "--print-value-only").stdout != "x\n":
        assert time.monotonic() < deadline, "learner never caught up"
        time.sleep(0.1)
    assert _list_row(c, mid) == [mid, "started", "m4", planned.peer_url, planned.client_url, "true"]
    lin = learner("get", "before-learner")
    assert lin.rc != 0
    assert error_line(lin) == "Error: etcdserver: rpc not supported for learner"
    st = c.status(planned)
    assert st is not None and st.get("isLearner") is True

    deadline = time.monotonic() + CONVERGE
    while True:
        res = ctl("member", "promote", mid)
        if res.ok:
            break
        assert "in sync with leader" in res.stderr, res.stderr
        assert time.monotonic() < deadline, "promote never succeeded"
        time.sleep(0.2)
    assert re.fullmatch(rf"Member +{mid} promoted in cluster +[0-9a-f]+\n", res.stdout)
    assert _list_row(c, mid) == [mid, "started", "m4", planned.peer_url, planned.client_url, "false"]
    c.wait_healthy(timeout=CONVERGE)
    assert learner("get", "before-learner", "--print-value-only").check().stdout == "x\n"

    ctl("member", "remove", mid).check()
    c.forget(planned)
    c.wait_healthy(timeout=CONVERGE)
    assert len(ctl("member", "list").check().lines()) == 3
