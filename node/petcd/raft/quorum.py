"""Majority quorum arithmetic over a set of voter ids."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import IntEnum


class VoteResult(IntEnum):
    VotePending = 1
    VoteLost = 2
    VoteWon = 3


def committed_index(voters: Collection[int], matches: Mapping[int, int]) -> int:
    """Largest index acknowledged by a majority of `voters` (missing voters count as 0).

    An empty voter set commits everything (returns a huge value), as in etcd, so that joint
    halves compose; callers never have an empty config while leading.
    """
    n = len(voters)
    if n == 0:
        return 1 << 63
    srt = sorted((matches.get(v, 0) for v in voters), reverse=True)
    return srt[n // 2]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """Won if a majority granted, Lost if a majority can no longer be reached."""
    if not voters:
        return VoteResult.VoteWon
    granted = rejected = missing = 0
    for v in voters:
        r = votes.get(v)
        if r is None:
            missing += 1
        elif r:
            granted += 1
        else:
            rejected += 1
    q = len(voters) // 2 + 1
    if granted >= q:
        return VoteResult.VoteWon
    if granted + missing >= q:
        return VoteResult.VotePending
    return VoteResult.VoteLost
