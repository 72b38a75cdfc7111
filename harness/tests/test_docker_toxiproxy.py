"""Issue 4's acceptance on the Docker backend with Toxiproxy on every link (petcd and etcd 3.5).

Each test starts its own proxied 3-member cluster (compose/docker-compose.yml plus
compose/docker-compose.toxiproxy.yml) and removes it afterwards, checking that no container,
network or volume is left. Skipped only when no Docker engine is reachable; missing images are
built with images/build.sh (cached, offline).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from harness.cluster import Member
from harness.docker_backend import DockerCluster
from harness.docker_control import ExecResult
from harness.etcdctl import Etcdctl
from harness.impls import etcdctl_35
from tests.support.docker import docker_clusters, needs_engine
from tests.support.timeouts import CONVERGE, DOCKER_UP
from tests.support.wait import wait_until

pytestmark = [
    needs_engine,
    pytest.mark.timeout(600),
]

IMPLS = ["petcd", "etcd-3.5"]
LATENCY_MS = 200
PUTS = 7  # per median


@pytest.fixture
def proxied() -> Iterator[Callable[[str], DockerCluster]]:
    """Factory for healthy proxied clusters; each one is torn down and checked for leftovers."""
    with docker_clusters() as make:
        yield lambda impl: make(impl, images=("toxiproxy",), proxied=True)


def _serializable_value(c: DockerCluster, m: Member, key: str) -> str:
    """`key`'s value as `m` alone serves it."""
    res = c.ctl([m])("get", key, "--print-value-only", "--consistency=s")
    return res.stdout.strip()


def median_put_seconds(c: DockerCluster, via: Member, key: str) -> float:
    """Median wall time of PUTS `etcdctl put`s through one member."""
    times = []
    for i in range(PUTS):
        t0 = time.monotonic()
        c.ctl([via], command_timeout="10s")("put", key, str(i)).check()
        times.append(time.monotonic() - t0)
    return statistics.median(times)


def in_container(c: DockerCluster, member: str, *cmd: str) -> ExecResult:
    """Run a command inside a member's container (docker SDK exec; the API call is bounded by
    the client's timeout)."""
    return c.exec(c.member(member), *cmd)


def can_connect(c: DockerCluster, src: str, host: str, port: int = 2380) -> bool:
    """Whether a TCP connection from inside `src`'s container to host:port succeeds."""
    code = f"import socket; socket.create_connection(({host!r}, {port}), 3).close()"
    return in_container(c, src, "python3", "-c", code).returncode == 0


def has_leader(c: DockerCluster, m: Member) -> bool:
    st = c.status(m)
    return st is not None and int(st.get("leader", 0)) != 0


@pytest.mark.parametrize("impl", IMPLS)
def test_peer_latency_slows_puts_and_removal_restores(
    impl: str, proxied: Callable[[str], DockerCluster]
) -> None:
    c = proxied(impl)
    m1 = c.members[0]
    key = f"/lat/{uuid.uuid4().hex[:8]}"
    base = median_put_seconds(c, m1, key)

    for src in c.members:
        for dst in c.members:
            if src != dst:
                c.link(src, dst).latency(LATENCY_MS)
    assert set(c.link("node3", "node2").toxics()) == {"latency_upstream", "latency_downstream"}
    slow = median_put_seconds(c, m1, key)
    # A put needs at least one round of the leader's append and a follower's ack across links.
    assert slow - base >= 0.150, f"median put {base:.3f}s -> {slow:.3f}s with {LATENCY_MS}ms"

    for src in c.members:
        for dst in c.members:
            if src != dst:
                c.link(src, dst).clear()
    assert c.link("node3", "node2").toxics() == {}
    restored: list[float] = []

    def fast_again() -> bool:
        restored.append(median_put_seconds(c, m1, key))
        return restored[-1] < base + 0.100

    wait_until(fast_again, CONVERGE,
               f"puts as fast as before (base {base:.3f}s, seen {restored})")
    assert restored[-1] < slow - 0.150
    print(f"{impl}: median put {base:.3f}s, with {LATENCY_MS}ms on every peer link {slow:.3f}s, "
          f"after removing it {restored[-1]:.3f}s")


