"""A leader that removes itself: the remaining voters elect at once and serve proposals.

Regression: the removed leader stepped down silently and its followers kept it as their
leader (until an election timeout, then until the next leader's first message), forwarding
proposals to it, where they were lost (the server-level symptom: `put` right after
`member remove` of the leader timed out).
"""

from __future__ import annotations

import random

import pytest
from petcd.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    EntryType,
    MemoryStorage,
    Message,
    ProposalDroppedError,
    RawNode,
    StateType,
)
from petcd.raft.rawnode import Config

NONE = 0


def _cluster(ids: tuple[int, ...]) -> dict[int, RawNode]:
    nodes = {}
    for id_ in ids:
        cfg = Config(id=id_, storage=MemoryStorage(ConfState(ids)), rng=random.Random(id_))
        nodes[id_] = RawNode(cfg)
    return nodes


def _run(nodes: dict[int, RawNode]) -> None:
    """Process Readies and deliver messages (no ticks) until nothing is left to do;
    committed conf changes are applied as a server would."""
    queue: list[Message] = []
    for _ in range(1000):
        for n in nodes.values():
            while n.has_ready():
                rd = n.ready()
                st = n.raft.raft_log.storage
                assert isinstance(st, MemoryStorage)
                st.append(rd.entries)
                if rd.hard_state is not None:
                    st.set_hard_state(rd.hard_state)
                queue.extend(rd.messages)
                for e in rd.committed_entries:
                    if e.type == EntryType.EntryConfChange:
                        n.apply_conf_change(ConfChange.decode(e.data))
                n.advance(rd)
        if not queue:
            return
        batch, queue = queue, []
        for m in batch:
            nodes[m.to].step(m)
    raise AssertionError("the cluster did not settle")


def _remove_leader() -> dict[int, RawNode]:
    nodes = _cluster((1, 2, 3))
    nodes[1].campaign()
    _run(nodes)
    assert nodes[1].raft.state == StateType.StateLeader
    nodes[1].propose_conf_change(ConfChange(ConfChangeType.ConfChangeRemoveNode, 1))
    return nodes


def test_follower_forgets_its_removed_leader() -> None:
    nodes = _remove_leader()
    _run(nodes)
    assert nodes[1].raft.state == StateType.StateFollower
    for i in (2, 3):
        assert nodes[i].status().conf_state == ConfState((2, 3))
        assert nodes[i].raft.lead == NONE
        assert nodes[i].status().soft_state.lead == NONE  # the server sees "no leader"
        with pytest.raises(ProposalDroppedError):
            nodes[i].propose(b"lost")  # refused, not forwarded to node 1


def test_remaining_voters_elect_and_commit_after_leader_removal() -> None:
    nodes = _remove_leader()
    _run(nodes)
    for _ in range(100):
        if any(nodes[i].raft.state == StateType.StateLeader for i in (2, 3)):
            break
        for i in (2, 3):
            nodes[i].tick()
        _run(nodes)
    leaders = [i for i in (2, 3) if nodes[i].raft.state == StateType.StateLeader]
    assert len(leaders) == 1
    other = 5 - leaders[0]
    assert nodes[other].raft.lead == leaders[0]
    nodes[other].propose(b"after-removal")  # forwarded to the new leader
    _run(nodes)
    for i in (2, 3):
        log = nodes[i].raft.raft_log
        assert log.slice(log.committed, log.committed + 1, 1 << 30)[0].data == b"after-removal"
