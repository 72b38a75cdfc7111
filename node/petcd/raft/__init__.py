"""Pure Raft consensus core, modelled on etcd-io/raft's RawNode.

Nothing here reads a clock, performs I/O or draws randomness except from the `random.Random`
passed in `Config.rng`. See docs/ARCHITECTURE.md ("Raft core contract").
"""

from .codec import decode_message, encode_message
from .config import Config
from .rawnode import ProgressStatus, RawNode, Status
from .storage import (
    CompactedError,
    MemoryStorage,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailableError,
    Storage,
    UnavailableError,
)
from .types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ProposalDroppedError,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)

__all__ = [
    "NONE",
    "CompactedError",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Config",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "ProgressStatus",
    "ProposalDroppedError",
    "RawNode",
    "ReadState",
    "Ready",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailableError",
    "SoftState",
    "StateType",
    "Status",
    "Storage",
    "UnavailableError",
    "decode_message",
    "encode_message",
]
