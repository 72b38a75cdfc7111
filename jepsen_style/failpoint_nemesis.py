"""The ``failpoint`` nemesis: etcd's robustness-suite failpoints, armed over gofail's HTTP.

Contract (after etcd's tests/robustness/failpoint, same names and triggers):

* ``prepare(cluster)`` (before the cluster starts; local backend only, else ClusterError) gives
  every member a gofail endpoint on a free loopback port (``PETCD_FAILPOINTS_HTTP``, and
  ``GOFAIL_HTTP`` for a gofail-built etcd) and makes snapshots and multi-batch compactions
  reachable in a short run (``--snapshot-count``, ``PETCD_SNAPSHOT_CATCHUP_ENTRIES``,
  ``--experimental-compaction-batch-limit``);
* ``inject`` picks one entry of `FAILPOINTS` with the run's seeded rng and its target member
  (any, the leader or a follower), arms it and triggers it:
  - ``panic`` points: armed over HTTP, then the trigger (client traffic alone, a compaction at
    the current revision, a defragment); the member must exit (bounded wait);
  - snapshot points (etcd: blackhole until snapshot): the follower is killed, the leader's log
    runs ``SNAPSHOT_GAP`` entries ahead on the workload's traffic (bounded wait), and the
    follower restarts with the point armed from ``PETCD_FAILPOINTS``, to panic taking the
    snapshot;
  - ``sleep`` points (etcd's gofailSleepAndDeactivate): ``sleep("1s")`` armed for the window;
    ``beforeApplyOneConfChange`` is triggered by a member change (a learner added, then
    removed);
* ``heal`` disarms what is still armed, restarts a member that exited (on its data, without
  the point) and waits until the cluster is healthy; the fault's detail (``nemesis.json``)
  records the point, terms, target, trigger, whether it fired (exit code, or the endpoint's
  count) and the restart.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from harness import gofail, ports
from harness.cluster import Cluster, ClusterError, Member
from harness.local import LocalCluster
from jepsen_style.nemesis import Fault, Nemesis, current_leader

SNAPSHOT_COUNT = 100
CATCHUP_ENTRIES = 10
COMPACTION_BATCH_LIMIT = 10
SNAPSHOT_GAP = SNAPSHOT_COUNT + CATCHUP_ENTRIES + 20
EXIT_WAIT = 15.0
GAP_WAIT = 20.0
HEALTHY_WAIT = 60.0
SLEEP = 'sleep("1s")'
FAILPOINTS_ENV = "PETCD_FAILPOINTS"


@dataclass(frozen=True, slots=True)
class Point:
    name: str
    terms: str  # "panic" or SLEEP
    trigger: str  # "traffic", "compact", "defrag", "snapshot", "member-change"
    target: str  # "any", "leader", "follower"


def _panic(name: str, trigger: str = "traffic", target: str = "any") -> Point:
    return Point(name, "panic", trigger, target)


FAILPOINTS: tuple[Point, ...] = (
    _panic("defragBeforeCopy", "defrag"), _panic("defragBeforeRename", "defrag"),
    _panic("beforeCommit"), _panic("afterCommit"),
    _panic("raftBeforeSave"), _panic("raftAfterSave"),
    _panic("beforeStartDBTxn"), _panic("afterStartDBTxn"),
    _panic("beforeWritebackBuf"), _panic("afterWritebackBuf"),
    _panic("compactBeforeCommitScheduledCompact", "compact"),
    _panic("compactAfterCommitScheduledCompact", "compact"),
    _panic("compactBeforeSetFinishedCompact", "compact"),
    _panic("compactAfterSetFinishedCompact", "compact"),
    _panic("compactBeforeCommitBatch", "compact"), _panic("compactAfterCommitBatch", "compact"),
    _panic("raftBeforeLeaderSend", target="leader"),
    _panic("raftBeforeFollowerSend", target="follower"),
    _panic("raftBeforeApplySnap", "snapshot", "follower"),
    _panic("raftAfterApplySnap", "snapshot", "follower"),
    _panic("raftAfterWALRelease", "snapshot", "follower"),
    _panic("raftBeforeSaveSnap", "snapshot", "follower"),
    _panic("raftAfterSaveSnap", "snapshot", "follower"),
    _panic("applyBeforeOpenSnapshot", "snapshot", "follower"),
    Point("beforeApplyOneConfChange", SLEEP, "member-change", "any"),
    Point("raftBeforeSave", SLEEP, "traffic", "any"),
    Point("raftAfterSave", SLEEP, "traffic", "any"),
    Point("beforeSendWatchResponse", SLEEP, "traffic", "any"),
    Point("beforeSyncWatchers", SLEEP, "traffic", "any"),
)  # fmt: skip
"""etcd's robustness list (failpoint.go's allFailpoints) minus the non-gofail faults."""


class FailpointNemesis(Nemesis):
    name = "failpoint"

    def __init__(self, points: tuple[Point, ...] = FAILPOINTS) -> None:
        self.points = points
        self.addr: dict[str, str] = {}
        self.armed: tuple[Member, Point] | None = None
        self.fault: Fault | None = None

    # -- setup --------------------------------------------------------------------------------

    def _local(self, cluster: Cluster) -> LocalCluster:
        if not isinstance(cluster, LocalCluster):
            raise ClusterError(f"failpoint needs the local backend (per-member environment), "
                               f"not {type(cluster).__name__}")
        return cluster

    def prepare(self, cluster: Cluster) -> None:
        local = self._local(cluster)
        local.extra_args = (*local.extra_args, f"--snapshot-count={SNAPSHOT_COUNT}",
                            f"--experimental-compaction-batch-limit={COMPACTION_BATCH_LIMIT}")
        for m in local.members:
            addr = f"127.0.0.1:{ports.free_port()}"
            self.addr[m.name] = addr
            local.member_env.setdefault(m.name, {}).update({
                gofail.ENV: addr, "GOFAIL_HTTP": addr,
                "PETCD_SNAPSHOT_CATCHUP_ENTRIES": str(CATCHUP_ENTRIES),
            })

    # -- inject -------------------------------------------------------------------------------

    def _target(self, cluster: Cluster, rng: random.Random, target: str) -> tuple[Member, str]:
        running = [m for m in cluster.members if cluster.is_running(m)]
        if len(running) < len(cluster.members):
            raise ClusterError("a member is down: failpoints need the whole cluster")
        lead = current_leader(cluster)
        if target == "any" or lead is None:
            m = rng.choice(running)
            return m, "leader" if lead is not None and m.name == lead.name else "follower"
        if target == "leader":
            return lead, "leader"
        return rng.choice([m for m in running if m.name != lead.name]), "follower"

    def inject(self, cluster: Cluster, rng: random.Random) -> Fault:
        local = self._local(cluster)
        if self.armed is not None:
            raise ClusterError(f"{self.armed[1].name} is still armed on {self.armed[0].name}")
        point = rng.choice(self.points)
        m, role = self._target(local, rng, point.target)
        addr = self.addr[m.name]
        self.armed = (m, point)
        detail = f"{point.name}={point.terms} on {m.name} ({role}), trigger {point.trigger}"
        self.fault = self._fault(detail, [m])
        if point.trigger == "snapshot":
            self.fault.detail += self._snapshot(local, m, point)
        else:
            gofail.arm(addr, point.name, point.terms)
            self.fault.detail += self._trigger(local, m, point)
            if point.terms == "panic":
                self.fault.detail += self._wait_exit(local, m)
        return self.fault

    def _trigger(self, cluster: LocalCluster, m: Member, point: Point) -> str:
        ctl = cluster.ctl([m], command_timeout="5s", timeout=15.0)
        if point.trigger == "defrag":
            return f"; defrag rc={ctl('defrag').rc}"
        if point.trigger == "compact":
            st = cluster.status(m)
            rev = int(st["header"]["revision"]) if st else 0
            return f"; compact {rev} rc={ctl('compact', str(rev)).rc}" if rev > 1 else ""
        if point.trigger == "member-change":
            res = ctl("member", "add", "failpoint-learner", "--learner",
                      "--peer-urls=http://127.0.0.1:1", "-w", "json")
            if res.rc != 0:
                return f"; member add failed rc={res.rc}"
            mid = format(int(res.json()["member"]["ID"]), "x")
            rm = ctl("member", "remove", mid)
            return f"; learner {mid} added, removed rc={rm.rc}"
        return ""

    def _wait_exit(self, cluster: LocalCluster, m: Member) -> str:
        deadline = time.monotonic() + EXIT_WAIT
        while cluster.is_running(m) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the process, bounded by EXIT_WAIT
        if cluster.is_running(m):
            return "; did not fire yet"
        return f"; {m.name} exited rc={_exit_code(cluster, m)}"

    def _snapshot(self, cluster: LocalCluster, m: Member, point: Point) -> str:
        lead = current_leader(cluster)
        if lead is None:
            raise ClusterError("no leader to send a snapshot")
        st = cluster.status(m)
        start = int(st["raftIndex"]) if st else 0
        cluster.kill(m)
        deadline = time.monotonic() + GAP_WAIT
        index = start
        while index < start + SNAPSHOT_GAP and time.monotonic() < deadline:
            time.sleep(0.2)  # the workload's traffic moves the leader's log; bounded
            lst = cluster.status(lead)
            index = int(lst["raftIndex"]) if lst else index
        cluster.member_env[m.name][FAILPOINTS_ENV] = f"{point.name}={point.terms}"
        try:
            cluster.start_member(m)
            return f"; killed, leader log +{index - start}, restarted armed" + \
                self._wait_exit(cluster, m)
        finally:
            del cluster.member_env[m.name][FAILPOINTS_ENV]

    # -- heal ---------------------------------------------------------------------------------

    def heal(self, cluster: Cluster) -> None:
        if self.armed is None:
            return
        local = self._local(cluster)
        m, point = self.armed
        note = ""
        if local.is_running(m):
            try:
                fired = gofail.count(self.addr[m.name], point.name)
                gofail.disarm(self.addr[m.name], point.name)
                note = f"; fired {fired}x, disarmed"
            except gofail.GofailError as exc:  # armed from the environment, or not at all
                note = f"; {exc}"
            except OSError as exc:
                note = f"; endpoint unreachable: {exc}"
        else:
            log = local.log_path(m).read_text(errors="replace")
            panicked = f"panic: failpoint panic: {point.name}" in log
            note = (f"; {m.name} restarted (exit rc={_exit_code(local, m)}"
                    f"{', failpoint panic in its log' if panicked else ''})")
            local._reap(m)
            local.start_member(m)
        self.armed = None
        local.wait_healthy(HEALTHY_WAIT)
        learn = getattr(local, "learn_ids", None)
        if learn is not None:
            learn()
        if self.fault is not None:
            self.fault.detail += note


def _exit_code(local: LocalCluster, m: Member) -> int | None:
    proc = local._procs.get(m.name)  # the exit status of a child the cluster started
    return None if proc is None or proc.popen is None else proc.popen.poll()
