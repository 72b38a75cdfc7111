"""Every bucket of the backend and every well-known key, declared once.

LevelDB has a single sorted keyspace, so a bucket is a one-byte prefix. Bucket ids follow etcd's
`server/mvcc/buckets` numbering where etcd has the bucket; the Raft log buckets are petcd's own
(etcd keeps its log in a WAL). A prefix is a single byte so no bucket's range can contain
another bucket's keys, whatever the names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named key range. Keys in the bucket are stored as `prefix + key`."""

    id: int
    name: bytes

    @property
    def prefix(self) -> bytes:
        return bytes((self.id,))

    @property
    def upper(self) -> bytes:
        """First LevelDB key after every key of this bucket."""
        return bytes((self.id + 1,))

    def __str__(self) -> str:
        return self.name.decode()


KEY = Bucket(1, b"key")
META = Bucket(2, b"meta")
LEASE = Bucket(3, b"lease")
ALARM = Bucket(4, b"alarm")
CLUSTER = Bucket(5, b"cluster")
MEMBERS = Bucket(10, b"members")
MEMBERS_REMOVED = Bucket(11, b"members_removed")
AUTH = Bucket(20, b"auth")
AUTH_USERS = Bucket(21, b"authUsers")
AUTH_ROLES = Bucket(22, b"authRoles")
V2STORE = Bucket(30, b"v2store")
RAFT_ENTRIES = Bucket(40, b"raft_entries")
"""Raft log entries keyed by 8-byte big-endian index."""
RAFT_STATE = Bucket(41, b"raft_state")
"""Hard state, snapshot and log offset of the durable Raft log (see RAFT_* keys)."""
TEST = Bucket(100, b"test")

ALL: tuple[Bucket, ...] = (
    KEY,
    META,
    LEASE,
    ALARM,
    CLUSTER,
    MEMBERS,
    MEMBERS_REMOVED,
    AUTH,
    AUTH_USERS,
    AUTH_ROLES,
    V2STORE,
    RAFT_ENTRIES,
    RAFT_STATE,
    TEST,
)
BY_ID: dict[int, Bucket] = {b.id: b for b in ALL}
BY_NAME: dict[bytes, Bucket] = {b.name: b for b in ALL}

# --- well-known keys in META (names as etcd's) ------------------------------------------------
META_CONSISTENT_INDEX = b"consistent_index"
"""Raft index of the last entry applied to the backend; 8-byte big-endian."""
META_TERM = b"term"
"""Raft term of the entry at consistent_index; 8-byte big-endian."""
META_SCHEDULED_COMPACT_REV = b"scheduledCompactRev"
"""17-byte revision of the compaction requested last (written before it runs)."""
META_FINISHED_COMPACT_REV = b"finishedCompactRev"
"""17-byte revision of the compaction finished last."""
META_STORAGE_VERSION = b"storageVersion"

# --- well-known keys in RAFT_STATE ---------------------------------------------------------------
RAFT_HARD_STATE = b"hardstate"
RAFT_SNAPSHOT_META = b"snapshot_meta"
RAFT_SNAPSHOT_DATA = b"snapshot_data"
RAFT_LOG_OFFSET = b"log_offset"
"""Index and term of the entry just before the first stored one (the compaction point)."""
