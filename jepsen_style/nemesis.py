"""Nemeses: faults injected into a running cluster, each with a heal, composed on a schedule.

Contract:

* a :class:`Nemesis` has ``inject(cluster, rng) -> Fault`` (start one fault, return at once
  with what was done) and ``heal(cluster)`` (undo every fault it started; idempotent, safe when
  nothing is injected). Both are blocking and run in a worker thread, never on the event loop;
* :class:`Schedule` alternates quiet and fault windows: the first fault starts after
  ``quiet_start`` seconds (the baseline throughput is measured before it), each fault lasts
  ``fault_seconds``, then ``quiet_seconds`` of calm; no fault starts within ``final_quiet``
  seconds of the end. The listed nemeses take turns (seeded order per round). At the end (and
  on any error or cancellation) every nemesis is healed: the *final heal*;
* the schedule publishes the members a current partition isolates (``isolated``), which
  workloads may use to route operations (the stale-read control does);
* every window is recorded as a :class:`Fault` (name, detail, members, start and end times in
  ``time.monotonic()`` seconds) for the report and the plots; fault loops are bounded by the
  run's time limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.cluster import Cluster, ClusterError, Member

NEMESES = ("kill", "pause", "pause-holder", "restart", "partition", "partition-leader", "bridge",
           "latency", "slow-member", "slow-leader", "one-way", "bandwidth", "blackhole",
           "reset-peer", "client-latency", "admin", "membership", "disk-full",
           "failpoint")


@dataclass(slots=True)
class Fault:
    """One fault window (``end`` None while it lasts)."""

    nemesis: str
    detail: str
    members: tuple[str, ...]
    start: float
    end: float | None = None
    isolated: tuple[str, ...] = ()
    error: str = ""
    applied: list[dict[str, Any]] = field(default_factory=list)
    """What the window changed (Toxiproxy: proxy, toxic, type, stream, attributes, direction)."""
    healed: dict[str, Any] = field(default_factory=dict)
    """The audit of the heal that ended the window (Toxiproxy: proxies clean, toxics removed)."""

    def to_json(self, t0: float) -> dict[str, Any]:
        return {
            "nemesis": self.nemesis, "detail": self.detail, "members": list(self.members),
            "isolated": list(self.isolated),
            "start": round(self.start - t0, 3),
            "end": None if self.end is None else round(self.end - t0, 3),
            **({"applied": self.applied} if self.applied else {}),
            **({"healed": self.healed} if self.healed else {}),
            **({"error": self.error} if self.error else {}),
        }


def current_leader(cluster: Cluster, among: Sequence[Member] | None = None) -> Member | None:
    """The member most responding members name as leader, or None (no waiting)."""
    ms = list(cluster.members if among is None else among)
    votes: dict[int, int] = {}
    ids: dict[int, Member] = {}
    for m in ms:
        if not cluster.is_running(m):
            continue
        st = cluster.status(m)
        if not st:
            continue
        ids[int(st["header"]["member_id"])] = m
        lead = int(st.get("leader", 0) or 0)
        if lead:
            votes[lead] = votes.get(lead, 0) + 1
    for lead, _ in sorted(votes.items(), key=lambda kv: -kv[1]):
        if lead in ids:
            return ids[lead]
    return None


class Nemesis(ABC):
    name: str
    audit: dict[str, Any]
    """Reset by the schedule before every heal, set by ``heal`` where the heal is audited (Toxiproxy links); copied to the window."""

    @abstractmethod
    def inject(self, cluster: Cluster, rng: random.Random) -> Fault: ...

    @abstractmethod
    def heal(self, cluster: Cluster) -> None: ...

    def _fault(self, detail: str, members: Sequence[Member], isolated: Sequence[Member] = (),
               net: Any = None) -> Fault:
        applied = net.take_applied() if net is not None and hasattr(net, "take_applied") else []
        return Fault(self.name, detail, tuple(m.name for m in members), time.monotonic(),
                     isolated=tuple(m.name for m in isolated), applied=applied)

    def _heal_links(self, cluster: Cluster) -> None:
        """The audited heal of a link nemesis (every proxy enabled, no toxic left)."""
        audit = _net(cluster).heal()
        self.audit = audit if isinstance(audit, dict) else {}


def _pick(cluster: Cluster, rng: random.Random, leader_bias: float) -> tuple[Member, str]:
    running = [m for m in cluster.members if cluster.is_running(m)]
    if not running:
        raise ClusterError("no running member to target")
    if rng.random() < leader_bias:
        lead = current_leader(cluster)
        if lead is not None:
            return lead, "leader"
    return rng.choice(running), "random"


class KillNemesis(Nemesis):
    """SIGKILL one member (the leader half the time); heal restarts it on its data."""

    name = "kill"

    def __init__(self) -> None:
        self.killed: list[Member] = []

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        m, how = _pick(cluster, rng, 0.5)
        cluster.kill(m)
        self.killed.append(m)
        return self._fault(f"kill {how} {m.name}", [m])

    def heal(self, cluster: Cluster) -> None:
        while self.killed:
            m = self.killed.pop()
            if not cluster.is_running(m):
                cluster.start_member(m)


class PauseNemesis(Nemesis):
    """SIGSTOP one member (the leader half the time); heal sends SIGCONT."""

    name = "pause"

    def __init__(self) -> None:
        self.paused: list[Member] = []

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        m, how = _pick(cluster, rng, 0.5)
        cluster.pause(m)
        self.paused.append(m)
        return self._fault(f"pause {how} {m.name}", [m])

    def heal(self, cluster: Cluster) -> None:
        while self.paused:
            m = self.paused.pop()
            if cluster.is_running(m):
                cluster.resume(m)


class PauseHolderNemesis(PauseNemesis):
    """SIGSTOP the member of a slot that holds the lock right now (the workload names those
    members through ``targets``), preferring one that is not the leader so the holder's lease
    expires on a live leader while the holder still believes it holds the lock. After the
    SIGSTOP it checks (``SETTLE`` s later) that the holder is still inside; if not it resumes
    the member and tries again (``ATTEMPTS`` times within ``WAIT`` s), else pauses a random
    member and says so in the fault's detail. Heal sends SIGCONT."""

    name = "pause-holder"
    WAIT = 3.0
    POLL = 0.02
    SETTLE = 0.05
    ATTEMPTS = 10

    def __init__(self) -> None:
        super().__init__()
        self.targets: Callable[[], Sequence[str]] = list

    def _candidates(self, leader: Member | None) -> list[str]:
        try:
            names = list(self.targets())
        except RuntimeError:  # the workload's table changed under us (another thread): retry
            return []
        return sorted(n for n in names if leader is None or n != leader.name)

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        leader = current_leader(cluster)
        deadline = time.monotonic() + self.WAIT
        for _ in range(self.ATTEMPTS):
            names = self._candidates(leader)
            while not names and time.monotonic() < deadline:
                time.sleep(self.POLL)  # polling the workload's holder table, bounded by WAIT
                names = self._candidates(leader)
            if not names:
                break
            m = cluster.member(rng.choice(names))
            cluster.pause(m)
            # A holder may have left its critical section between the look and the SIGSTOP
            # (answers already in flight still arrive): confirm, else let go and look again.
            time.sleep(self.SETTLE)
            if m.name in self._candidates(None):
                self.paused.append(m)
                return self._fault(f"pause lock holder's member {m.name}", [m])
            cluster.resume(m)
        m, _ = _pick(cluster, rng, 0.0)
        cluster.pause(m)
        self.paused.append(m)
        return self._fault(f"pause random {m.name} (no lock holder caught)", [m])


