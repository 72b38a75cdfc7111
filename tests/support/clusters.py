"""Local (loopback process) clusters for fixtures, and the leader a set of members agrees on."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from harness.cluster import Cluster, Member
from harness.local import LocalCluster
from tests.support.timeouts import CLUSTER_UP, CONVERGE


@contextmanager
def running(
    impl: str = "petcd", size: int = 3, extra_args: Sequence[str] = (),
    timeout: float = CLUSTER_UP,
) -> Iterator[LocalCluster]:
    """A started, healthy `LocalCluster` of `size` members with `extra_args` on every member;
    stopped (processes killed, data removed) on exit, also when starting fails."""
    c = LocalCluster(impl, size=size, extra_args=tuple(extra_args))
    try:
        c.start()
        c.wait_healthy(timeout=timeout)
        yield c
    finally:
        c.stop()


def agreed_leader(c: Cluster, among: Sequence[Member], timeout: float = CONVERGE) -> Member:
    """The leader every member of `among` agrees on, waiting up to `timeout` seconds (members
    whose status has no leader yet are retried, not fatal)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return c.leader(timeout=max(deadline - time.monotonic(), 0.1), among=among)
        except KeyError:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no agreed leader among {[m.name for m in among]} after {timeout:g}s"
                ) from None
            time.sleep(0.2)
