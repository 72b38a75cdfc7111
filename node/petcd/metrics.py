"""Every Prometheus metric petcd exports, with etcd 3.5's names, types and help texts.

Label names are declared in sorted order, the order Go's client writes them in. Metrics live
in prometheus_client's default registry (which also carries the `process_*` and
`python_*` collectors), rendered by `exposition()` for `/metrics`. Two kinds:

- event metrics (counters, histograms) defined here and updated where the event happens;
- state metrics (leader, indexes, sizes, ...): the server publishes a `ServerState` source
  (`publish_state`, from `petcd.server.server_metrics`), called by `ServerCollector` at scrape
  time, so the values can never drift from the server's own state.

Only one server per process is exported (the last one published); that is the petcd process
model, and tests that run several servers in one process do not scrape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import (
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from petcd import version

T = TypeVar("T")

# etcd (Go client) exports no `_created` series.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What etcd's promhttp answers (prometheus_client's latest names a newer text version)."""

# etcd's disk histograms: 1ms .. ~8s, doubling.
_DISK_BUCKETS = tuple(0.001 * 2**i for i in range(14))
# etcd's peer RTT histogram: 0.1ms .. ~1.6s, doubling.
_RTT_BUCKETS = tuple(0.0001 * 2**i for i in range(15))

WAL_FSYNC_SECONDS = Histogram(
    "etcd_disk_wal_fsync_duration_seconds",
    "The latency distributions of fsync called by WAL.",
    buckets=_DISK_BUCKETS,
)
BACKEND_COMMIT_SECONDS = Histogram(
    "etcd_disk_backend_commit_duration_seconds",
    "The latency distributions of commit called by backend.",
    buckets=_DISK_BUCKETS,
)
DEFRAG_SECONDS = Histogram(
    "etcd_disk_backend_defrag_duration_seconds",
    "The latency distribution of backend defragmentation.",
    buckets=tuple(0.1 * 2**i for i in range(13)),
)
BACKEND_SNAPSHOT_SECONDS = Histogram(
    "etcd_disk_backend_snapshot_duration_seconds",
    "The latency distribution of backend snapshots.",
    buckets=tuple(0.01 * 2**i for i in range(17)),
)
HASH_SECONDS = Histogram(
    "etcd_mvcc_hash_duration_seconds",
    "The latency distribution of storage hash operation.",
    buckets=tuple(0.01 * 2**i for i in range(15)),
)
PEER_RTT_SECONDS = Histogram(
    "etcd_network_peer_round_trip_time_seconds",
    "Round-Trip-Time histogram between peers",
    ["To"],
    buckets=_RTT_BUCKETS,
)
PEER_SENT_BYTES = Counter(
    "etcd_network_peer_sent_bytes", "The total number of bytes sent to peers.", ["To"]
)
PEER_RECEIVED_BYTES = Counter(
    "etcd_network_peer_received_bytes", "The total number of bytes received from peers.", ["From"]
)
PROPOSALS_FAILED = Counter(
    "etcd_server_proposals_failed", "The total number of failed proposals seen."
)
HEALTH_SUCCESS = Counter(
    "etcd_server_health_success", "The total number of successful health checks"
)
HEALTH_FAILURES = Counter("etcd_server_health_failures", "The total number of failed health checks")

GRPC_STARTED = Counter(
    "grpc_server_started",
    "Total number of RPCs started on the server.",
    ["grpc_method", "grpc_service", "grpc_type"],
)
GRPC_HANDLED = Counter(
    "grpc_server_handled",
    "Total number of RPCs completed on the server, regardless of success or failure.",
    ["grpc_code", "grpc_method", "grpc_service", "grpc_type"],
)
GRPC_MSG_RECEIVED = Counter(
    "grpc_server_msg_received",
    "Total number of RPC stream messages received on the server.",
    ["grpc_method", "grpc_service", "grpc_type"],
)
GRPC_MSG_SENT = Counter(
    "grpc_server_msg_sent",
    "Total number of gRPC stream messages sent by the server.",
    ["grpc_method", "grpc_service", "grpc_type"],
)


def timed(hist: Histogram, fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` wrapped to observe its wall time into `hist` (usable from worker threads)."""

    def run(*args: Any, **kwargs: Any) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            hist.observe(time.perf_counter() - t0)

    return run


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Any:
    g = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    g.add_metric(list((labels or {}).values()), value)
    return g


@dataclass(frozen=True, slots=True)
class ServerState:
    """One server's state metrics, as plain values (what the server publishes)."""

    member_id: int
    has_leader: bool
    is_leader: bool
    is_learner: bool
    leader_changes: int
    committed_index: int
    applied_index: int
    pending_proposals: int
    quota_backend_bytes: int
    db_size_bytes: int
    db_size_in_use_bytes: int
    current_revision: int
    compact_revision: int


StateSource = Callable[[], ServerState]


class ServerCollector(Collector):
    """etcd's gauges (and a few counters) from the `ServerState` the published source gives
    at scrape time; this module never reads a server's internals."""

    def __init__(self) -> None:
        self.source: StateSource | None = None

    def collect(self) -> Iterator[Any]:
        if self.source is None:
            return
        st = self.source()
        yield _gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, "
                     "0 is not.", 1 if st.has_leader else 0)
        yield _gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, "
                     "0 otherwise.", 1 if st.is_leader else 0)
        yield _gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if "
                     "is, 0 otherwise.", 1 if st.is_learner else 0)
        changes = CounterMetricFamily(
            "etcd_server_leader_changes_seen", "The number of leader changes seen."
        )
        changes.add_metric([], float(st.leader_changes))
        yield changes
        yield _gauge("etcd_server_proposals_committed_total",
                     "The total number of consensus proposals committed.", st.committed_index)
        yield _gauge("etcd_server_proposals_applied_total",
                     "The total number of consensus proposals applied.", st.applied_index)
        yield _gauge("etcd_server_proposals_pending",
                     "The current number of pending proposals to commit.", st.pending_proposals)
        yield _gauge("etcd_server_id", "Server or member ID in hexadecimal format. 1 for "
                     "'server_id' label with current ID.", 1, {"server_id": f"{st.member_id:x}"})
        yield _gauge("etcd_server_version", "Which version is running. 1 for 'server_version' "
                     "label with current version.", 1, {"server_version": version.SERVER_VERSION})
        yield _gauge("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' "
                     "label with current cluster version", 1, {"cluster_version": version.CLUSTER_MINOR_VERSION})
        yield _gauge("etcd_server_quota_backend_bytes",
                     "Current backend storage quota size in bytes.", st.quota_backend_bytes)
        yield _gauge("etcd_mvcc_db_total_size_in_bytes",
                     "Total size of the underlying database physically allocated in bytes.",
                     st.db_size_bytes)
        yield _gauge("etcd_mvcc_db_total_size_in_use_in_bytes",
                     "Total size of the underlying database logically in use in bytes.",
                     st.db_size_in_use_bytes)
        yield _gauge("etcd_debugging_mvcc_current_revision",
                     "The current revision of store.", st.current_revision)
        yield _gauge("etcd_debugging_mvcc_compact_revision",
                     "The revision of the last compaction in store.", st.compact_revision)


_COLLECTOR = ServerCollector()
REGISTRY.register(_COLLECTOR)


def publish_state(source: StateSource) -> None:
    """Export the state `source()` returns at each scrape from now on (one server per
    process: the last one published)."""
    _COLLECTOR.source = source


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE
