"""Opening a member's data dir: restart from it, or bootstrap a new or joining member.

Layout under --data-dir: `member/kv` (the state-machine LevelDB) and `member/wal` (the Raft
log LevelDB, or --wal-dir when given). A data dir that already has a Raft log is restarted
from and the --initial-cluster* flags are ignored, as etcd does; with --force-new-cluster the
restart first rewrites the log so the member comes back alone (`force_new_cluster`).

On every restart the Raft configuration is made to match the applied membership before the
Raft node is built (`_sync_conf_state`): the node starts from the applied index and is not
handed the conf changes applied since the last snapshot again, so without this a member added
since then would be unknown to a restarted member's Raft (etcd replays those entries instead).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from petcd import errors, ids
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.config import Config, ConfigError, verify_bootstrap, verify_join_existing
from petcd.discovery.bootstrap import resolve_initial_cluster
from petcd.logutil import Logger
from petcd.raft.types import ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState
from petcd.server.force_new_cluster import force_standalone
from petcd.server.membership import Member, Membership
from petcd.storage import buckets
from petcd.storage.backend import Backend
from petcd.storage.raft_log import DurableRaftStorage
from petcd.tlsutil import peer_dial_context
from petcd.transport.http import fetch_members


@dataclass(slots=True)
class Opened:
    member_id: int
    backend: Backend
    raft_storage: DurableRaftStorage
    membership: Membership
    restarted: bool


def _paths(cfg: Config) -> tuple[Path, Path]:
    data = Path(cfg.data_dir)
    kv = data / "member" / "kv"
    wal = Path(cfg.wal_dir) if cfg.wal_dir else data / "member" / "wal"
    return kv, wal


def has_data(cfg: Config) -> bool:
    kv, wal = _paths(cfg)
    return (wal / "CURRENT").exists() and (kv / "CURRENT").exists()


def _own_id(cfg: Config, members: list[Member]) -> int:
    mine = set(cfg.initial_advertise_peer_urls)
    for m in members:
        if mine & set(m.peer_urls):
            return m.id
    raise ConfigError(errors.BOOT_NO_MATCHING_PEER.format(urls=','.join(sorted(mine))))


async def open_member(cfg: Config, logger: Logger | None = None) -> Opened:
    """Open the data dir, bootstrapping it first when it is empty.

    `logger` receives the restart path's notices (a forced standalone restart).
    """
    touch_data_dir(cfg.data_dir)
    kv_path, wal_path = _paths(cfg)
    if has_data(cfg):
        backend = Backend(kv_path)
        storage = DurableRaftStorage(wal_path)
        try:
            _finish_snapshot_apply(backend, storage, logger)
            membership = Membership(backend)
            mid = _id_from_backend(cfg, membership)
            if cfg.force_new_cluster:
                _force_new_cluster(cfg, storage, membership, mid, logger)
            _sync_conf_state(storage, membership, _applied_index(backend))
        except BaseException:
            storage.close()
            backend.close()
            raise
        return Opened(mid, backend, storage, membership, True)
    if cfg.initial_cluster_state == "existing":
        return await _join_existing(cfg, kv_path, wal_path)
    # --discovery / --discovery-srv: learn the initial cluster first, then bootstrap statically.
    cfg = await resolve_initial_cluster(cfg)
    return _bootstrap_new(cfg, kv_path, wal_path)


def go_os_error(op: str, exc: OSError) -> str:
    """An OSError as Go's *PathError prints it: `mkdir /d: read-only file system`."""
    return f"{op} {exc.filename}: {(exc.strerror or str(exc)).lower()}"


def touch_data_dir(data_dir: str) -> None:
    """etcd's `fileutil.TouchDirAll`: create the data dir and prove it writable, else
    ConfigError "cannot access data directory: ..." (logged as etcd's one fatal line)."""
    try:
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            errors.BOOT_DATA_DIR.format(error=go_os_error('mkdir', exc))
        ) from None
    touch = os.path.join(data_dir, ".touch")
    try:
        with open(touch, "wb"):
            pass
        os.remove(touch)
    except OSError as exc:
        raise ConfigError(
            errors.BOOT_DATA_DIR.format(error=go_os_error('open', exc))
        ) from None


def _identity_path(cfg: Config) -> Path:
    # Outside the state-machine LevelDB on purpose: a snapshot from the leader replaces that
    # database wholesale, and must not replace who this member is.
    return Path(cfg.data_dir) / "member" / "identity.json"


def _applied_index(backend: Backend) -> int:
    raw = backend.get(buckets.META, buckets.META_CONSISTENT_INDEX)
    return int.from_bytes(raw, "big") if raw else 0


def _finish_snapshot_apply(
    backend: Backend, storage: DurableRaftStorage, logger: Logger | None
) -> None:
    """Apply a received snapshot the log saved but the state machine never got (the member
    stopped between the two): without it the log starts past the backend's applied index."""
    snap = storage.snapshot()
    applied = _applied_index(backend)
    if snap.data and snap.metadata.index > applied:
        if logger is not None:
            logger.info(
                "applying the saved snapshot the backend is missing",
                **{"snapshot-index": snap.metadata.index, "applied-index": applied},
            )
        backend.restore_from_bytes(snap.data)


