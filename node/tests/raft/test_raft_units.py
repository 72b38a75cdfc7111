"""Unit tests of the Raft core's building blocks: storage, log, unstable, inflights, progress,
quorum, read-only queue, conf changes and the RawNode Ready cycle."""

from __future__ import annotations

import random

import pytest
from petcd.raft import (
    CompactedError,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    StateType,
    UnavailableError,
)
from petcd.raft.confchange import apply_change, restore
from petcd.raft.inflights import Inflights
from petcd.raft.log import RaftLog, RaftLogError
from petcd.raft.progress import Progress, ProgressState
from petcd.raft.quorum import VoteResult, committed_index, vote_result
from petcd.raft.rawnode import Config
from petcd.raft.read_only import ReadOnly
from petcd.raft.storage import NO_LIMIT, SnapshotOutOfDateError, limit_size
from petcd.raft.tracker import ProgressTracker


def ents(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(t, start + i) for i, t in enumerate(terms)]


# --- storage -------------------------------------------------------------------------------
def test_memory_storage_append_truncates_conflicts() -> None:
    st = MemoryStorage()
    st.append(ents(1, 1, 1))
    st.append([Entry(2, 2)])
    assert st.last_index() == 2
    assert st.term(2) == 2
    with pytest.raises(ValueError, match="missing log entry"):
        st.append([Entry(2, 5)])


def test_memory_storage_compact_and_errors() -> None:
    st = MemoryStorage()
    st.append(ents(1, 1, 2, 2))
    st.create_snapshot(3, ConfState((1,)), b"s")
    st.compact(3)
    assert st.first_index() == 4
    assert st.term(3) == 2
    with pytest.raises(CompactedError):
        st.entries(3, 5, NO_LIMIT)
    with pytest.raises(CompactedError):
        st.term(2)
    with pytest.raises(UnavailableError):
        st.term(9)
    with pytest.raises(SnapshotOutOfDateError):
        st.create_snapshot(2, None, b"")
    assert [e.index for e in st.entries(4, 5, NO_LIMIT)] == [4]


def test_limit_size_keeps_at_least_one() -> None:
    es = [Entry(1, i, data=b"x" * 100) for i in range(1, 6)]
    assert len(limit_size(es, 1)) == 1
    assert len(limit_size(es, 250)) == 2
    assert len(limit_size(es, NO_LIMIT)) == 5


# --- log -----------------------------------------------------------------------------------
def new_log(*terms: int) -> RaftLog:
    st = MemoryStorage()
    st.append(ents(*terms))
    return RaftLog(st)


def test_log_find_conflict() -> None:
    log = new_log(1, 2, 3)
    assert log.find_conflict(ents(1, 2, 3)) == 0
    assert log.find_conflict(ents(1, 2, 3, 4)) == 4
    assert log.find_conflict(ents(1, 4, 4)) == 2


def test_log_maybe_append_and_commit() -> None:
    log = new_log(1, 2, 3)
    assert log.maybe_append(3, 2, 3, ents(4)) is None  # term mismatch at 3
    assert log.maybe_append(3, 3, 4, [Entry(4, 4)]) == 4
    assert log.committed == 4
    # Truncating a committed entry is refused.
    with pytest.raises(RaftLogError):
        log.maybe_append(1, 1, 4, [Entry(5, 2)])


def test_log_maybe_append_replaces_conflicting_suffix() -> None:
    log = new_log(1, 1, 1)
    assert log.maybe_append(1, 1, 1, [Entry(2, 2), Entry(2, 3)]) == 3
    assert [e.term for e in log.all_entries()] == [1, 2, 2]
    assert log.unstable.offset == 2


def test_log_only_commits_current_term() -> None:
    log = new_log(1, 1, 2)
    assert not log.maybe_commit(2, 2)  # entry 2 has term 1
    assert log.maybe_commit(3, 2)
    assert log.committed == 3


