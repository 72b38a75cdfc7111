"""`harness.link_faults.LinkFaults` against a real Toxiproxy server (ours, a local process).

The nine proxies of the overlay (six directed peer links, three client links) listen on
loopback and point at a closed port: what is checked is what each fault puts on which proxy
and stream (read back from the server's API), that it is recorded, and that the audited heal
leaves every proxy enabled without toxics. The Docker cells (tests/composed) check the faults'
effect on real clusters.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import ports
from harness.cluster import Member
from harness.link_faults import LinkFaults, direction_streams
from harness.toxiproxy_links import Link, ToxiproxyLinks, client_link_name, link_name

TOXIPROXY_ROOT = Path(__file__).resolve().parents[2] / "toxiproxy"
NAMES = ("node1", "node2", "node3")


@dataclass
class _Topology:
    """What LinkFaults reads of a DockerCluster: its members, project and Toxiproxy."""

    links: ToxiproxyLinks
    project: str = "link-faults-test"
    members: list[Member] = field(default_factory=lambda: [Member(n, "", "") for n in NAMES])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def topo() -> Iterator[_Topology]:
    port = ports.free_port()
    env = dict(os.environ, PYTHONPATH=str(TOXIPROXY_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "toxiproxy_server", "-host", "127.0.0.1",
                             "-port", str(port)], cwd=TOXIPROXY_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        links = ToxiproxyLinks("127.0.0.1", port)
        dead = ports.free_port()
        with links.api() as server:
            for s in NAMES:
                for d in [*(x for x in NAMES if x != s), "client"]:
                    name = client_link_name(s) if d == "client" else link_name(s, d)
                    server.create(upstream=f"127.0.0.1:{dead}", name=name,
                                  listen=f"127.0.0.1:{ports.free_port()}")
        yield _Topology(links)
    finally:
        proc.terminate()
        proc.wait(10)


def _state(links: ToxiproxyLinks) -> dict[str, tuple[bool, dict[str, Any]]]:
    names = links.names()
    return {n: (Link(links, n).enabled, Link(links, n).toxics()) for n in names}


def _assert_clean(f: LinkFaults) -> None:
    audit = f.heal()
    assert audit["clean"] is True and audit["proxies"] == 9
    for name, (enabled, toxics) in _state(f.links).items():
        assert enabled and not toxics, name


def test_latency_on_every_peer_link_both_streams(topo: _Topology) -> None:
    f = LinkFaults(topo)  # type: ignore[arg-type]  # the attributes LinkFaults reads
    f.latency(50, 10)
    applied = f.take_applied()
    assert len(applied) == 12 and not f.take_applied()
    for name, (_, toxics) in _state(topo.links).items():
        if name.startswith("client_"):
            assert not toxics
            continue
        assert sorted(t["stream"] for t in toxics.values()) == ["downstream", "upstream"]
        assert all(t["type"] == "latency" and t["attributes"]["latency"] == 50
                   and t["attributes"]["jitter"] == 10 for t in toxics.values())
    f.latency(0, 0)  # removes exactly what latency() added
    assert all(not t for _, t in _state(topo.links).values())
    _assert_clean(f)


def test_one_way_touches_only_the_streams_from_src_to_dst(topo: _Topology) -> None:
    f = LinkFaults(topo)  # type: ignore[arg-type]
    f.one_way("node1", "node2")
    want = set(direction_streams("node1", "node2"))
    assert want == {("node1_to_node2", "upstream"), ("node2_to_node1", "downstream")}
    got = {(n, t["stream"]) for n, (_, ts) in _state(topo.links).items() for t in ts.values()}
    assert got == want
    rec = f.take_applied()
    assert {(a["proxy"], a["stream"]) for a in rec} == want
    assert all(a["type"] == "timeout" and a["attributes"] == {"timeout": 0}
               and a["direction"] == "node1->node2" for a in rec)
    _assert_clean(f)


def test_partition_disables_both_links_of_each_cut_pair(topo: _Topology) -> None:
    f = LinkFaults(topo)  # type: ignore[arg-type]
    f.partition([[topo.members[0]]])
    disabled = {n for n, (en, _) in _state(topo.links).items() if not en}
    assert disabled == {"node1_to_node2", "node2_to_node1", "node1_to_node3", "node3_to_node1"}
    assert {a["proxy"] for a in f.take_applied()} == disabled
    _assert_clean(f)


@pytest.mark.parametrize(("fault", "kind", "count"), [
    ("slow_member", "latency", 8), ("blackhole", "timeout", 8), ("reset_peer", "reset_peer", 8),
])
def test_member_faults_cover_its_four_links(topo: _Topology, fault: str, kind: str,
                                            count: int) -> None:
    f = LinkFaults(topo)  # type: ignore[arg-type]
    args: tuple[Any, ...] = ("node2", 80, 5) if fault == "slow_member" else ("node2",)
    getattr(f, fault)(*args)
    rec = f.take_applied()
    assert len(rec) == count and all(a["type"] == kind for a in rec)
    assert all("node2" in a["proxy"] for a in rec)
    _assert_clean(f)


def test_bandwidth_and_client_latency(topo: _Topology) -> None:
    f = LinkFaults(topo)  # type: ignore[arg-type]
    f.bandwidth(32)
    f.client_latency(40, 0)
    rec = f.take_applied()
    assert sum(a["type"] == "bandwidth" for a in rec) == 12
    clients = [a for a in rec if a["proxy"].startswith("client_")]
    assert len(clients) == 6 and all(a["type"] == "latency" for a in clients)
    _assert_clean(f)
