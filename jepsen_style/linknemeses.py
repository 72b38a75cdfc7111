"""Nemeses on Toxiproxy links (Docker backend) and container restarts, and which backend can run
which nemesis.

Contract:

* every link nemesis here drives `harness.link_faults.LinkFaults` of a proxied
  `harness.docker_backend.DockerCluster`; its fault window records what it applied
  (``Fault.applied``: proxy, toxic, type, stream, attributes, direction) and its heal is the
  audited heal (every toxic removed, every proxy enabled, checked; ``Fault.healed``);
* :func:`unsupported` names the nemeses a backend cannot run, with one line each, so the run
  refuses **before** any cluster starts (:func:`check_supported`);
* :func:`check_members` refuses a cluster size the Docker backend cannot run (3 or 5 members; 5
  not with the dns bootstrap, whose SRV records name three), in one line, before anything starts;
* ``client-latency`` slows the client proxies, so it needs the load to go through them: the
  runner routes clients through ``proxied_client_url`` when it is in the run
  (:data:`THROUGH_CLIENT_PROXIES`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from harness.cluster import Cluster, ClusterError, Member
from jepsen_style.nemesis import NEMESES, Fault, Nemesis, _net, current_leader

# Nemeses only the Toxiproxy links of the Docker backend can do.
TOXIPROXY_ONLY = ("slow-member", "slow-leader", "one-way", "bandwidth", "blackhole", "reset-peer",
                  "client-latency")
# Nemeses whose load must go through the client proxies.
THROUGH_CLIENT_PROXIES = ("client-latency",)
# Why a backend cannot run a nemesis (one line each).
UNSUPPORTED: dict[str, dict[str, str]] = {
    "local": {n: "needs Toxiproxy links: use --backend docker" for n in TOXIPROXY_ONLY},
    "docker": {
        "disk-full": "mounts a tmpfs on a local data directory: use --backend local",
        "failpoint": "arms failpoints through each member's environment and gofail endpoint, "
                     "which only local processes get: use --backend local",
    },
}
BANDWIDTH_KB_S = 32
RESET_AFTER_MS = 500


def unsupported(names: Sequence[str], backend: str) -> list[str]:
    """One line per nemesis in `names` that `backend` cannot run (empty: all can)."""
    why = UNSUPPORTED.get(backend, {})
    return [f"nemesis {n!r} cannot run on the {backend} backend: {why[n]}"
            for n in names if n in why]


def check_supported(names: Sequence[str], backend: str) -> None:
    """Raise ValueError (one line) for an unknown nemesis or one `backend` cannot run."""
    for n in names:
        if n not in NEMESES:
            raise ValueError(f"unknown nemesis {n!r} (known: {', '.join(NEMESES)})")
    bad = unsupported(names, backend)
    if bad:
        raise ValueError(bad[0])


def check_members(backend: str, bootstrap: str, members: int) -> None:
    """Raise ValueError (one line) if `backend` cannot run `members` members on `bootstrap`."""
    if backend != "docker":
        return
    if members not in (3, 5):
        raise ValueError(f"the docker backend runs 3 or 5 members, not {members}")
    if members == 5 and bootstrap == "dns":
        raise ValueError("--members 5 cannot use the dns bootstrap: its SRV records "
                         "(compose/docker-compose.dns.yml) name node1..node3 only")


def _links(cluster: Cluster) -> object:
    net = _net(cluster)
    if not hasattr(net, "take_applied"):
        raise ClusterError(f"{type(cluster).__name__} has no Toxiproxy links (docker backend only)")
    return net


def _running(cluster: Cluster) -> list[Member]:
    ms = [m for m in cluster.members if cluster.is_running(m)]
    if not ms:
        raise ClusterError("no running member to target")
    return ms


class _LinkNemesis(Nemesis):
    """Common heal: the audited Toxiproxy heal."""

    def heal(self, cluster: Cluster) -> None:
        self._heal_links(cluster)


class SlowMemberNemesis(_LinkNemesis):
    """``ms`` ± ``jitter`` on every link in and out of one member (the leader with
    ``leader=True``)."""

    def __init__(self, ms: float, jitter: float, leader: bool = False) -> None:
        self.ms, self.jitter, self.leader = ms, jitter, leader
        self.name = "slow-leader" if leader else "slow-member"

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _links(cluster)
        m = current_leader(cluster) if self.leader else None
        how = "leader" if m is not None else "random"
        if m is None:
            m = rng.choice(_running(cluster))
        net.slow_member(m, self.ms, self.jitter)  # type: ignore[attr-defined]
        return self._fault(f"slow {how} {m.name}: {self.ms:g}±{self.jitter:g} ms in and out",
                           [m], net=net)


class OneWayNemesis(_LinkNemesis):
    """Drop everything A sends to B (Toxiproxy ``timeout`` 0 on exactly those streams); B -> A
    still flows. A is the leader half the time."""

    name = "one-way"

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _links(cluster)
        ms = list(cluster.members)
        lead = current_leader(cluster) if rng.random() < 0.5 else None
        a = lead if lead is not None else rng.choice(ms)
        b = rng.choice([m for m in ms if m.name != a.name])
        net.one_way(a, b)  # type: ignore[attr-defined]
        return self._fault(f"one-way cut {a.name}->{b.name} ({b.name}->{a.name} flows)",
                           [a, b], net=net)


class BandwidthNemesis(_LinkNemesis):
    """Every peer link limited to ``kb_per_s`` KB/s in each direction."""

    name = "bandwidth"

    def __init__(self, kb_per_s: int = BANDWIDTH_KB_S) -> None:
        self.kb_per_s = kb_per_s

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _links(cluster)
        net.bandwidth(self.kb_per_s)  # type: ignore[attr-defined]
        return self._fault(f"bandwidth {self.kb_per_s} KB/s on every peer link",
                           cluster.members, net=net)


class BlackholeNemesis(_LinkNemesis):
    """Toxiproxy ``timeout`` 0 on every link of one member (the leader half the time): its
    connections stay open and carry nothing. The member counts as isolated."""

    name = "blackhole"

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _links(cluster)
        lead = current_leader(cluster) if rng.random() < 0.5 else None
        m = lead if lead is not None else rng.choice(list(cluster.members))
        net.blackhole(m)  # type: ignore[attr-defined]
        return self._fault(f"blackhole {m.name} (timeout 0 on its links)", [m], isolated=[m],
                           net=net)


class ResetPeerNemesis(_LinkNemesis):
    """TCP RST on every connection in and out of one member, ``after_ms`` after it opens."""

    name = "reset-peer"

    def __init__(self, after_ms: int = RESET_AFTER_MS) -> None:
        self.after_ms = after_ms

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _links(cluster)
        m = rng.choice(list(cluster.members))
        net.reset_peer(m, self.after_ms)  # type: ignore[attr-defined]
        return self._fault(f"reset-peer {m.name} after {self.after_ms} ms", [m], net=net)


class ClientLatencyNemesis(_LinkNemesis):
    """``ms`` ± ``jitter`` on every client link (host -> member)."""

    name = "client-latency"

    def __init__(self, ms: float, jitter: float) -> None:
        self.ms, self.jitter = ms, jitter

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _links(cluster)
        net.client_latency(self.ms, self.jitter)  # type: ignore[attr-defined]
        return self._fault(f"client latency {self.ms:g}±{self.jitter:g} ms", cluster.members,
                           net=net)


class RestartNemesis(Nemesis):
    """Stop one member gracefully (SIGTERM, the leader half the time) and start it again on its
    data at once; heal makes sure it runs."""

    name = "restart"

    def __init__(self) -> None:
        self.restarted: list[Member] = []

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        lead = current_leader(cluster) if rng.random() < 0.5 else None
        m = lead if lead is not None else rng.choice(_running(cluster))
        how = "leader" if lead is not None else "random"
        self.restarted.append(m)
        cluster.stop_member(m)
        cluster.start_member(m)
        return self._fault(f"restart {how} {m.name}", [m])

    def heal(self, cluster: Cluster) -> None:
        while self.restarted:
            m = self.restarted.pop()
            if not cluster.is_running(m):
                cluster.start_member(m)


def make(name: str, latency_ms: float, latency_jitter: float) -> Nemesis | None:
    """The nemesis `name` if this module defines it, else None."""
    if name == "slow-member":
        return SlowMemberNemesis(latency_ms, latency_jitter)
    if name == "slow-leader":
        return SlowMemberNemesis(latency_ms, latency_jitter, leader=True)
    if name == "one-way":
        return OneWayNemesis()
    if name == "bandwidth":
        return BandwidthNemesis()
    if name == "blackhole":
        return BlackholeNemesis()
    if name == "reset-peer":
        return ResetPeerNemesis()
    if name == "client-latency":
        return ClientLatencyNemesis(latency_ms, latency_jitter)
    if name == "restart":
        return RestartNemesis()
    return None
