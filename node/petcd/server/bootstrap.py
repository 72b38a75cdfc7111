"""Opening a member's data dir: restart from it, or bootstrap a new or joining member.

Layout under --data-dir: `member/kv` (the state-machine LevelDB) and `member/wal` (the Raft
log LevelDB, or --wal-dir when given). A data dir that already has a Raft log is restarted
from and the --initial-cluster* flags are ignored, as etcd does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from petcd import ids
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.config import Config, ConfigError, verify_bootstrap, verify_join_existing
from petcd.raft.types import ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState
from petcd.server.membership import Member, Membership
from petcd.storage.backend import Backend
from petcd.storage.raft_log import DurableRaftStorage
from petcd.tlsutil import peer_dial_context
from petcd.transport.http import fetch_members
from petcd.v2.bootstrap import resolve_initial_cluster


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
    raise ConfigError(
        "error validating peerURLs: no member of the existing cluster has peer URLs "
        f"{','.join(sorted(mine))} (add it with 'etcdctl member add' first)"
    )


async def open_member(cfg: Config) -> Opened:
    """Open the data dir, bootstrapping it first when it is empty."""
    kv_path, wal_path = _paths(cfg)
    if has_data(cfg):
        backend = Backend(kv_path)
        membership = Membership(backend)
        storage = DurableRaftStorage(wal_path)
        mid = _id_from_backend(cfg, membership)
        return Opened(mid, backend, storage, membership, True)
    if cfg.initial_cluster_state == "existing":
        return await _join_existing(cfg, kv_path, wal_path)
    # --discovery / --discovery-srv: learn the initial cluster first, then bootstrap statically.
    cfg = await resolve_initial_cluster(cfg)
    return _bootstrap_new(cfg, kv_path, wal_path)


def _identity_path(cfg: Config) -> Path:
    # Outside the state-machine LevelDB on purpose: a snapshot from the leader replaces that
    # database wholesale, and must not replace who this member is.
    return Path(cfg.data_dir) / "member" / "identity.json"


def _id_from_backend(cfg: Config, membership: Membership) -> int:
    try:
        doc = json.loads(_identity_path(cfg).read_text())
        return int(doc["member_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"data dir {cfg.data_dir} has no readable local member ID: {exc}"
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
