"""The Raft state machine of one peer (etcd's `raft` struct): elections, terms and votes,
follower/candidate message handling and the plumbing the leader logic in `leader.py` uses.

Everything is driven by `step(m)` and `tick()`; outgoing messages accumulate in `msgs` and are
handed to the driver by RawNode.ready(). Safety invariants upheld here:
- at most one vote per term (`vote` is only set when `vote` is NONE or already the candidate,
  and is persisted through HardState before the vote response leaves, by the Ready contract);
- a vote is granted only to a candidate whose log is at least as up to date as ours;
- with check_quorum, a peer that heard from a leader within the election timeout ignores
  (pre-)vote requests of higher terms (leader lease), unless the election is a leader transfer.
"""

from __future__ import annotations

from dataclasses import replace

from .confchange import ConfChangeError, apply_change
from .confchange import restore as restore_tracker
from .config import Config
from .leader import step_leader
from .log import RaftLog
from .progress import Progress, ProgressState
from .quorum import VoteResult
from .read_only import ReadOnly
from .storage import NO_LIMIT, CompactedError, SnapshotTemporarilyUnavailableError, UnavailableError
from .tracker import ProgressTracker
from .types import (
    NONE,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ProposalDroppedError,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
    vote_resp_type,
)

MT = MessageType
_VOTE_TYPES = frozenset({MT.MsgVote, MT.MsgVoteResp, MT.MsgPreVote, MT.MsgPreVoteResp})

CAMPAIGN_PRE_ELECTION = b"CampaignPreElection"
CAMPAIGN_ELECTION = b"CampaignElection"
CAMPAIGN_TRANSFER = b"CampaignTransfer"


