"""The leader's view of one follower's log (etcd's tracker.Progress).

States: Probe (send one MsgApp at a time until the match point is found), Replicate (stream
optimistically, bounded by the inflights window) and Snapshot (wait for a snapshot to land).
Invariant: `match < next`.
"""

from __future__ import annotations

from enum import IntEnum

from .inflights import Inflights


class ProgressState(IntEnum):
    StateProbe = 0
    StateReplicate = 1
    StateSnapshot = 2


class Progress:
    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "msg_app_flow_paused",
        "next",
        "pending_snapshot",
        "recent_active",
        "state",
    )

    def __init__(
        self, match: int, next_: int, max_inflight: int, is_learner: bool = False
    ) -> None:
        self.match = match
        self.next = next_
        self.state = ProgressState.StateProbe
        self.pending_snapshot = 0
        self.recent_active = False
        self.msg_app_flow_paused = False
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def reset_state(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state == ProgressState.StateSnapshot:
            pending = self.pending_snapshot
            self.reset_state(ProgressState.StateProbe)
            self.next = max(self.match + 1, pending + 1)
        else:
            self.reset_state(ProgressState.StateProbe)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self.reset_state(ProgressState.StateReplicate)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self.reset_state(ProgressState.StateSnapshot)
        self.pending_snapshot = snapshot_index
        self.next = snapshot_index + 1

    def sent_entries(self, n: int, last_index: int) -> None:
        """Account for a MsgApp carrying `n` entries ending at `last_index` just sent."""
        if self.state == ProgressState.StateReplicate:
            if n > 0:
                self.next = last_index + 1
                self.inflights.add(last_index)
            self.msg_app_flow_paused = self.inflights.full()
        elif self.state == ProgressState.StateProbe:
            # One probe at a time; unpaused by a response or the next heartbeat response.
            self.msg_app_flow_paused = True

    def maybe_update(self, n: int) -> bool:
        """The follower acknowledged index n. Returns whether match advanced."""
        if self.match >= n:
            return False
        self.match = n
        self.next = max(self.next, n + 1)
        self.msg_app_flow_paused = False
        return True

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected MsgApp at index `rejected`; back off. False if stale."""
        if self.state == ProgressState.StateReplicate:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def is_paused(self) -> bool:
        if self.state == ProgressState.StateSnapshot:
            return True
        return self.msg_app_flow_paused

    def __repr__(self) -> str:
        s = f"{self.state.name} match={self.match} next={self.next}"
        if self.is_learner:
            s += " learner"
        if self.is_paused():
            s += " paused"
        if self.pending_snapshot:
            s += f" pendingSnap={self.pending_snapshot}"
        if not self.recent_active:
            s += " inactive"
        if self.inflights.count():
            s += f" inflight={self.inflights.count()}"
            if self.inflights.full():
                s += "[full]"
        return s