def _net(cluster: Cluster) -> Any:
    """The cluster's link controller: Toxiproxy's (`harness.link_faults.LinkFaults`) on a proxied
    Docker cluster, the link proxy of `harness.localnet.ProxiedLocalCluster` locally."""
    faults = getattr(cluster, "link_faults", None)
    if faults is not None and getattr(cluster, "links", None) is not None:
        return faults()
    if not all(hasattr(cluster, a) for a in ("partition", "heal", "latency")):
        raise ClusterError(
            f"{type(cluster).__name__} cannot cut or slow links (local backend: use "
            "harness.localnet.ProxiedLocalCluster; docker: DockerCluster(proxied=True))")
    return cluster


class PartitionNemesis(Nemesis):
    """Cut links: isolate one member, isolate the leader, or split a random minority from the
    majority (modes taken in seeded random order; ``modes`` restricts them)."""

    name = "partition"
    MODES = ("isolate-one", "isolate-leader", "majority-minority")

    def __init__(self, modes: Sequence[str] = MODES, name: str = "partition") -> None:
        self.modes = tuple(modes)
        self.name = name  # "partition-leader" records its windows under its own name

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _net(cluster)
        mode = rng.choice(self.modes)
        ms = list(cluster.members)
        if mode == "isolate-leader":
            lead = current_leader(cluster)
            minority = [lead] if lead is not None else [rng.choice(ms)]
        elif mode == "isolate-one":
            minority = [rng.choice(ms)]
        else:
            minority = rng.sample(ms, max(1, (len(ms) - 1) // 2))
        net.partition([minority])
        names = ",".join(m.name for m in minority)
        return self._fault(f"{mode}: {names} | rest", minority, isolated=minority, net=net)

    def heal(self, cluster: Cluster) -> None:
        self._heal_links(cluster)


class BridgeNemesis(Nemesis):
    """Jepsen's bridge: split the members into two halves that share one *bridge* member, which
    keeps its links to both; no half has a majority alone (5 members: 2 | bridge | 2). Needs at
    least 3 members (with 3 it cuts one pair). Cuts go through the link proxy; its limit: peer
    connections it cannot attribute to a sender (etcd's ``/version`` probes and 3.5's lease
    keep-alive forwarding) are refused only when every link into their target is cut, which a
    bridge never does, so those few requests cross the cut."""

    name = "bridge"

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _net(cluster)
        ms = list(cluster.members)
        if len(ms) < 3:
            raise ClusterError("a bridge partition needs at least 3 members")
        rng.shuffle(ms)
        bridge, rest = ms[0], ms[1:]
        half = len(rest) // 2
        a, b = rest[:half], rest[half:]
        net.cut([[x.name, y.name] for x in a for y in b])
        detail = (f"bridge {bridge.name}: {','.join(m.name for m in a)} | "
                  f"{','.join(m.name for m in b)}")
        return self._fault(detail, [*a, *b], net=net)

    def heal(self, cluster: Cluster) -> None:
        self._heal_links(cluster)


class LatencyNemesis(Nemesis):
    """Delay every peer link by ``ms`` ± ``jitter`` milliseconds."""

    name = "latency"

    def __init__(self, ms: float = 100.0, jitter: float = 50.0) -> None:
        self.ms, self.jitter = ms, jitter

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        net = _net(cluster)
        net.latency(self.ms, self.jitter)
        return self._fault(f"latency {self.ms:g}±{self.jitter:g} ms on every peer link",
                           cluster.members, net=net)

    def heal(self, cluster: Cluster) -> None:
        net = _net(cluster)
        if hasattr(net, "take_applied"):  # Toxiproxy: the audited heal
            self._heal_links(cluster)
        else:
            net.latency(0.0, 0.0)


class AdminNemesis(Nemesis):
    """Compact at the current revision minus a seeded offset, then defragment every member."""

    name = "admin"

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        running = [m for m in cluster.members if cluster.is_running(m)]
        st = cluster.status(running[0]) if running else None
        rev = int(st["header"]["revision"]) if st else 0
        target = max(1, rev - rng.randrange(0, 50))
        res = cluster.ctl(command_timeout="10s", timeout=30.0)("compact", str(target))
        details = [f"compact {target}: rc={res.rc}"]
        for m in running:
            d = cluster.ctl([m], command_timeout="30s", timeout=60.0)("defrag")
            details.append(f"defrag {m.name}: rc={d.rc}")
        return self._fault("; ".join(details), running)

    def heal(self, cluster: Cluster) -> None:
        return None


def make_nemeses(names: Sequence[str], latency_ms: float = 100.0,
                 latency_jitter: float = 50.0) -> list[Nemesis]:
    """Nemeses by name (see :data:`NEMESES`); unknown names raise ValueError. ``latency_ms`` ±
    ``latency_jitter`` is the delay of the latency-type nemeses."""
    from jepsen_style import linknemeses

    out: list[Nemesis] = []
    for n in names:
        made = linknemeses.make(n, latency_ms, latency_jitter)
        if made is not None:
            out.append(made)
        elif n == "kill":
            out.append(KillNemesis())
        elif n == "pause":
            out.append(PauseNemesis())
        elif n == "partition":
            out.append(PartitionNemesis())
        elif n == "pause-holder":
            out.append(PauseHolderNemesis())
        elif n == "bridge":
            out.append(BridgeNemesis())
        elif n == "membership":
            from jepsen_style.membership import MembershipNemesis

            out.append(MembershipNemesis())
        elif n == "partition-leader":
            out.append(PartitionNemesis(("isolate-leader",), name="partition-leader"))
        elif n == "latency":
            out.append(LatencyNemesis(latency_ms, latency_jitter))
        elif n == "admin":
            out.append(AdminNemesis())
        elif n == "disk-full":
            from jepsen_style.diskfault import DiskFullNemesis

            out.append(DiskFullNemesis())
        elif n == "failpoint":
            from jepsen_style.failpoint_nemesis import FailpointNemesis

            out.append(FailpointNemesis())
        else:
            raise ValueError(f"unknown nemesis {n!r} (known: {', '.join(NEMESES)})")
    return out


@dataclass
class Schedule:
    """Runs nemeses in windows (see the module docstring)."""

    cluster: Cluster
    nemeses: list[Nemesis]
    seed: int = 0
    quiet_start: float = 10.0
    fault_seconds: float = 6.0
    quiet_seconds: float = 6.0
    final_quiet: float = 8.0
    faults: list[Fault] = field(default_factory=list)
    final_heal: dict[str, Any] = field(default_factory=dict)
    """Audits of the final heal, by nemesis (those whose heal is audited)."""
    isolated: frozenset[str] = frozenset()
    log: Callable[[str], None] = lambda s: None
    targets: Callable[[], Sequence[str]] = list
    """Members a targeted nemesis should hit (from the workload), handed to those nemeses."""

    async def run(self, start: float, deadline: float) -> None:
        """Inject and heal until ``deadline`` (monotonic seconds); always heals at the end."""
        rng = random.Random(f"{self.seed}/nemesis")
        order: list[Nemesis] = []
        for nem in self.nemeses:
            if isinstance(nem, PauseHolderNemesis):
                nem.targets = self.targets
        try:
            if not self.nemeses:
                return
            await _sleep_until(start + self.quiet_start, deadline)
            while time.monotonic() + self.fault_seconds <= deadline - self.final_quiet:
                if not order:
                    order = list(self.nemeses)
                    rng.shuffle(order)
                nem = order.pop()
                try:
                    fault = await asyncio.to_thread(nem.inject, self.cluster, rng)
                except (ClusterError, OSError) as exc:
                    fault = Fault(nem.name, "inject failed", (), time.monotonic(),
                                  error=str(exc)[:500])
                self.faults.append(fault)
                self.isolated = frozenset(fault.isolated)
                self.log(f"nemesis: {fault.detail}")
                await _sleep_until(time.monotonic() + self.fault_seconds, deadline)
                nem.audit = {}
                await asyncio.to_thread(nem.heal, self.cluster)
                self.isolated = frozenset()
                fault.end = time.monotonic()
                fault.healed = dict(nem.audit)
                self.log(f"nemesis: healed {nem.name}")
                await _sleep_until(time.monotonic() + self.quiet_seconds, deadline)
        finally:
            self.isolated = frozenset()
            await asyncio.shield(asyncio.to_thread(self.heal_all))
            for f in self.faults:
                if f.end is None:
                    f.end = time.monotonic()

    def heal_all(self) -> None:
        """The final heal: every nemesis, errors collected and re-raised after all ran."""
        errors: list[str] = []
        for n in self.nemeses:
            n.audit = {}
            try:
                n.heal(self.cluster)
            except (ClusterError, OSError) as exc:
                errors.append(f"{n.name}: {exc}")
            if n.audit:
                self.final_heal[n.name] = dict(n.audit)
        if errors:
            raise ClusterError("final heal failed: " + "; ".join(errors))


async def _sleep_until(when: float, deadline: float) -> None:
    delay = min(when, deadline) - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