def _sync_conf_state(storage: DurableRaftStorage, membership: Membership, applied: int) -> None:
    """Record the applied membership as the Raft configuration at the applied index.

    The membership in the backend is the conf state after every conf change up to `applied`
    (both change in the same batch). An empty-data snapshot record at `applied` (what the
    server's own periodic snapshots are: the data is taken from the backend when one is sent)
    makes the Raft node start from that configuration. Nothing is written when the stored
    snapshot is already at or past `applied` or already has this configuration.
    """
    snap = storage.snapshot().metadata
    if applied <= snap.index or applied > storage.last_index():
        return
    voters = membership.voters()
    learners = sorted(i for i, m in membership.members.items() if m.is_learner)
    if not voters:
        return  # a joining member that has not learned its cluster yet: leave raft's view
    current = snap.conf_state
    if set(current.voters) == set(voters) and set(current.learners) == set(learners):
        return
    storage.create_snapshot(applied, ConfState(tuple(voters), tuple(learners)), b"")


def _force_new_cluster(
    cfg: Config,
    storage: DurableRaftStorage,
    membership: Membership,
    mid: int,
    logger: Logger | None,
) -> None:
    """--force-new-cluster on a restart: leave this member alone in its cluster (see
    `force_new_cluster`), logging what etcd logs."""
    if mid in membership.removed:
        raise ConfigError(errors.BOOT_FORCE_NEW_REMOVED.format(id=ids.format_id(mid)))
    me = membership.members.get(mid)
    ctx = ipb.MemberRecord(
        ID=mid,
        peer_urls=me.peer_urls if me else list(cfg.initial_advertise_peer_urls),
        name=cfg.name,
    ).SerializeToString()
    commit_before = storage.hard_state.commit
    try:
        forced = force_standalone(storage, mid, ctx)
    except ValueError as exc:
        raise ConfigError(errors.BOOT_FORCE_NEW_UNREADABLE.format(error=exc)) from None
    if logger is None:
        return
    if forced.discarded:
        logger.info(
            "discarding uncommitted WAL entries",
            **{
                "entry-index": commit_before + 1,
                "commit-index-from-wal": commit_before,
                "number-of-discarded-entries": forced.discarded,
            },
        )
    logger.info(
        "forcing restart member",
        **{
            "cluster-id": ids.format_id(membership.cluster_id),
            "local-member-id": ids.format_id(mid),
            "commit-index": forced.commit,
            "removed-member-ids": [ids.format_id(i) for i in forced.removed],
        },
    )


def _id_from_backend(cfg: Config, membership: Membership) -> int:
    try:
        doc = json.loads(_identity_path(cfg).read_text())
        return int(doc["member_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            errors.BOOT_NO_LOCAL_ID.format(data_dir=cfg.data_dir, error=exc)
        ) from None


def _record_local(
    cfg: Config, backend: Backend, membership: Membership, mid: int, cid: int, members: list[Member]
) -> None:
    path = _identity_path(cfg)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump({"member_id": mid, "cluster_id": cid, "name": cfg.name}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with backend.batch(sync=True) as batch:
        membership.set_cluster_id(cid, batch)
        for m in members:
            membership.add(m, batch)


def _bootstrap_new(cfg: Config, kv_path: Path, wal_path: Path) -> Opened:
    cluster = verify_bootstrap(cfg)
    id_by_name = ids.initial_member_ids(cluster, cfg.initial_cluster_token)
    members = [Member(id_by_name[n], list(urls), name=n) for n, urls in cluster.items()]
    members.sort(key=lambda m: m.id)
    mid = id_by_name[cfg.name]
    cid = ids.cluster_id(m.id for m in members)
    os.makedirs(kv_path, exist_ok=True)
    backend = Backend(kv_path)
    membership = Membership(backend)
    _record_local(cfg, backend, membership, mid, cid, members)
    voters = tuple(m.id for m in members)
    storage = DurableRaftStorage(wal_path, conf_state=ConfState(voters=voters))
    # As etcd-io/raft's Bootstrap: the initial members are conf-change entries 1..n of term 1,
    # already committed, so every member's log starts out identical.
    entries = [
        Entry(
            term=1,
            index=i + 1,
            type=EntryType.EntryConfChange,
            data=ConfChange(
                ConfChangeType.ConfChangeAddNode,
                m.id,
                ipb.MemberRecord(ID=m.id, peer_urls=m.peer_urls, name=m.name).SerializeToString(),
            ).encode(),
        )
        for i, m in enumerate(members)
    ]
    storage.save(HardState(term=1, vote=0, commit=len(entries)), entries, None, True)
    return Opened(mid, backend, storage, membership, False)


async def _join_existing(cfg: Config, kv_path: Path, wal_path: Path) -> Opened:
    cluster = verify_join_existing(cfg)
    peer_urls = [u for name, urls in cluster.items() if name != cfg.name for u in urls]
    cid, infos = await fetch_members(peer_urls, tls=peer_dial_context(cfg))
    members = [
        Member(
            int(i["id"]),
            list(i["peerURLs"]),
            name=str(i.get("name", "")),
            client_urls=list(i.get("clientURLs", [])),
            is_learner=bool(i.get("isLearner", False)),
        )
        for i in infos
    ]
    mid = _own_id(cfg, members)
    os.makedirs(kv_path, exist_ok=True)
    backend = Backend(kv_path)
    membership = Membership(backend)
    _record_local(cfg, backend, membership, mid, cid, members)
    # An empty log: the leader brings this member up to date by entries or a snapshot.
    storage = DurableRaftStorage(wal_path)
    return Opened(mid, backend, storage, membership, False)
