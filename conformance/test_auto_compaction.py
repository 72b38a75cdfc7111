"""--auto-compaction-mode / --auto-compaction-retention, on every target."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.local import LocalCluster
from tests.support.timeouts import CONVERGE


def _compacted_at(c: LocalCluster, rev: int) -> bool:
    res = c.ctl()("get", "k", f"--rev={rev}")
    return "required revision has been compacted" in res.stderr


def test_periodic_compaction(cluster_factory: Callable[..., LocalCluster]) -> None:
    c = cluster_factory(
        3, extra_args=("--auto-compaction-mode=periodic", "--auto-compaction-retention=2s")
    )
    ctl = c.ctl()
    first = ctl("put", "k", "v0", "-w", "json").check().json()["header"]["revision"]
    deadline = time.monotonic() + CONVERGE
    i = 0
    # Keep writing: periodic mode compacts at the revision the store had one period ago.
    while not _compacted_at(c, first):
        assert time.monotonic() < deadline, "no automatic compaction happened"
        i += 1
        ctl("put", "k", f"v{i}").check()
        time.sleep(0.2)
    assert ctl("get", "k", "--print-value-only").check().stdout.strip() == f"v{i}"


def test_revision_compaction_setting_is_accepted(
    cluster_factory: Callable[..., LocalCluster],
) -> None:
    # Revision mode checks every 5 minutes in etcd; here only that the flags are accepted and
    # nothing is compacted early.
    c = cluster_factory(
        3, extra_args=("--auto-compaction-mode=revision", "--auto-compaction-retention=1000")
    )
    ctl = c.ctl()
    first = ctl("put", "k", "v", "-w", "json").check().json()["header"]["revision"]
    ctl("put", "k", "v2").check()
    assert ctl("get", "k", f"--rev={first}", "--print-value-only").check().stdout.strip() == "v"