def test_log_up_to_date_and_conflict_by_term() -> None:
    log = new_log(1, 1, 2, 3, 3)
    assert log.is_up_to_date(5, 3)
    assert log.is_up_to_date(1, 4)
    assert not log.is_up_to_date(4, 3)
    assert not log.is_up_to_date(9, 2)
    assert log.find_conflict_by_term(5, 2) == (3, 2)
    assert log.find_conflict_by_term(5, 1) == (2, 1)
    assert log.find_conflict_by_term(5, 0) == (0, 0)


def test_log_next_ents_and_stable() -> None:
    log = new_log(1, 1)
    log.append([Entry(1, 3), Entry(1, 4)])
    log.commit_to(3)
    assert [e.index for e in log.next_ents()] == [1, 2, 3]
    log.applied_to(3)
    assert log.next_ents() == []
    log.stable_to(4, 1)
    assert log.unstable_entries() == []
    # A stale stable_to (wrong term) is ignored.
    log.append([Entry(2, 5)])
    log.stable_to(5, 1)
    assert len(log.unstable_entries()) == 1


def test_log_term_errors() -> None:
    log = new_log(1, 2)
    with pytest.raises(UnavailableError):
        log.term(3)
    assert log.zero_term(3) == 0
    assert log.term(0) == 0


# --- inflights / progress ------------------------------------------------------------------
def test_inflights_window() -> None:
    inf = Inflights(3)
    for i in (5, 7, 9):
        inf.add(i)
    assert inf.full()
    with pytest.raises(OverflowError):
        inf.add(10)
    inf.free_le(7)
    assert inf.count() == 1 and not inf.full()
    inf.free_le(100)
    assert inf.count() == 0


def test_progress_probe_pauses_until_ack() -> None:
    pr = Progress(0, 5, 4)
    assert not pr.is_paused()
    pr.sent_entries(2, 6)
    assert pr.is_paused()
    assert pr.maybe_update(6)
    assert not pr.is_paused()
    assert pr.next == 7


def test_progress_replicate_window() -> None:
    pr = Progress(3, 4, 2)
    pr.become_replicate()
    pr.sent_entries(1, 4)
    assert pr.next == 5 and not pr.is_paused()
    pr.sent_entries(1, 5)
    assert pr.is_paused()  # window of 2 full
    pr.maybe_update(4)
    pr.inflights.free_le(4)
    assert pr.inflights.count() == 1


def test_progress_decr_to() -> None:
    pr = Progress(0, 10, 4)
    assert not pr.maybe_decr_to(5, 3)  # stale: not the probe we sent (next-1 == 9)
    assert pr.maybe_decr_to(9, 4)
    assert pr.next == 5
    pr.become_replicate()
    pr.match = 4
    assert not pr.maybe_decr_to(3, 0)  # below match: stale
    assert pr.maybe_decr_to(7, 0)
    assert pr.next == 5


def test_progress_snapshot_state() -> None:
    pr = Progress(0, 1, 4)
    pr.become_snapshot(10)
    assert pr.is_paused() and pr.next == 11
    pr.become_probe()
    assert pr.state == ProgressState.StateProbe and pr.next == 11


# --- quorum / tracker ----------------------------------------------------------------------
def test_quorum() -> None:
    assert committed_index({1, 2, 3}, {1: 5, 2: 3, 3: 1}) == 3
    assert committed_index({1, 2, 3, 4}, {1: 5, 2: 3, 3: 1, 4: 9}) == 3
    assert committed_index({1}, {1: 7}) == 7
    assert vote_result({1, 2, 3}, {1: True}) == VoteResult.VotePending
    assert vote_result({1, 2, 3}, {1: True, 2: True}) == VoteResult.VoteWon
    assert vote_result({1, 2, 3}, {1: False, 2: False}) == VoteResult.VoteLost


