"""Linearizable vs serializable reads, observed from single members."""

from __future__ import annotations

from functools import partial

from harness.cluster import Member
from harness.local import LocalCluster
from tests.support.timeouts import SETTLE
from tests.support.wait import wait_until


def _serializable_value_is(c: LocalCluster, m: Member, key: str, want: str) -> bool:
    got = c.ctl([m])("get", key, "--consistency=s", "--print-value-only").check().stdout
    return got == want


def test_linearizable_read_sees_acknowledged_write(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    for i, writer in enumerate(c.members):
        c.ctl([writer])("put", "lin", f"v{i}").check()
        # A linearizable read on any member must see the write at once: no polling allowed.
        for reader in c.members:
            got = c.ctl([reader])("get", "lin", "--print-value-only").check()
            assert got.stdout == f"v{i}\n", (writer.name, reader.name)


def test_serializable_read_is_local(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    c.ctl()("put", "ser", "v").check()
    # Followers converge; serializable reads may lag, so poll with a deadline.
    for m in c.members:
        wait_until(partial(_serializable_value_is, c, m, "ser", "v\n"), SETTLE,
                   f"{m.name} to serve the value")
    # Without a quorum a member still answers serializable reads from its own state,
    # but a linearizable read cannot complete.
    survivor, *others = c.members
    for m in others:
        c.kill(m)
    ctl = c.ctl([survivor], command_timeout="2s")
    assert ctl("get", "ser", "--consistency=s", "--print-value-only").check().stdout == "v\n"
    lin = ctl("get", "ser")
    assert lin.rc != 0
    assert "Error:" in lin.stderr
    assert ctl("put", "ser", "w").rc != 0
