"""The server side of the state metrics: `install(server)` (an `assembly.INSTALLERS` entry)
publishes the server's `metrics.ServerState` source; metric names stay in `petcd.metrics`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from petcd import metrics

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer


def state_of(s: EtcdServer) -> metrics.ServerState:
    """`s`'s state metrics now (called at scrape time)."""
    st = s.driver.status()
    me = s.membership.members.get(s.id)
    return metrics.ServerState(
        member_id=s.id,
        has_leader=s.leader_id != 0,
        is_leader=s.leader_id == s.id,
        is_learner=me is not None and me.is_learner,
        leader_changes=s.leader_changes,
        committed_index=st.hard_state.commit,
        applied_index=s.applied_index,
        pending_proposals=len(s.wait),
        quota_backend_bytes=s.alarms.quota_bytes if s.alarms is not None else 0,
        db_size_bytes=s.backend.size_bytes(),
        db_size_in_use_bytes=s.backend.size_in_use_bytes(),
        current_revision=s.store.rev,
        compact_revision=s.store.compact_rev,
    )


def install(server: EtcdServer) -> None:
    """Export `server`'s state metrics from now on."""
    metrics.publish_state(lambda: state_of(server))
