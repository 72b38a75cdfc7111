"""Value types of the Raft core: messages, entries, states and the Ready batch.

Numbering of every enum matches etcd's raftpb so logs and dumps read the same. Entries, messages
and snapshots are treated as immutable once handed to the core or returned from it; the core
shares entry objects between its log, storage and Ready batches instead of copying them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

NONE = 0
"""Placeholder node id meaning "no node" (no leader, no vote)."""


class MessageType(IntEnum):
    MsgHup = 0
    MsgBeat = 1
    MsgProp = 2
    MsgApp = 3
    MsgAppResp = 4
    MsgVote = 5
    MsgVoteResp = 6
    MsgSnap = 7
    MsgHeartbeat = 8
    MsgHeartbeatResp = 9
    MsgUnreachable = 10
    MsgSnapStatus = 11
    MsgCheckQuorum = 12
    MsgTransferLeader = 13
    MsgTimeoutNow = 14
    MsgReadIndex = 15
    MsgReadIndexResp = 16
    MsgPreVote = 17
    MsgPreVoteResp = 18


class EntryType(IntEnum):
    EntryNormal = 0
    EntryConfChange = 1


class ConfChangeType(IntEnum):
    ConfChangeAddNode = 0
    ConfChangeRemoveNode = 1
    ConfChangeUpdateNode = 2
    ConfChangeAddLearnerNode = 3


class StateType(IntEnum):
    StateFollower = 0
    StateCandidate = 1
    StateLeader = 2
    StatePreCandidate = 3


@dataclass(slots=True, frozen=True)
class Entry:
    """One log entry. `index` and `term` are assigned by the leader when it appends."""

    term: int = 0
    index: int = 0
    type: EntryType = EntryType.EntryNormal
    data: bytes = b""


@dataclass(slots=True, frozen=True)
class HardState:
    """State that must be on stable storage before messages are sent."""

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == NONE and self.commit == 0


EMPTY_HARD_STATE = HardState()


@dataclass(slots=True, frozen=True)
class ConfState:
    """Membership: voters count toward quorum; learners only receive the log."""

    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


@dataclass(slots=True, frozen=True)
class SnapshotMetadata:
    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(slots=True, frozen=True)
class Snapshot:
    """Application state as of `metadata.index` plus the membership at that index."""

    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)
    data: bytes = b""

    def is_empty(self) -> bool:
        return self.metadata.index == 0


EMPTY_SNAPSHOT = Snapshot()


@dataclass(slots=True, frozen=True)
class Message:
    """A Raft message. `entries` is shared with the sender's log: do not mutate."""

    type: MessageType
    to: int = NONE
    frm: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


_CC_HEADER = struct.Struct(">BQ")


@dataclass(slots=True, frozen=True)
class ConfChange:
    """A single membership change. Encoded into the data of an EntryConfChange entry."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""

    def encode(self) -> bytes:
        return _CC_HEADER.pack(int(self.type), self.node_id) + self.context

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        """Inverse of `encode`. Raises ValueError on anything it did not produce."""
        if len(data) < _CC_HEADER.size:
            raise ValueError("conf change: truncated")
        t, node_id = _CC_HEADER.unpack_from(data)
        try:
            cct = ConfChangeType(t)
        except ValueError:
            raise ValueError(f"conf change: unknown type {t}") from None
        return cls(cct, node_id, bytes(data[_CC_HEADER.size :]))


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state worth reporting; not persisted."""

    lead: int = NONE
    raft_state: StateType = StateType.StateFollower


@dataclass(slots=True, frozen=True)
class ReadState:
    """A linearizable read may be served once the local applied index reaches `index`."""

    index: int
    request_ctx: bytes


@dataclass(slots=True)
class Ready:
    """A batch of work for the driver.

    Contract: persist `hard_state`, `entries` and `snapshot` (one synced write when `must_sync`),
    then send `messages`, then apply `committed_entries`, then call `advance(rd)`.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: list[ReadState] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    must_sync: bool = False


class ProposalDroppedError(Exception):
    """The proposal was not accepted (no leader, leadership transfer, or removed node)."""


def is_local_msg(t: MessageType) -> bool:
    return t in _LOCAL_MSGS


def is_response_msg(t: MessageType) -> bool:
    return t in _RESPONSE_MSGS


def vote_resp_type(t: MessageType) -> MessageType:
    """Response type for a (pre-)vote request type."""
    if t == MessageType.MsgVote:
        return MessageType.MsgVoteResp
    if t == MessageType.MsgPreVote:
        return MessageType.MsgPreVoteResp
    raise ValueError(f"not a vote message: {t!r}")


_LOCAL_MSGS = frozenset(
    {
        MessageType.MsgHup,
        MessageType.MsgBeat,
        MessageType.MsgUnreachable,
        MessageType.MsgSnapStatus,
        MessageType.MsgCheckQuorum,
    }
)
_RESPONSE_MSGS = frozenset(
    {
        MessageType.MsgAppResp,
        MessageType.MsgVoteResp,
        MessageType.MsgHeartbeatResp,
        MessageType.MsgUnreachable,
        MessageType.MsgReadIndexResp,
        MessageType.MsgPreVoteResp,
    }
)
