"""Message handling of a leader: proposals, replication flow control, commit, ReadIndex,
check-quorum and leadership transfer.

Invariants: only entries of the leader's own term are committed by counting replicas (earlier
ones commit indirectly); at most one configuration change is pending (proposed, not applied);
a ReadIndex is answered only once an entry of the current term is committed and a quorum has
acknowledged a heartbeat sent after the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .progress import ProgressState
from .quorum import VoteResult, vote_result
from .types import (
    NONE,
    Entry,
    EntryType,
    Message,
    MessageType,
    ProposalDroppedError,
    ReadState,
)

if TYPE_CHECKING:
    from .raft import Raft

MT = MessageType
PS = ProgressState


def step_leader(r: Raft, m: Message) -> None:
    t = m.type
    if t == MT.MsgBeat:
        r.bcast_heartbeat()
        return
    if t == MT.MsgCheckQuorum:
        if not r.trk.quorum_active():
            r.become_follower(r.term, NONE)
        for id_, p in r.trk.progress.items():
            if id_ != r.id:
                p.recent_active = False
        return
    if t == MT.MsgProp:
        _propose(r, m)
        return
    if t == MT.MsgReadIndex:
        _read_index(r, m)
        return

    pr = r.trk.progress.get(m.frm)
    if pr is None:
        return  # not (or no longer) a member
    if t == MT.MsgAppResp:
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of ours whose term is above the follower's hint term.
                next_probe, _ = r.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state == PS.StateReplicate:
                    pr.become_probe()
                r.send_append(m.frm)
            return
        old_paused = pr.is_paused()
        if pr.maybe_update(m.index) or (pr.match == m.index and pr.state == PS.StateProbe):
            if pr.state == PS.StateProbe:
                pr.become_replicate()
            elif pr.state == PS.StateSnapshot and pr.match + 1 >= r.raft_log.first_index():
                # The snapshot (or entries after it) landed; resume normal replication.
                pr.become_probe()
                pr.become_replicate()
            elif pr.state == PS.StateReplicate:
                pr.inflights.free_le(m.index)
            if r.maybe_commit():
                _release_pending_read_index(r)
                r.bcast_append()
            elif old_paused:
                r.send_append(m.frm)
            # Pipeline: keep sending while the window has room and entries remain.
            while r.maybe_send_append(m.frm, False):
                pass
            if m.frm == r.lead_transferee and pr.match == r.raft_log.last_index():
                r.send(Message(MT.MsgTimeoutNow, to=m.frm))
    elif t == MT.MsgHeartbeatResp:
        pr.recent_active = True
        pr.msg_app_flow_paused = False
        if pr.match < r.raft_log.last_index() or pr.state == PS.StateProbe:
            r.send_append(m.frm)
        if not m.context:
            return
        acks = r.read_only.recv_ack(m.frm, m.context)
        if acks is None:
            return
        if vote_result(r.trk.voters, dict.fromkeys(acks, True)) != VoteResult.VoteWon:
            return
        for rs in r.read_only.advance(m.context):
            _respond_read_index(r, rs.req, rs.index)
    elif t == MT.MsgSnapStatus:
        if pr.state != PS.StateSnapshot:
            return
        if m.reject:
            pr.pending_snapshot = 0
        pr.become_probe()
        # Wait for a heartbeat response before probing again, to let the follower settle.
        pr.msg_app_flow_paused = True
    elif t == MT.MsgUnreachable:
        if pr.state == PS.StateReplicate:
            pr.become_probe()
    elif t == MT.MsgTransferLeader:
        _transfer_leader(r, m)


def _propose(r: Raft, m: Message) -> None:
    if not m.entries:
        raise ValueError("stepped empty MsgProp")
    if r.id not in r.trk.progress:
        raise ProposalDroppedError("leader was removed from the configuration")
    if r.lead_transferee != NONE:
        raise ProposalDroppedError("leadership transfer in progress")
    ents = m.entries
    if any(e.type == EntryType.EntryConfChange for e in ents):
        ents = list(ents)  # never mutate the caller's message
        for i, e in enumerate(ents):
            if e.type != EntryType.EntryConfChange:
                continue
            if r.pending_conf_index > r.raft_log.applied:
                # One change at a time: the later one becomes an empty normal entry, keeping
                # the proposal's index so the proposer still sees it "apply" (as a no-op).
                ents[i] = Entry(type=EntryType.EntryNormal)
            else:
                r.pending_conf_index = r.raft_log.last_index() + i + 1
    r.append_entry(ents)
    r.bcast_append()


def _read_index(r: Raft, m: Message) -> None:
    if r.trk.is_singleton():
        _respond_read_index(r, m, r.raft_log.committed)
        return
    if not r.committed_entry_in_current_term():
        # A new leader does not know the commit index until an entry of its term commits.
        r.pending_read_index_msgs.append(m)
        return
    _send_read_index_heartbeats(r, m)


def _send_read_index_heartbeats(r: Raft, m: Message) -> None:
    ctx = m.entries[0].data if m.entries else b""
    r.read_only.add_request(r.raft_log.committed, m)
    r.read_only.recv_ack(r.id, ctx)
    r.bcast_heartbeat(ctx)


def _release_pending_read_index(r: Raft) -> None:
    if not r.pending_read_index_msgs or not r.committed_entry_in_current_term():
        return
    msgs = r.pending_read_index_msgs
    r.pending_read_index_msgs = []
    for m in msgs:
        if r.trk.is_singleton():
            _respond_read_index(r, m, r.raft_log.committed)
        else:
            _send_read_index_heartbeats(r, m)


def _respond_read_index(r: Raft, req: Message, index: int) -> None:
    """Local requests become ReadStates; forwarded ones get a MsgReadIndexResp."""
    if req.frm == NONE or req.frm == r.id:
        ctx = req.entries[0].data if req.entries else b""
        r.read_states.append(ReadState(index, ctx))
        return
    r.send(Message(MT.MsgReadIndexResp, to=req.frm, index=index, entries=req.entries))


def _transfer_leader(r: Raft, m: Message) -> None:
    transferee = m.frm
    pr = r.trk.progress[transferee]
    if pr.is_learner:
        return
    last = r.lead_transferee
    if last != NONE:
        if last == transferee:
            return  # already in progress
        r.lead_transferee = NONE
    if transferee == r.id:
        return  # already leader
    # The transfer must finish within one election timeout or it is aborted.
    r.election_elapsed = 0
    r.lead_transferee = transferee
    if pr.match == r.raft_log.last_index():
        r.send(Message(MT.MsgTimeoutNow, to=transferee))
    else:
        r.send_append(transferee)


__all__ = ["step_leader"]
