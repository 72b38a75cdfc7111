"""RawNode: the driver-facing API of one Raft peer (etcd's RawNode, synchronous Ready flow).

Usage contract, per Ready: `rd = ready()`; persist rd.hard_state, rd.entries and rd.snapshot
(one synced write if rd.must_sync); send rd.messages; apply rd.committed_entries (calling
`apply_conf_change` for EntryConfChange entries); then `advance(rd)`. Do not call `ready()`
again before `advance()` of the previous Ready. Messages addressed to this node itself are
never emitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import Config
from .progress import ProgressState
from .raft import Raft
from .types import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ProposalDroppedError,
    Ready,
    SoftState,
    StateType,
    is_local_msg,
    is_response_msg,
)

MT = MessageType

__all__ = ["Config", "ProgressStatus", "ProposalDroppedError", "RawNode", "Status"]


@dataclass(slots=True, frozen=True)
class ProgressStatus:
    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool
    paused: bool
    inflight: int


@dataclass(slots=True, frozen=True)
class Status:
    """A snapshot of the peer's state; `progress` is only filled on the leader."""

    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    lead_transferee: int
    conf_state: ConfState
    progress: dict[int, ProgressStatus] = field(default_factory=dict)


class RawNode:
    __slots__ = ("_prev_hard", "_prev_lead", "_prev_state", "raft")

    def __init__(self, config: Config) -> None:
        self.raft = Raft(config)
        self._prev_lead = self.raft.lead
        self._prev_state = self.raft.state
        self._prev_hard = self.raft.hard_state()

    # --- inputs ----------------------------------------------------------------------------
    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (pre-vote first if enabled)."""
        self.raft.step(Message(MT.MsgHup))

    def propose(self, data: bytes) -> None:
        """Propose `data`; raises ProposalDroppedError if there is no leader to take it."""
        self.raft.step(Message(MT.MsgProp, frm=self.raft.id, entries=[Entry(data=data)]))

    def propose_batch(self, datas: Sequence[bytes]) -> None:
        """Propose every item of `datas` as one MsgProp (consecutive entries, in order).

        All or nothing: raises ProposalDroppedError if there is no leader to take them. One
        MsgProp means one MsgApp per follower and one MsgAppResp back instead of one per
        proposal, which is what makes batching worth it.
        """
        ents = [Entry(data=d) for d in datas]
        self.raft.step(Message(MT.MsgProp, frm=self.raft.id, entries=ents))

    def propose_conf_change(self, cc: ConfChange) -> None:
        e = Entry(type=EntryType.EntryConfChange, data=cc.encode())
        self.raft.step(Message(MT.MsgProp, frm=self.raft.id, entries=[e]))

    def step(self, m: Message) -> None:
        """Step a message received from a peer. Local-only message types, responses from
        non-members and proposals that cannot be forwarded are dropped silently."""
        if is_local_msg(m.type):
            return
        if is_response_msg(m.type) and m.frm not in self.raft.trk.progress:
            return
        try:
            self.raft.step(m)
        except ProposalDroppedError:
            pass

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Make a committed ConfChange take effect; returns the resulting membership."""
        return self.raft.apply_conf_change(cc)

    def read_index(self, ctx: bytes) -> None:
        """Request a linearizable read point; it arrives as a ReadState with `ctx` in a later
        Ready. Dropped silently if there is no leader (the caller should time out and retry)."""
        self.raft.step(Message(MT.MsgReadIndex, entries=[Entry(data=ctx)]))

    def transfer_leader(self, to: int) -> None:
        self.raft.step(Message(MT.MsgTransferLeader, frm=to))

    def report_unreachable(self, id_: int) -> None:
        self.raft.step(Message(MT.MsgUnreachable, frm=id_))

    def report_snapshot(self, id_: int, failure: bool) -> None:
        self.raft.step(Message(MT.MsgSnapStatus, frm=id_, reject=failure))

    # --- outputs ---------------------------------------------------------------------------
    def has_ready(self) -> bool:
        r = self.raft
        log = r.raft_log
        if r.msgs or log.unstable.entries or r.read_states:
            return True
        if r.lead != self._prev_lead or r.state != self._prev_state:
            return True
        ph = self._prev_hard
        if r.term != ph.term or r.vote != ph.vote or log.committed != ph.commit:
            return True
        return log.unstable.snapshot is not None or log.has_next_ents()

    def ready(self) -> Ready:
        r = self.raft
        log = r.raft_log
        rd = Ready(
            entries=list(log.unstable.entries),
            committed_entries=log.next_ents(),
            messages=r.msgs,
        )
        r.msgs = []
        if r.lead != self._prev_lead or r.state != self._prev_state:
            rd.soft_state = SoftState(r.lead, r.state)
            self._prev_lead = r.lead
            self._prev_state = r.state
        ph = self._prev_hard
        if r.term != ph.term or r.vote != ph.vote or log.committed != ph.commit:
            rd.hard_state = HardState(r.term, r.vote, log.committed)
            rd.must_sync = r.term != ph.term or r.vote != ph.vote
        if rd.entries:
            rd.must_sync = True
        if log.unstable.snapshot is not None:
            rd.snapshot = log.unstable.snapshot
            rd.must_sync = True
        if r.read_states:
            rd.read_states = r.read_states
            r.read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver has persisted, sent and applied everything in `rd`."""
        log = self.raft.raft_log
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.committed_entries:
            log.applied_to(rd.committed_entries[-1].index)
        elif rd.snapshot is not None:
            log.applied_to(rd.snapshot.metadata.index)
        if rd.entries:
            last = rd.entries[-1]
            log.stable_to(last.index, last.term)
        if rd.snapshot is not None:
            log.stable_snap_to(rd.snapshot.metadata.index)

    def status(self) -> Status:
        r = self.raft
        prs: dict[int, ProgressStatus] = {}
        if r.state == StateType.StateLeader:
            for id_, pr in sorted(r.trk.progress.items()):
                prs[id_] = ProgressStatus(
                    pr.match,
                    pr.next,
                    pr.state,
                    pr.is_learner,
                    pr.recent_active,
                    pr.is_paused(),
                    pr.inflights.count(),
                )
        return Status(
            r.id,
            r.hard_state(),
            r.soft_state(),
            r.raft_log.applied,
            r.lead_transferee,
            r.trk.conf_state(),
            prs,
        )
