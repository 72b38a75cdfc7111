"""A petcd member restarted after a membership change keeps replicating to the new member.

Regression: Raft was rebuilt from the last snapshot's configuration while the conf changes
applied after it were not handed to it again, so a restarted leader never sent entries to a
member added since the snapshot (now `bootstrap._sync_conf_state`). Real processes, the real
etcdctl 3.5.1; waits poll with deadlines.
"""

from __future__ import annotations

import re

from harness.cluster import Member
from harness.local import LocalCluster
from tests.support.timeouts import CONVERGE
from tests.support.wait import wait_until

ADDED = re.compile(r"^Member +([0-9a-f]+) added to cluster +[0-9a-f]+$")


def _value(c: LocalCluster, m: Member, key: str) -> str:
    res = c.ctl([m], command_timeout="2s")("get", key, "--consistency=s", "--print-value-only")
    return res.stdout.strip() if res.rc == 0 else ""


def _member_id(c: LocalCluster, m: Member) -> int:
    st = c.status(m)
    assert st is not None
    return int(st["header"]["member_id"])


def test_restarted_leader_replicates_to_member_added_before_restart() -> None:
    with LocalCluster("petcd") as c:
        c.wait_healthy()
        m1 = c.members[0]
        planned = c.plan_member("m4")
        out = c.ctl()("member", "add", "m4", f"--peer-urls={planned.peer_url}").check().stdout
        assert ADDED.match(out.splitlines()[0]), out
        env = dict(ln.split("=", 1) for ln in out.splitlines()[1:] if "=" in ln)
        c.join(planned, env["ETCD_INITIAL_CLUSTER"].strip('"'))
        c.wait_healthy()

        c.restart(m1)
        c.wait_healthy()
        leader = c.leader()
        if leader != m1:
            c.ctl([leader])("move-leader", f"{_member_id(c, m1):x}").check()
        wait_until(lambda: c.leader() == m1, CONVERGE, "m1 to lead")
        c.ctl([m1])("put", "after-restart", "yes").check()
        wait_until(lambda: _value(c, planned, "after-restart") == "yes", CONVERGE,
                   "m4 to get the write")
        c.wait_healthy()