def test_learners_do_not_count() -> None:
    trk = ProgressTracker(8)
    restore(trk, ConfState((1, 2, 3), (4, 5)), 10)
    for i, m in {1: 10, 2: 1, 3: 1, 4: 10, 5: 10}.items():
        trk.progress[i].match = m
    assert trk.committed() == 1
    for i in (1, 4, 5):
        trk.record_vote(i, True)
    assert trk.tally_votes() == (1, 0, VoteResult.VotePending)


# --- conf changes --------------------------------------------------------------------------
def test_conf_change_add_remove_learner_promote() -> None:
    trk = ProgressTracker(8)
    restore(trk, ConfState((1,)), 5)
    apply_change(trk, ConfChange(ConfChangeType.ConfChangeAddLearnerNode, 2), 5)
    assert trk.conf_state() == ConfState((1,), (2,))
    assert trk.progress[2].is_learner and trk.progress[2].next == 5
    apply_change(trk, ConfChange(ConfChangeType.ConfChangeAddNode, 2), 5)
    assert trk.conf_state() == ConfState((1, 2), ())
    assert not trk.progress[2].is_learner
    apply_change(trk, ConfChange(ConfChangeType.ConfChangeUpdateNode, 2), 5)
    assert trk.conf_state() == ConfState((1, 2), ())
    apply_change(trk, ConfChange(ConfChangeType.ConfChangeRemoveNode, 1), 5)
    assert trk.conf_state() == ConfState((2,), ())
    assert set(trk.progress) == {2}


def test_conf_change_cannot_remove_last_voter() -> None:
    trk = ProgressTracker(8)
    restore(trk, ConfState((1,)), 5)
    with pytest.raises(ValueError, match="removed all voters"):
        apply_change(trk, ConfChange(ConfChangeType.ConfChangeRemoveNode, 1), 5)
    assert trk.conf_state() == ConfState((1,))


def test_conf_change_encoding() -> None:
    cc = ConfChange(ConfChangeType.ConfChangeAddLearnerNode, 2**63 + 5, b"peer-urls")
    assert ConfChange.decode(cc.encode()) == cc
    for bad in (b"", b"\x00" * 8, b"\x09" + b"\x00" * 8):
        with pytest.raises(ValueError):
            ConfChange.decode(bad)


# --- read-only -----------------------------------------------------------------------------
def _req(ctx: bytes) -> Message:
    return Message(MessageType.MsgReadIndex, entries=[Entry(data=ctx)])


def test_read_only_queue_releases_in_order() -> None:
    ro = ReadOnly()
    ro.add_request(5, _req(b"a"))
    ro.add_request(6, _req(b"b"))
    ro.add_request(7, _req(b"a"))  # duplicate context ignored
    assert ro.last_pending_request_ctx() == b"b"
    assert ro.recv_ack(2, b"b") == {2}
    assert ro.recv_ack(2, b"zz") is None
    done = ro.advance(b"b")
    assert [(s.index, s.req.entries[0].data) for s in done] == [(5, b"a"), (6, b"b")]
    assert ro.last_pending_request_ctx() == b""
    assert ro.advance(b"b") == []


# --- RawNode -------------------------------------------------------------------------------
def make_node(id_: int = 1, voters: tuple[int, ...] = (1,), **kw: object) -> RawNode:
    cfg = Config(id=id_, storage=MemoryStorage(ConfState(voters)), rng=random.Random(id_))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return RawNode(cfg)


def drain(n: RawNode) -> None:
    st = n.raft.raft_log.storage
    assert isinstance(st, MemoryStorage)
    while n.has_ready():
        rd = n.ready()
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        assert not rd.messages
        n.advance(rd)


def test_single_node_commits_immediately() -> None:
    n = make_node()
    n.campaign()
    assert n.raft.state == StateType.StateLeader
    n.propose(b"x")
    rd = n.ready()
    assert rd.must_sync
    assert rd.hard_state == HardState(1, 1, 2)
    assert [e.data for e in rd.committed_entries] == [b"", b"x"]
    assert not rd.messages
    n.advance(rd)
    assert not n.has_ready()


