"""Configuration of one Raft peer (re-exported by `rawnode`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .storage import NO_LIMIT, Storage
from .types import NONE


@dataclass(slots=True, kw_only=True)
class Config:
    """Parameters of a Raft peer.

    `election_tick` and `heartbeat_tick` count calls to `tick()`; the randomized election
    timeout is drawn from `rng` in [election_tick, 2*election_tick). `applied` is the index the
    application has already applied (from its own snapshot); committed entries after it will be
    returned again. `max_size_per_msg` bounds the bytes of entries in one MsgApp (at least one
    entry is always sent); `max_inflight_msgs` bounds unacknowledged MsgApps per follower.
    `max_committed_size_per_ready` bounds the committed entries returned in one Ready.
    """

    id: int
    storage: Storage
    rng: random.Random
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    max_size_per_msg: int = 1024 * 1024
    max_inflight_msgs: int = 256
    check_quorum: bool = True
    pre_vote: bool = True
    max_committed_size_per_ready: int = NO_LIMIT

    def validate(self) -> None:
        if self.id == NONE:
            raise ValueError("cannot use none as id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")
        if self.max_size_per_msg <= 0:
            raise ValueError("max size per msg must be greater than 0")
