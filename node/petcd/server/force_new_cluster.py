"""`--force-new-cluster`: restart a member from its data as the only member of its cluster.

This is etcd 3.5's standalone restart (etcdserver `restartAsStandaloneNode`), on petcd's
durable Raft log. Run once on the restart path, before the Raft node is built:

1. the log entries after the commit index are discarded: nobody acknowledged them;
2. the member IDs of the cluster are worked out from the snapshot's conf state plus the
   committed conf-change entries after it (adds and learner adds add, removes remove, updates
   change nothing);
3. conf-change entries are appended at the current term right after the commit index: first
   an add of this member when it is not among them, then a remove of every other member in
   ascending ID order (raft must never be left without a voter);
4. those entries are persisted with the commit index moved past them (force-committed), in
   the same write that drops the uncommitted suffix.

Everything else is kept: the key space, leases, auth, the cluster ID and this member's ID.
When the server starts, it applies the appended entries like any committed conf change, so
the membership, the Raft configuration and the peer transport all shrink to this member, and
the removed IDs are remembered (a removed member that comes back is refused, as in etcd).
The operator then grows the cluster again with `member add` + `--initial-cluster-state
existing`. The flag must be dropped before restarting again once members were added: like
etcd, each restart with it removes every other member anew.

Differences from etcd: learners in the snapshot's conf state are removed too (etcd's
`getIDs` reads only its voters), so the result is always a one-member cluster; when only
uncommitted entries need dropping and there is nobody to remove, an empty entry takes their
place so the discarded suffix is really gone from disk (etcd drops it in memory only).
"""

from __future__ import annotations

from dataclasses import dataclass

from petcd.raft.storage import NO_LIMIT
from petcd.raft.types import ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState
from petcd.storage.raft_log import DurableRaftStorage


@dataclass(frozen=True, slots=True)
class ForcedRestart:
    """What a forced standalone restart did to the log (for the member's log lines)."""

    discarded: int
    """Uncommitted entries dropped from the end of the log."""
    removed: tuple[int, ...]
    """IDs of the other members a remove entry was appended for."""
    commit: int
    """The commit index after the appended entries were force-committed."""


def cluster_member_ids(conf_state: ConfState, entries: list[Entry]) -> list[int]:
    """The member IDs after `entries` (committed, following the snapshot whose membership is
    `conf_state`), sorted ascending.

    Raises ValueError for a conf-change entry that does not decode.
    """
    ids = set(conf_state.voters) | set(conf_state.learners)
    for e in entries:
        if e.type != EntryType.EntryConfChange:
            continue
        cc = ConfChange.decode(e.data)
        if cc.type in (ConfChangeType.ConfChangeAddNode, ConfChangeType.ConfChangeAddLearnerNode):
            ids.add(cc.node_id)
        elif cc.type == ConfChangeType.ConfChangeRemoveNode:
            ids.discard(cc.node_id)
    return sorted(ids)


def standalone_entries(
    ids: list[int], self_id: int, self_context: bytes, term: int, index: int
) -> list[Entry]:
    """The conf-change entries, from `index + 1` on at `term`, that leave `self_id` alone.

    `self_context` is the context of the add entry used when `self_id` is not in `ids`.
    """
    changes: list[ConfChange] = []
    if self_id not in ids:
        changes.append(ConfChange(ConfChangeType.ConfChangeAddNode, self_id, self_context))
    changes.extend(
        ConfChange(ConfChangeType.ConfChangeRemoveNode, i) for i in ids if i != self_id
    )
    return [
        Entry(term=term, index=index + 1 + n, type=EntryType.EntryConfChange, data=cc.encode())
        for n, cc in enumerate(changes)
    ]


def force_standalone(
    storage: DurableRaftStorage, self_id: int, self_context: bytes
) -> ForcedRestart:
    """Rewrite the end of `storage`'s log so that, once applied, `self_id` is the only member.

    Must run before a Raft node reads `storage`. Idempotent in effect: on a log that already
    leaves `self_id` alone with nothing uncommitted, it writes nothing. Raises ValueError for
    an undecodable committed conf change (the log is left untouched then).
    """
    hs, conf_state = storage.initial_state()
    snap_index = storage.snapshot().metadata.index
    last = storage.last_index()
    commit = hs.commit
    lo = max(storage.first_index(), snap_index + 1)
    committed = storage.entries(lo, commit + 1, NO_LIMIT) if commit >= lo else []
    discarded = max(0, last - commit)
    ids = cluster_member_ids(conf_state, committed)
    appended = standalone_entries(ids, self_id, self_context, hs.term, commit)
    if not appended and discarded:
        # Nothing to remove, but the uncommitted suffix must still go: overwrite it with an
        # empty entry (what a new leader appends anyway) so the log ends at a known point.
        appended = [Entry(term=hs.term, index=commit + 1)]
    if appended:
        new_commit = appended[-1].index
        storage.save(HardState(hs.term, hs.vote, new_commit), appended, None, sync=True)
        commit = new_commit
    removed = tuple(
        ConfChange.decode(e.data).node_id
        for e in appended
        if e.type == EntryType.EntryConfChange
        and ConfChange.decode(e.data).type == ConfChangeType.ConfChangeRemoveNode
    )
    return ForcedRestart(discarded=discarded, removed=removed, commit=commit)