class Raft:
    __slots__ = (
        "check_quorum",
        "election_elapsed",
        "election_timeout",
        "heartbeat_elapsed",
        "heartbeat_timeout",
        "id",
        "is_learner",
        "lead",
        "lead_transferee",
        "max_msg_size",
        "msgs",
        "pending_conf_index",
        "pending_read_index_msgs",
        "pre_vote",
        "raft_log",
        "randomized_election_timeout",
        "read_only",
        "read_states",
        "rng",
        "state",
        "term",
        "trk",
        "vote",
    )

    def __init__(self, c: Config) -> None:
        c.validate()
        self.id = c.id
        self.raft_log = RaftLog(c.storage, c.max_committed_size_per_ready)
        hs, cs = c.storage.initial_state()
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.StateFollower
        self.is_learner = False
        self.trk = ProgressTracker(c.max_inflight_msgs)
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.read_only = ReadOnly()
        self.pending_read_index_msgs: list[Message] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.check_quorum = c.check_quorum
        self.pre_vote = c.pre_vote
        self.heartbeat_timeout = c.heartbeat_tick
        self.election_timeout = c.election_tick
        self.randomized_election_timeout = c.election_tick
        self.max_msg_size = c.max_size_per_msg
        self.rng = c.rng
        restore_tracker(self.trk, cs, self.raft_log.last_index())
        self.is_learner = self.id in self.trk.learners
        if not hs.is_empty():
            self._load_state(hs)
        if c.applied > 0:
            self.raft_log.applied_to(c.applied)
        self.become_follower(self.term, NONE)

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.raft_log.committed or hs.commit > self.raft_log.last_index():
            raise ValueError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{self.raft_log.committed}, {self.raft_log.last_index()}]"
            )
        self.raft_log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    # --- views ---------------------------------------------------------------------------
    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.state)

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.raft_log.committed)

    def promotable(self) -> bool:
        """May this peer campaign? Voters only, and not while a snapshot is pending."""
        pr = self.trk.progress.get(self.id)
        return pr is not None and not pr.is_learner and not self.raft_log.has_pending_snapshot()

    def committed_entry_in_current_term(self) -> bool:
        return self.raft_log.zero_term(self.raft_log.committed) == self.term

    # --- sending -------------------------------------------------------------------------
    def send(self, m: Message) -> None:
        """Queue `m` for the driver, stamping sender and (for non-vote messages) our term
        (on a copy: messages are frozen)."""
        t = m.type
        frm = self.id if m.frm == NONE else m.frm
        term = m.term
        if t in _VOTE_TYPES:
            if term == 0:
                # Vote messages carry the term they are for, which may not be ours.
                raise AssertionError(f"term should be set when sending {t.name}")
        else:
            if term != 0:
                raise AssertionError(f"term should not be set when sending {t.name}")
            if t != MT.MsgProp and t != MT.MsgReadIndex:
                term = self.term
        if m.to == self.id:
            raise AssertionError(f"{self.id} sending {t.name} to itself")
        if frm != m.frm or term != m.term:
            # One positional copy: this runs for every outgoing message, and
            # dataclasses.replace (once per stamped field) cost several times more.
            m = Message(t, m.to, frm, term, m.log_term, m.index, m.entries, m.commit,
                        m.snapshot, m.reject, m.reject_hint, m.context)
        self.msgs.append(m)

    def maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send the next MsgApp (or MsgSnap) to `to` if flow control allows."""
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        log = self.raft_log
        prev = pr.next - 1
        try:
            prev_term = log.term(prev)
            if pr.state == ProgressState.StateReplicate and pr.inflights.full():
                # Window full: only an empty probe, so that lost MsgApps cannot stall us.
                ents: list[Entry] = []
            else:
                ents = log.entries(pr.next, self.max_msg_size)
        except (CompactedError, UnavailableError):
            return self._maybe_send_snapshot(to)
        if not ents and not send_if_empty:
            return False
        self.send(
            Message(
                MT.MsgApp,
                to=to,
                index=prev,
                log_term=prev_term,
                entries=ents,
                commit=log.committed,
            )
        )
        pr.sent_entries(len(ents), ents[-1].index if ents else 0)
        return True

    def _maybe_send_snapshot(self, to: int) -> bool:
        pr = self.trk.progress[to]
        if not pr.recent_active:
            return False
        try:
            snap = self.raft_log.snapshot()
        except SnapshotTemporarilyUnavailableError:
            return False
        if snap.is_empty():
            raise AssertionError("need non-empty snapshot")
        pr.become_snapshot(snap.metadata.index)
        self.send(Message(MT.MsgSnap, to=to, snapshot=snap))
        return True

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, True)

    def bcast_append(self) -> None:
        for id_ in sorted(self.trk.progress):
            if id_ != self.id:
                self.maybe_send_append(id_, True)

    def send_heartbeat(self, to: int, ctx: bytes) -> None:
        # Never tell a follower to commit beyond what it is known to have.
        commit = min(self.trk.progress[to].match, self.raft_log.committed)
        self.send(Message(MT.MsgHeartbeat, to=to, commit=commit, context=ctx))

    def bcast_heartbeat(self, ctx: bytes | None = None) -> None:
        if ctx is None:
            ctx = self.read_only.last_pending_request_ctx()
        for id_ in sorted(self.trk.progress):
            if id_ != self.id:
                self.send_heartbeat(id_, ctx)

    # --- state transitions ---------------------------------------------------------------
    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.lead_transferee = NONE
        self.trk.reset_votes()
        last = self.raft_log.last_index()
        prs = self.trk.progress
        for id_, old in prs.items():
            pr = Progress(0, last + 1, self.trk.max_inflight, old.is_learner)
            if id_ == self.id:
                pr.match = last
                pr.recent_active = True
            prs[id_] = pr
        self.pending_conf_index = 0
        self.read_only = ReadOnly()

    def reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(
            self.election_timeout
        )

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def become_follower(self, term: int, lead: int) -> None:
        self.reset(term)
        self.lead = lead
        self.state = StateType.StateFollower

    def become_candidate(self) -> None:
        if self.state == StateType.StateLeader:
            raise AssertionError("invalid transition [leader -> candidate]")
        self.reset(self.term + 1)
        self.vote = self.id
        self.state = StateType.StateCandidate

    def become_pre_candidate(self) -> None:
        if self.state == StateType.StateLeader:
            raise AssertionError("invalid transition [leader -> pre-candidate]")
        # Neither term nor vote change: a pre-election must not disturb anyone.
        self.trk.reset_votes()
        self.lead = NONE
        self.state = StateType.StatePreCandidate

    def become_leader(self) -> None:
        if self.state == StateType.StateFollower:
            raise AssertionError("invalid transition [follower -> leader]")
        self.reset(self.term)
        self.lead = self.id
        self.state = StateType.StateLeader
        self.trk.progress[self.id].become_replicate()
        # Conf changes proposed by earlier leaders may be uncommitted in our log; treat all of
        # them as pending so no second change is accepted until they apply.
        self.pending_conf_index = self.raft_log.last_index()
        # An entry of our own term lets earlier entries commit and enables read index.
        self.append_entry([Entry()])

    def append_entry(self, es: list[Entry]) -> None:
        """Assign term/index to fresh copies of `es`, append them and count our own ack."""
        li = self.raft_log.last_index()
        term = self.term
        new = [Entry(term, li + 1 + i, e.type, e.data) for i, e in enumerate(es)]
        li = self.raft_log.append(new)
        self.trk.progress[self.id].maybe_update(li)
        self.maybe_commit()

    def maybe_commit(self) -> bool:
        return self.raft_log.maybe_commit(self.trk.committed(), self.term)

    # --- elections -----------------------------------------------------------------------
    def hup(self, kind: bytes) -> None:
        if self.state == StateType.StateLeader or not self.promotable():
            return
        log = self.raft_log
        if log.committed > log.applied:
            ents = log.slice(log.applied + 1, log.committed + 1, NO_LIMIT)
            if any(e.type == EntryType.EntryConfChange for e in ents):
                # Our membership may be about to change; wait until it is applied.
                return
        self.campaign(kind)

    def campaign(self, kind: bytes) -> None:
        if not self.promotable():
            return
        if kind == CAMPAIGN_PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.MsgPreVote
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.MsgVote
            term = self.term
        if self.poll(self.id, vote_resp_type(vote_msg), True) == VoteResult.VoteWon:
            # Single-voter cluster: we won outright.
            if kind == CAMPAIGN_PRE_ELECTION:
                self.campaign(CAMPAIGN_ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if kind == CAMPAIGN_TRANSFER else b""
        li = self.raft_log.last_index()
        lt = self.raft_log.last_term()
        for id_ in sorted(self.trk.voters):
            if id_ == self.id:
                continue
            self.send(
                Message(vote_msg, to=id_, term=term, log_term=lt, index=li, context=ctx)
            )

    def poll(self, id_: int, t: MessageType, granted: bool) -> VoteResult:
        self.trk.record_vote(id_, granted)
        return self.trk.tally_votes()[2]

    def can_vote(self, m: Message) -> bool:
        """Whether our vote is free for (or already cast for) m's sender."""
        return (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type == MT.MsgPreVote and m.term > self.term)
        )

    # --- the step function ---------------------------------------------------------------
    def step(self, m: Message) -> None:
        """Process one message. Raises ProposalDroppedError for undeliverable proposals.

        `m` is not mutated; forwarded messages are copies.
        """
        t = m.type
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if t == MT.MsgVote or t == MT.MsgPreVote:
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.election_timeout
                )
                if not force and in_lease:
                    return  # leader lease: we heard from a live leader recently
            if t == MT.MsgPreVote or (t == MT.MsgPreVoteResp and not m.reject):
                pass  # pre-votes never change our term
            elif t in (MT.MsgApp, MT.MsgHeartbeat, MT.MsgSnap):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and t in (MT.MsgHeartbeat, MT.MsgApp):
                # A stale leader (e.g. after a partition) learns of the newer term and steps
                # down; otherwise it could keep us, via pre-vote or lease, from electing.
                self.send(Message(MT.MsgAppResp, to=m.frm))
            elif t == MT.MsgPreVote:
                self.send(
                    Message(MT.MsgPreVoteResp, to=m.frm, term=self.term, reject=True)
                )
            return

        if t == MT.MsgHup:
            self.hup(CAMPAIGN_PRE_ELECTION if self.pre_vote else CAMPAIGN_ELECTION)
        elif t == MT.MsgVote or t == MT.MsgPreVote:
            if self.can_vote(m) and self.raft_log.is_up_to_date(m.index, m.log_term):
                # Respond with the term from the message: for a pre-vote it is the future term
                # the candidate will use, for a vote it equals ours by now.
                self.send(Message(vote_resp_type(t), to=m.frm, term=m.term))
                if t == MT.MsgVote:
                    self.election_elapsed = 0
                    self.vote = m.frm
            else:
                self.send(Message(vote_resp_type(t), to=m.frm, term=self.term, reject=True))
        elif self.state == StateType.StateLeader:
            step_leader(self, m)
        elif self.state == StateType.StateFollower:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        my_resp = (
            MT.MsgPreVoteResp if self.state == StateType.StatePreCandidate else MT.MsgVoteResp
        )
        if t == MT.MsgProp:
            raise ProposalDroppedError("no leader")
        if t == MT.MsgApp:
            self.become_follower(m.term, m.frm)
            self.handle_append_entries(m)
        elif t == MT.MsgHeartbeat:
            self.become_follower(m.term, m.frm)
            self.handle_heartbeat(m)
        elif t == MT.MsgSnap:
            self.become_follower(m.term, m.frm)
            self.handle_snapshot(m)
        elif t == my_resp:
            res = self.poll(m.frm, t, not m.reject)
            if res == VoteResult.VoteWon:
                if self.state == StateType.StatePreCandidate:
                    self.campaign(CAMPAIGN_ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res == VoteResult.VoteLost:
                # Pre-vote lost: back to follower at the same term; a (pre-)vote rejection
                # with a higher term was already handled in step().
                self.become_follower(self.term, NONE)

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MT.MsgProp:
            if self.lead == NONE:
                raise ProposalDroppedError("no leader")
            self.send(replace(m, to=self.lead))
        elif t == MT.MsgApp:
            self.election_elapsed = 0
            self.lead = m.frm
            self.handle_append_entries(m)
        elif t == MT.MsgHeartbeat:
            self.election_elapsed = 0
            self.lead = m.frm
            self.handle_heartbeat(m)
        elif t == MT.MsgSnap:
            self.election_elapsed = 0
            self.lead = m.frm
            self.handle_snapshot(m)
        elif t == MT.MsgTransferLeader:
            if self.lead != NONE:
                self.send(replace(m, to=self.lead, term=0))
        elif t == MT.MsgTimeoutNow:
            # The leader asked us to take over: campaign now, skipping pre-vote.
            self.hup(CAMPAIGN_TRANSFER)
        elif t == MT.MsgReadIndex:
            if self.lead != NONE:
                self.send(replace(m, to=self.lead))
        elif t == MT.MsgReadIndexResp and len(m.entries) == 1:
            self.read_states.append(ReadState(m.index, m.entries[0].data))

    # --- follower handlers ---------------------------------------------------------------
    def handle_append_entries(self, m: Message) -> None:
        log = self.raft_log
        if m.index < log.committed:
            self.send(Message(MT.MsgAppResp, to=m.frm, index=log.committed))
            return
        lastnew = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if lastnew is not None:
            self.send(Message(MT.MsgAppResp, to=m.frm, index=lastnew))
            return
        # Reject with a hint: the largest index whose term is <= m.log_term lets the leader
        # skip a whole term of conflicting entries per round trip.
        hint_index, hint_term = log.find_conflict_by_term(
            min(m.index, log.last_index()), m.log_term
        )
        self.send(
            Message(
                MT.MsgAppResp,
                to=m.frm,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=hint_term,
            )
        )

    def handle_heartbeat(self, m: Message) -> None:
        self.raft_log.commit_to(m.commit)
        self.send(Message(MT.MsgHeartbeatResp, to=m.frm, context=m.context))

    def handle_snapshot(self, m: Message) -> None:
        if m.snapshot is not None and self.restore(m.snapshot):
            self.send(Message(MT.MsgAppResp, to=m.frm, index=self.raft_log.last_index()))
        else:
            self.send(Message(MT.MsgAppResp, to=m.frm, index=self.raft_log.committed))

    def restore(self, s: Snapshot) -> bool:
        """Install `s` if it is newer than our commit point. Returns whether it was installed."""
        md = s.metadata
        if md.index <= self.raft_log.committed:
            return False
        if self.state != StateType.StateFollower:
            # Only a leader of our term sends snapshots, so we should be its follower.
            self.become_follower(self.term + 1, NONE)
            return False
        cs = md.conf_state
        if self.id not in cs.voters and self.id not in cs.learners:
            return False  # we are not in that configuration; ignore it
        if self.raft_log.match_term(md.index, md.term):
            # We already have the snapshot's last entry: just fast-forward the commit.
            self.raft_log.commit_to(md.index)
            return False
        self.raft_log.restore(s)
        restore_tracker(self.trk, cs, self.raft_log.last_index())
        self._switch_to_config()
        pr = self.trk.progress[self.id]
        pr.maybe_update(pr.next - 1)
        return True

    # --- membership ----------------------------------------------------------------------
    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed change. An invalid change (e.g. removing the last voter) is a
        no-op on every peer alike, so it never diverges or crashes the cluster."""
        try:
            apply_change(self.trk, cc, self.raft_log.last_index())
        except ConfChangeError:
            return self.trk.conf_state()
        cs = self._switch_to_config()
        if cc.node_id == self.lead != self.id and self.lead not in self.trk.voters:
            # This change removed (or demoted) our leader: it leads no more. Forget it, so
            # proposals are refused ("no leader") and the server waits for the next leader,
            # instead of forwarding them to a member that is leaving, where they are lost.
            self.lead = NONE
        return cs

    def _switch_to_config(self) -> ConfState:
        cs = self.trk.conf_state()
        pr = self.trk.progress.get(self.id)
        self.is_learner = pr is not None and pr.is_learner
        if (pr is None or self.is_learner) and self.state == StateType.StateLeader:
            # Removed or demoted: stop leading; the rest will elect a new leader.
            self.become_follower(self.term, NONE)
            return cs
        if self.state != StateType.StateLeader or not cs.voters:
            return cs
        if self.maybe_commit():
            self.bcast_append()
        else:
            for id_ in sorted(self.trk.progress):
                if id_ != self.id:
                    self.maybe_send_append(id_, False)
        if self.lead_transferee != NONE and self.lead_transferee not in self.trk.voters:
            self.lead_transferee = NONE
        return cs

    # --- ticks ---------------------------------------------------------------------------
    def tick(self) -> None:
        if self.state == StateType.StateLeader:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(MT.MsgHup, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(MT.MsgCheckQuorum, frm=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.state == StateType.StateLeader and self.lead_transferee != NONE:
                self.lead_transferee = NONE
        if self.state != StateType.StateLeader:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(MT.MsgBeat, frm=self.id))