def test_ready_is_empty_when_nothing_changed() -> None:
    n = make_node()
    n.campaign()
    drain(n)
    assert not n.has_ready()
    n.tick()
    assert not n.has_ready()


def test_proposal_without_leader_is_dropped() -> None:
    n = make_node(1, (1, 2, 3))
    with pytest.raises(ProposalDroppedError):
        n.propose(b"x")
    n.campaign()  # pre-candidate
    with pytest.raises(ProposalDroppedError):
        n.propose(b"x")


def test_election_timeout_is_randomized_within_bounds() -> None:
    seen = set()
    for seed in range(50):
        cfg = Config(id=1, storage=MemoryStorage(ConfState((1, 2, 3))), rng=random.Random(seed))
        n = RawNode(cfg)
        t = n.raft.randomized_election_timeout
        assert 10 <= t < 20
        seen.add(t)
    assert len(seen) > 5


def test_step_ignores_local_messages_and_unknown_responders() -> None:
    n = make_node(1, (1, 2, 3))
    n.step(Message(MessageType.MsgHup))
    assert n.raft.state == StateType.StateFollower
    n.step(Message(MessageType.MsgAppResp, to=1, frm=9, term=5))
    assert n.raft.term == 0


def test_restart_restores_hard_state() -> None:
    st = MemoryStorage(ConfState((1,)))
    n = RawNode(Config(id=1, storage=st, rng=random.Random(1)))
    n.campaign()
    n.propose(b"a")
    drain(n)
    n2 = RawNode(Config(id=1, storage=st, rng=random.Random(2), applied=0))
    assert n2.raft.term == 1 and n2.raft.vote == 1
    rd = n2.ready()
    assert [e.data for e in rd.committed_entries] == [b"", b"a"]
    assert rd.hard_state is None


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        make_node(election_tick=1, heartbeat_tick=1)
    with pytest.raises(ValueError):
        RawNode(Config(id=0, storage=MemoryStorage(), rng=random.Random(0)))


def test_propose_batch_appends_in_order_as_one_proposal() -> None:
    n = make_node()
    n.campaign()
    drain(n)
    n.propose_batch([b"a", b"b", b"c"])
    rd = n.ready()
    assert [(e.index, e.data) for e in rd.entries] == [(2, b"a"), (3, b"b"), (4, b"c")]
    assert [e.data for e in rd.committed_entries] == [b"a", b"b", b"c"]


def test_propose_batch_sends_one_append_per_follower() -> None:
    n = make_node(1, (1, 2, 3))
    st = n.raft.raft_log.storage
    assert isinstance(st, MemoryStorage)

    def step_all(resp: MessageType) -> None:
        rd = n.ready()
        st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        n.advance(rd)
        for m in rd.messages:
            n.step(Message(resp, to=1, frm=m.to, term=m.term, index=m.index + len(m.entries)))

    n.campaign()
    step_all(MessageType.MsgPreVoteResp)
    step_all(MessageType.MsgVoteResp)
    assert n.raft.state == StateType.StateLeader
    step_all(MessageType.MsgAppResp)  # followers take the empty entry: both now replicate
    n.advance(n.ready())  # the commit broadcast
    n.propose_batch([b"a", b"b", b"c"])
    apps = [m for m in n.ready().messages if m.type == MessageType.MsgApp]
    assert sorted(m.to for m in apps) == [2, 3]
    assert all([e.data for e in m.entries] == [b"a", b"b", b"c"] for m in apps)


def test_propose_batch_without_leader_drops_all() -> None:
    n = make_node(1, (1, 2, 3))
    with pytest.raises(ProposalDroppedError):
        n.propose_batch([b"x", b"y"])
    assert n.raft.raft_log.last_index() == 0
