"""The membership-churn nemesis: remove a member, later re-add it with a fresh data dir.

Contract:

* ``inject`` removes one running member that is not the leader (when there is a choice) with
  ``member remove`` sent to the others, then stops it and drops it from the cluster handle; at
  most one member is out at a time, so a 3-member cluster keeps a 2-member quorum;
* ``heal`` re-adds every removed member under its old name and URLs (``member add``, retried for
  up to ``ADD_TIMEOUT`` seconds), deletes its old data dir first (a removed member's data must
  never rejoin), starts it with ``--initial-cluster-state existing``, waits until the cluster is
  healthy and, behind the link proxy, teaches the proxy the new member id. The cluster heals to
  its original size; the final heal of the schedule runs ``heal`` too;
* on the Docker backend (a cluster with ``replace_member``) the member is *replaced in place*
  instead: ``inject`` removes it, deletes its container and data volume, re-adds it under the
  same name and peer URL and starts a fresh container with an empty volume joining as an
  existing member (``harness.docker_replace``, every bootstrap); the window's ``applied``
  records member, old id and new id. ``heal`` waits until the new id is a started voter and
  the member has caught up with the leader's revision (the window's ``healed`` says so);
* other backends without a data dir get a ClusterError.

Keeping the URLs means clients bound to the member reconnect by themselves once it is back, and
the link proxy keeps fronting its peer port.
"""

from __future__ import annotations

import random
import re
import shutil
import time
from typing import Any

from harness.cluster import Cluster, ClusterError, Member
from jepsen_style.nemesis import Fault, Nemesis, current_leader

ADD_TIMEOUT = 20.0
HEALTHY_TIMEOUT = 40.0
RETRY_PAUSE = 0.5
_INITIAL = re.compile(r'ETCD_INITIAL_CLUSTER="([^"]+)"')


def member_id(cluster: Cluster, member: Member, among: list[Member]) -> int:
    """The cluster's id for ``member`` (matched by peer URL) from ``member list``."""
    res = cluster.ctl(among, command_timeout="3s", timeout=10.0)("member", "list", "-w", "json")
    if res.rc != 0:
        raise ClusterError(f"member list failed: {res}")
    for m in res.json().get("members", []):
        if member.peer_url in (m.get("peerURLs") or []):
            return int(m["ID"])
    raise ClusterError(f"{member.name} is not in the member list")


class MembershipNemesis(Nemesis):
    """Remove one member; the heal re-adds it fresh (see the module docstring)."""

    name = "membership"

    def __init__(self) -> None:
        self.removed: list[Member] = []
        self.replaced: list[tuple[Member, int]] = []  # Docker: (member, new id) to wait for

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        if hasattr(cluster, "replace_member"):
            return self._replace(cluster, rng)
        if not hasattr(cluster, "data_dir"):
            raise ClusterError(f"{type(cluster).__name__}: membership churn needs the local "
                               "backend (a fresh data dir per re-added member)")
        if self.removed:
            raise ClusterError(f"{self.removed[0].name} is still removed")
        running = [m for m in cluster.members if cluster.is_running(m)]
        leader = current_leader(cluster)
        choices = [m for m in running if leader is None or m.name != leader.name] or running
        if len(running) < 3 or not choices:
            raise ClusterError("membership churn needs at least 3 running members")
        victim = rng.choice(choices)
        others = [m for m in running if m.name != victim.name]
        mid = member_id(cluster, victim, others)
        res = cluster.ctl(others, command_timeout="5s", timeout=15.0)(
            "member", "remove", format(mid, "x"))
        if res.rc != 0:
            raise ClusterError(f"member remove {victim.name}: {res}")
        self.removed.append(victim)
        cluster.forget(victim)
        return self._fault(f"remove {victim.name} (id {mid:x})", [victim])

    def _replace(self, cluster: Cluster, rng: random.Random) -> Fault:
        if self.replaced:
            raise ClusterError(f"{self.replaced[0][0].name} is still catching up")
        running = [m for m in cluster.members if cluster.is_running(m)]
        leader = current_leader(cluster)
        choices = [m for m in running if leader is None or m.name != leader.name] or running
        if len(running) < 3:
            raise ClusterError("replacing a member needs at least 3 running members")
        victim = rng.choice(choices)
        rec: dict[str, Any] = cluster.replace_member(victim)  # type: ignore[attr-defined]
        self.replaced.append((victim, int(rec["new_id"], 16)))
        fault = self._fault(f"replace {victim.name}: id {rec['old_id']} -> {rec['new_id']}, "
                            "fresh container and volume", [victim])
        fault.applied = [rec]
        return fault

    def heal(self, cluster: Cluster) -> None:
        if self.replaced:
            from harness.docker_replace import wait_caught_up

            done = []
            while self.replaced:
                m, new_id = self.replaced[0]
                done.append(wait_caught_up(cluster, m, new_id))  # type: ignore[arg-type]
                self.replaced.pop(0)
            self.audit = {"caught_up": done, "clean": True}
        while self.removed:
            m = self.removed[-1]
            self._readd(cluster, m)
            self.removed.pop()

    def _readd(self, cluster: Cluster, m: Member) -> None:
        local: Any = cluster  # inject() checked it is a local-process cluster
        shutil.rmtree(local.data_dir(m), ignore_errors=True)
        deadline = time.monotonic() + ADD_TIMEOUT
        while True:
            res = cluster.ctl(command_timeout="5s", timeout=15.0)(
                "member", "add", m.name, f"--peer-urls={m.peer_url}")
            found = _INITIAL.search(res.stdout) if res.rc == 0 else None
            if found is not None:
                break
            if time.monotonic() >= deadline:
                raise ClusterError(f"member add {m.name} failed for {ADD_TIMEOUT}s: {res}")
            time.sleep(RETRY_PAUSE)  # e.g. "unhealthy cluster" right after a fault: retry
        cluster.join(m, found.group(1))
        cluster.wait_healthy(HEALTHY_TIMEOUT)
        learn = getattr(cluster, "learn_ids", None)
        if learn is not None:
            learn()
