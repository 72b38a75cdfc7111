"""The Docker backend against real containers: topology, faults, membership and teardown.

Skipped only when no Docker engine is reachable. Missing images are built with images/build.sh
(cached and offline; the first build of a base image takes a few minutes).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from harness.cluster import ClusterError, Member
from harness.docker_backend import (
    COMPOSE_FILE,
    DockerCluster,
    DockerError,
    ensure_image,
    image_exists,
)
from harness.etcdctl import Result
from harness.impls import IMPL_NAMES
from tests.support.docker import docker_clusters, needs_engine
from tests.support.timeouts import CONVERGE, DOCKER_UP
from tests.support.wait import wait_until

pytestmark = [
    needs_engine,
    pytest.mark.timeout(900),
]

@pytest.fixture
def docker_cluster() -> Iterator[Callable[..., DockerCluster]]:
    """Factory for healthy clusters; every cluster made is torn down and checked for leftovers."""
    with docker_clusters() as make:
        yield make


def until_ready(call: Callable[[], Result], timeout: float = 30.0) -> str:
    """Run a membership change until etcd accepts it. etcd refuses one with "unhealthy cluster"
    until every member has been connected for its health interval (5s), which a just-started
    cluster has not."""
    deadline = time.monotonic() + timeout
    while True:
        res = call()
        if res.ok or "unhealthy cluster" not in res.stderr or time.monotonic() >= deadline:
            return res.check().stdout
        time.sleep(0.2)


def member_table(c: DockerCluster, via: Member) -> list[list[str]]:
    out = c.ctl([via])("member", "list").check().lines()
    return [[f.strip() for f in line.split(",")] for line in out]


@pytest.mark.parametrize("impl", IMPL_NAMES)
def test_topology_survives_kill_and_catches_up(
    impl: str, docker_cluster: Callable[..., DockerCluster]
) -> None:
    c = docker_cluster(impl)
    m1, m2, m3 = c.members

    # Three started members whose peer URLs are their fixed container addresses.
    rows = member_table(c, m1)
    assert sorted(r[2] for r in rows) == ["node1", "node2", "node3"]
    assert all(r[1] == "started" for r in rows), rows
    assert sorted(r[3] for r in rows) == [f"http://{c.net_prefix}.{h}:2380" for h in (100, 101, 102)]
    # etcdctl inside the container works too (healthchecks depend on it).
    res = c.compose("exec", "-T", "node1", "etcdctl", "endpoint", "health")
    assert "is healthy" in res.stdout + res.stderr

    key = f"/docker/{uuid.uuid4().hex[:8]}"
    c.ctl([m1])("put", key, "v1").check()
    assert c.ctl([m3])("get", key, "--print-value-only").check().stdout.strip() == "v1"

    c.kill(m1)
    assert not c.is_running(m1)
    c.wait_healthy(timeout=DOCKER_UP)  # the two survivors agree on a leader
    c.ctl([m2, m3])("put", key, "v2").check()

    c.start_member(m1)
    c.wait_healthy(timeout=DOCKER_UP)

    def caught_up() -> bool:
        res = c.ctl([m1])("get", key, "--print-value-only", "--consistency=s")
        return res.ok and res.stdout.strip() == "v2"

    wait_until(caught_up, CONVERGE, "the restarted member to apply the write it missed")


def test_pause_resume_restart_and_parallel_isolation(
    docker_cluster: Callable[..., DockerCluster],
) -> None:
    a = docker_cluster("etcd-3.5")
    b = docker_cluster("etcd-3.5")
    assert a.project != b.project and a.net_prefix != b.net_prefix
    assert not set(a.endpoints) & set(b.endpoints)
    a.ctl()("put", "/iso", "a").check()
    assert b.ctl()("get", "/iso", "--print-value-only").check().stdout.strip() == ""

    follower = next(m for m in a.members if m != a.leader())
    a.pause(follower)
    assert a.is_running(follower)  # stopped, not gone
    assert a.status(follower) is None  # but it does not answer
    others = [m for m in a.members if m != follower]
    a.ctl(others)("put", "/paused", "1").check()
    a.resume(follower)
    wait_until(lambda: a.status(follower) is not None, CONVERGE, "the resumed member to answer")

    a.restart(others[0])
    a.wait_healthy(timeout=DOCKER_UP)
    assert a.ctl([others[0]])("get", "/paused", "--print-value-only",
                               "--consistency=s").check().stdout.strip() == "1"


def test_join_and_forget_member(docker_cluster: Callable[..., DockerCluster]) -> None:
    c = docker_cluster("etcd-3.5")
    new = c.plan_member("node4")
    assert new.peer_url == f"http://{c.net_prefix}.103:2380"
    out = until_ready(lambda: c.ctl()("member", "add", new.name, f"--peer-urls={new.peer_url}"))
    initial = next(line.split("=", 1)[1].strip('"') for line in out.splitlines()
                   if line.startswith("ETCD_INITIAL_CLUSTER="))
    c.join(new, initial)
    c.wait_healthy(timeout=DOCKER_UP)
    rows = member_table(c, c.members[0])
    assert len(rows) == 4 and all(r[1] == "started" for r in rows), rows
    c.ctl([new])("put", "/joined", "yes").check()

    member_id = next(r[0] for r in rows if r[2] == "node4")
    until_ready(lambda: c.ctl(c.members[:3])("member", "remove", member_id))
    c.forget(new)
    assert [m.name for m in c.members] == ["node1", "node2", "node3"]
    c.wait_healthy(timeout=DOCKER_UP)


def test_member_that_exits_is_reported_and_cleaned_up() -> None:
    # The base image's command is a shell that exits at once: the backend must say which member
    # died and with what, and still remove everything.
    ensure_image("etcd-3.5")  # builds the base image too
    c = DockerCluster("etcd-3.5", size=1, image="petcd/bookworm-python:latest")
    try:
        c.start()
        with pytest.raises(ClusterError, match=r"node1 .*exited with rc=0"):
            c.wait_healthy(timeout=20)
    finally:
        c.stop()
    assert c.leftovers() == []
    c.stop()  # idempotent


def test_start_without_image_fails_clearly() -> None:
    c = DockerCluster("etcd-3.5", size=1, image=f"petcd/no-such-image:{uuid.uuid4().hex[:6]}")
    assert not image_exists(c.image)
    try:
        with pytest.raises(ClusterError, match="not found: run images/build.sh"):
            c.start()
    finally:
        c.stop()
    assert c.leftovers() == []


def test_size_outside_compose_topology_is_rejected() -> None:
    with pytest.raises(ValueError, match="1-5 members"):
        DockerCluster("etcd-3.5", size=6)
    with pytest.raises(ValueError, match="the dns bootstrap starts the 3 members"):
        DockerCluster("etcd-3.5", size=5, bootstrap="dns")
    assert COMPOSE_FILE.is_file()


def test_image_target_runs_a_users_image(docker_cluster: Callable[..., DockerCluster]) -> None:
    # Any etcd-compatible image given as image:NAME[:TAG]; here etcd 3.5.1's, as a user's would be.
    ensure_image("etcd-3.5")
    c = docker_cluster("image:petcd/etcd:3.5.1")
    assert c.image == "petcd/etcd:3.5.1"
    assert c.inspect(c.members[0])["Config"]["Image"] == "petcd/etcd:3.5.1"  # type: ignore[index]
    res = c.exec(c.members[0], "etcd", "--version")
    assert res.returncode == 0 and "etcd Version: 3.5.1" in res.stdout
    assert sorted(row[2] for row in member_table(c, c.members[0])) == ["node1", "node2", "node3"]


def test_image_target_names_are_checked() -> None:
    from harness.impls import get_impl, image_of

    assert image_of("image:my/etcd-fork:dev") == "my/etcd-fork:dev"
    assert image_of("etcd-3.5") is None
    with pytest.raises(ValueError, match="image:NAME"):
        get_impl("image:Bad Name")
    with pytest.raises(DockerError, match="not found: build or load it first"):
        ensure_image(f"image:petcd/no-such-image:{uuid.uuid4().hex[:6]}")
