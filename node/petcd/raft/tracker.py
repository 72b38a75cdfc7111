"""Membership configuration plus per-peer Progress and election votes (etcd's tracker).

Invariants: `progress` has exactly the ids in `voters | learners`; `voters` and `learners` are
disjoint. Only voters count for commit and elections.
"""

from __future__ import annotations

from collections.abc import Callable

from .progress import Progress
from .quorum import VoteResult, committed_index, vote_result
from .types import ConfState


class ProgressTracker:
    __slots__ = ("learners", "max_inflight", "progress", "voters", "votes")

    def __init__(self, max_inflight: int) -> None:
        self.voters: set[int] = set()
        self.learners: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.max_inflight = max_inflight

    def conf_state(self) -> ConfState:
        return ConfState(tuple(sorted(self.voters)), tuple(sorted(self.learners)))

    def is_singleton(self) -> bool:
        return len(self.voters) == 1

    def committed(self) -> int:
        prs = self.progress
        return committed_index(self.voters, {v: prs[v].match for v in self.voters})

    def visit(self, f: Callable[[int, Progress], None]) -> None:
        """Call f for every peer in ascending id order (deterministic message order)."""
        for i in sorted(self.progress):
            f(i, self.progress[i])

    def quorum_active(self) -> bool:
        """Whether a majority of voters has been recently active (for check-quorum)."""
        prs = self.progress
        votes = {v: prs[v].recent_active for v in self.voters}
        return vote_result(self.voters, votes) == VoteResult.VoteWon

    def voter_nodes(self) -> list[int]:
        return sorted(self.voters)

    def learner_nodes(self) -> list[int]:
        return sorted(self.learners)

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, id_: int, granted: bool) -> None:
        self.votes.setdefault(id_, granted)

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        granted = rejected = 0
        for id_ in self.progress:
            v = self.votes.get(id_)
            if v is None or id_ in self.learners:
                continue
            if v:
                granted += 1
            else:
                rejected += 1
        return granted, rejected, vote_result(self.voters, self.votes)
