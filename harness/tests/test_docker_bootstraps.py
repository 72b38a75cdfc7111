"""Issue 5's compose acceptance: every bootstrap forms a 3-member cluster on the fixed addresses.

For each bootstrap (static, v2 discovery, DNS SRV) and each implementation (petcd, etcd 3.5.1) a
`DockerCluster` is started from its compose file and must end with three started members that
every member lists alike (`etcdctl member list`: same IDs, names node1..node3, peer URLs on the
fixed addresses or on names that resolve to them) and that serve a put/get. The discovery cases
also cross implementations: etcd members discover through a petcd discovery service and petcd
members through etcd's (and through petcd's own), and the registrations are read back with the v2
API. The DNS cases check the members' resolution through dnsmasq and `etcdctl --discovery-srv`.

Skipped only when no Docker engine answers. Every cluster is removed and checked for leftovers.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from harness.cluster import Member
from harness.docker_backend import (
    BOOTSTRAPS,
    DNS_DOMAIN,
    FIRST_HOST,
    DockerCluster,
)
from harness.docker_control import ExecResult
from tests.support.docker import docker_clusters, needs_engine

pytestmark = [
    needs_engine,
    pytest.mark.timeout(600),
]

IMPLS = ("petcd", "etcd-3.5")
# (members, bootstrap, discovery service): every bootstrap for both implementations; the
# discovery service is the other implementation, plus an all-petcd discovery cluster.
CASES = [
    *[(impl, b, "etcd-3.5" if impl == "petcd" else "petcd") for b in BOOTSTRAPS for impl in IMPLS],
    ("petcd", "discovery", "petcd"),
]


def _case_id(case: tuple[str, str, str]) -> str:
    impl, bootstrap, disc = case
    return f"{impl}-{bootstrap}" + (f"-via-{disc}" if bootstrap == "discovery" else "")


@pytest.fixture(params=CASES, ids=[_case_id(c) for c in CASES])
def cluster(request: pytest.FixtureRequest) -> Iterator[DockerCluster]:
    """A healthy cluster of one case; removed (and checked for leftovers) afterwards."""
    impl, bootstrap, disc = request.param
    images = (disc,) if bootstrap == "discovery" else ("dnsmasq",) if bootstrap == "dns" else ()
    with docker_clusters() as make:
        yield make(impl, images=images, bootstrap=bootstrap, discovery_impl=disc)


def member_rows(c: DockerCluster, via: Member) -> list[list[str]]:
    """`etcdctl member list` through one member: [id, status, name, peer, client, learner]."""
    out = c.ctl([via])("member", "list").check().lines()
    return sorted([f.strip() for f in line.split(",")] for line in out)


def fixed_address(c: DockerCluster, name: str) -> str:
    return f"{c.net_prefix}.{FIRST_HOST + int(name.removeprefix('node')) - 1}"


def in_container(c: DockerCluster, member: Member, *cmd: str) -> ExecResult:
    """Run a command in the member's container (docker SDK exec)."""
    return c.exec(member, *cmd)


def resolve_in(c: DockerCluster, member: Member, host: str) -> str:
    """`host`'s address as the member's container resolves it (system resolver, getent)."""
    res = in_container(c, member, "getent", "ahostsv4", host)
    assert res.returncode == 0, f"{member.name} cannot resolve {host}: {res.stderr}"
    return res.stdout.split()[0]


def test_bootstrap_forms_three_member_cluster(cluster: DockerCluster) -> None:
    c = cluster
    n1, n2, n3 = c.members

    # Every member lists the same three started voters, named node1..node3.
    tables = [member_rows(c, m) for m in c.members]
    assert tables[0] == tables[1] == tables[2], tables
    rows = tables[0]
    assert sorted(r[2] for r in rows) == ["node1", "node2", "node3"], rows
    assert all(r[1] == "started" and r[5] == "false" for r in rows), rows
    assert len({r[0] for r in rows}) == 3, rows

    # Peer URLs: the fixed addresses, or (DNS SRV) the SRV targets, which resolve to them.
    by_name = {r[2]: r for r in rows}
    for m in c.members:
        peer = by_name[m.name][3]
        assert peer == m.peer_url, (peer, m.peer_url)
        host = peer.removeprefix("http://").rsplit(":", 1)[0]
        if c.bootstrap == "dns":
            assert host == f"{m.name}.{DNS_DOMAIN}"
            for viewer in c.members:
                assert resolve_in(c, viewer, host) == fixed_address(c, m.name)
        else:
            assert host == fixed_address(c, m.name)

    key = f"/bootstrap/{uuid.uuid4().hex[:8]}"
    c.ctl([n1])("put", key, c.bootstrap).check()
    assert c.ctl([n3])("get", key, "--print-value-only").check().stdout.strip() == c.bootstrap

    if c.bootstrap == "discovery":
        check_discovery_registrations(c, rows)
    if c.bootstrap == "dns":
        # Clients find the members through _etcd-client._tcp, as etcdctl --discovery-srv does.
        res = in_container(c, n2, "etcdctl", f"--discovery-srv={DNS_DOMAIN}",
                           "--command-timeout=5s", "get", key, "--print-value-only")
        assert res.returncode == 0 and res.stdout.strip() == "dns", res.stderr


def v2_get(url: str) -> Any:
    """GET a v2 keys URL (the discovery service's published port on loopback)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def check_discovery_registrations(c: DockerCluster, rows: list[list[str]]) -> None:
    """The discovery directory holds the size key and one `name=peerURL` entry per member,
    keyed by the member's ID, as etcd's v2discovery writes it."""
    base = f"{c.discovery_client_url}/v2/keys/discovery/{c.token}"
    # `_config` is a hidden key (leading underscore): listings leave it out, a GET finds it.
    assert v2_get(f"{base}/_config/size")["node"]["value"] == "3"
    nodes = v2_get(f"{base}?recursive=true")["node"]["nodes"]
    regs = {n["key"].rsplit("/", 1)[1]: n["value"] for n in nodes}
    assert regs == {r[0]: f"{r[2]}={r[3]}" for r in rows}, (regs, rows)
    assert c.discovery_url.endswith(f"/v2/keys/discovery/{c.token}")