@pytest.mark.parametrize("impl", IMPLS)
def test_isolated_member_loses_leader_while_others_serve(
    impl: str, proxied: Callable[[str], DockerCluster]
) -> None:
    c = proxied(impl)
    m1, m2, m3 = c.members
    key = f"/iso/{uuid.uuid4().hex[:8]}"
    c.ctl([m1])("put", key, "before").check()
    wait_until(lambda: _serializable_value(c, m1, key) == "before", CONVERGE,
               "node1 to apply")

    c.isolate(m1)
    assert not any(link.enabled for link in c.peer_links(m1))
    assert c.link(m2, m3).enabled and c.link(m3, m2).enabled

    # node1 learns it has no leader (a leader steps down without a quorum; a follower's
    # election timer fires and it stays a candidate)...
    wait_until(lambda: not has_leader(c, m1), CONVERGE, "node1 to report no leader")
    st = c.status(m1)
    assert st is not None and "etcdserver: no leader" in st.get("errors", []), st
    # ...a serializable read is still answered from its own state, a linearizable one is not.
    res = c.ctl([m1])("get", key, "--print-value-only", "--consistency=s")
    assert res.ok and res.stdout.strip() == "before", res
    res = c.ctl([m1], command_timeout="3s")("get", key)
    assert not res.ok, res
    # node2 and node3 elect a leader among themselves and keep serving writes.
    c.leader(timeout=30, among=[m2, m3])
    c.ctl([m2])("put", key, "during").check()
    assert c.ctl([m3])("get", key, "--print-value-only").check().stdout.strip() == "during"
    res = c.ctl([m1])("get", key, "--print-value-only", "--consistency=s")
    assert res.stdout.strip() == "before", "an isolated member must not see the new write"

    c.heal()
    c.wait_healthy(timeout=DOCKER_UP)
    wait_until(lambda: _serializable_value(c, m1, key) == "during", CONVERGE,
               "node1 to catch up after the heal")
    assert c.ctl([m1])("get", key, "--print-value-only").check().stdout.strip() == "during"


@pytest.mark.parametrize("impl", IMPLS)
def test_compose_kill_node1_then_restart_catches_up(
    impl: str, proxied: Callable[[str], DockerCluster]
) -> None:
    c = proxied(impl)
    m1, m2, m3 = c.members
    key = f"/kill/{uuid.uuid4().hex[:8]}"
    c.ctl([m1])("put", key, "v1").check()
    assert c.ctl([m3])("get", key, "--print-value-only").check().stdout.strip() == "v1"

    c.kill(m1)  # docker compose kill -s SIGKILL node1
    assert not c.is_running(m1)
    c.leader(timeout=30, among=[m2, m3])
    for i in range(20):
        c.ctl([m2, m3])("put", f"{key}/{i}", str(i)).check()
    c.ctl([m2])("put", key, "v2").check()

    c.start_member(m1)
    c.wait_healthy(timeout=DOCKER_UP)
    wait_until(lambda: _serializable_value(c, m1, key) == "v2", CONVERGE,
               "the restarted node1 to apply what it missed")
    res = c.ctl([m1])("get", f"{key}/", "--prefix", "--keys-only", "--consistency=s").check()
    assert len([k for k in res.lines() if k]) == 20, res.stdout


def test_links_are_directed_and_separately_controlled(
    proxied: Callable[[str], DockerCluster],
) -> None:
    c = proxied("etcd-3.5")
    m1, m2, m3 = c.members
    assert {m.peer_url for m in c.members} == {f"http://node{i}.peer:2380" for i in (1, 2, 3)}
    rows = c.ctl([m1])("member", "list").check().lines()
    assert sorted(r.split(", ")[3] for r in rows) == [f"http://node{i}.peer:2380"
                                                       for i in (1, 2, 3)]
    assert c.links is not None
    assert c.links.names() == sorted(
        [f"node{s}_to_node{d}" for s in (1, 2, 3) for d in (1, 2, 3) if s != d]
        + [f"client_to_node{d}" for d in (1, 2, 3)])

    # The same name resolves to a different link address in each sending container.
    def resolve(src: str, name: str) -> str:
        return in_container(c, src, "getent", "hosts", name).stdout.split()[0]

    assert resolve("node1", "node2.peer") == f"{c.net_prefix}.212"
    assert resolve("node3", "node2.peer") == f"{c.net_prefix}.232"
    assert resolve("node2", "node2.peer") == f"{c.net_prefix}.101"

    # Cutting node1->node2 leaves node3->node2 (and node2->node1) working.
    c.link(m1, m2).cut()
    assert not can_connect(c, "node1", "node2.peer")
    assert can_connect(c, "node3", "node2.peer")
    assert can_connect(c, "node2", "node1.peer")
    c.link(m1, m2).heal()
    assert can_connect(c, "node1", "node2.peer")

    # Client ports through their proxies.
    proxied_ctl = Etcdctl([c.proxied_client_url(m2)], binary=etcdctl_35())
    proxied_ctl("put", "/via-proxy", "yes").check()
    assert c.ctl([m3])("get", "/via-proxy", "--print-value-only").check().stdout.strip() == "yes"
    c.client_link(m2).cut()
    assert not proxied_ctl("get", "/via-proxy", "--consistency=s").ok
    c.heal()
    assert proxied_ctl("get", "/via-proxy", "--print-value-only").check().stdout.strip() == "yes"
