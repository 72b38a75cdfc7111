"""`petcd snapshot restore FILE ...`: a new data dir from a snapshot, like `etcdutl`.

    petcd snapshot restore snap.db --data-dir DIR [--wal-dir DIR] [--name NAME]
        [--initial-cluster NAME=URL,...] [--initial-cluster-token TOKEN]
        [--initial-advertise-peer-urls URL,...] [--skip-hash-check]

What it does (etcdutl 3.5's Restore, on petcd's storage):
1. checks the file (its trailing SHA-256 unless --skip-hash-check) and takes the backend dump
   out of it (`petcd.server.maintenance.read_snapshot_file`);
2. refuses a non-empty --data-dir ("data-dir %q not empty or could not be read") or an
   existing --wal-dir, as etcdutl;
3. bootstraps the data dir exactly as a new member of the cluster given by the flags (member
   IDs from names, URLs and token; a fresh Raft log holding the members' conf changes);
4. copies the snapshot's state (keys, leases, alarms, auth, ...) into the new backend, dropping
   its old membership and cluster ID, and sets the consistent index to the new log's commit
   index, so the restored member starts at that index with the snapshot's revisions.

Every member of the new cluster is restored from the same file with its own --name and
--initial-advertise-peer-urls; the members then start with `--initial-cluster-state new`
(or any state: a data dir with a log is restarted from, as etcd does).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from petcd import errors
from petcd.config import Config, ConfigError
from petcd.storage import buckets
from petcd.storage.backend import Batch, SnapshotFormatError, parse_snapshot

DEFAULT_NAME = "default"
EXIT_ERROR = 1
EXIT_BAD_ARGS = 128  # cobrautl.ExitBadArgs

_DROP_BUCKETS = frozenset({buckets.CLUSTER.id, buckets.MEMBERS.id, buckets.MEMBERS_REMOVED.id})
_KEEP_META = frozenset({buckets.META_CONSISTENT_INDEX, buckets.META_TERM})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(errors.SNAP_ERROR_LINE.format(error=message) + "\n")
        raise SystemExit(EXIT_BAD_ARGS)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="petcd snapshot restore", add_help=True)
    p.add_argument("file", nargs="*")
    p.add_argument("--data-dir", default="")
    p.add_argument("--wal-dir", default="")
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--initial-cluster", default="")
    p.add_argument("--initial-cluster-token", default="etcd-cluster")
    p.add_argument("--initial-advertise-peer-urls", default="http://localhost:2380")
    p.add_argument("--skip-hash-check", action="store_true")
    return p


def _dir_nonempty(path: Path) -> bool:
    try:
        return path.exists() and any(path.iterdir())
    except OSError:
        return True


def restore(
    snapshot_path: str,
    *,
    data_dir: str,
    name: str = DEFAULT_NAME,
    initial_cluster: str = "",
    initial_cluster_token: str = "etcd-cluster",
    initial_advertise_peer_urls: Sequence[str] = ("http://localhost:2380",),
    wal_dir: str = "",
    skip_hash_check: bool = False,
) -> int:
    """Restore `snapshot_path` into a new data dir; returns the new member's ID.

    Raises ConfigError (bad flags, existing dirs) or ValueError (a damaged snapshot).
    """
    from petcd.server import bootstrap, maintenance

    data_dir = data_dir or f"{name}.etcd"
    if _dir_nonempty(Path(data_dir)):
        raise ConfigError(errors.SNAP_DATA_DIR_EXISTS.format(data_dir=data_dir))
    if wal_dir and Path(wal_dir).exists():
        raise ConfigError(errors.SNAP_WAL_DIR_EXISTS.format(wal_dir=wal_dir))
    raw = Path(snapshot_path).read_bytes()
    dump = maintenance.read_snapshot_file(raw, skip_hash_check)
    records = parse_snapshot(dump)

    cfg = Config(
        name=name,
        data_dir=data_dir,
        wal_dir=wal_dir,
        initial_cluster=initial_cluster or f"{name}=http://localhost:2380",
        initial_cluster_token=initial_cluster_token,
        initial_advertise_peer_urls=sorted(set(initial_advertise_peer_urls)),
        initial_cluster_state="new",
    )
    kv_path, wal_path = bootstrap._paths(cfg)
    opened = bootstrap._bootstrap_new(cfg, kv_path, wal_path)
    try:
        commit = opened.raft_storage.initial_state()[0].commit
        batch = Batch()
        for key, value in records:
            bid, k = key[0], key[1:]
            if bid in _DROP_BUCKETS or value is None:
                continue
            if bid == buckets.META.id and k not in _KEEP_META and k.startswith(b"petcd"):
                continue  # the old member's local identity
            batch.put(buckets.BY_ID[bid], k, value)
        opened.backend.write(batch, sync=True)
        # The new log's entries 1..commit are the membership, already reflected above.
        from petcd.mvcc.kvstore import KVStore

        KVStore(opened.backend).save_consistent_index(commit, 1, sync=True)
        return opened.member_id
    finally:
        opened.raft_storage.close()
        opened.backend.close()


def main(argv: Sequence[str]) -> int:
    """`petcd snapshot ...` entry point; `argv` is what follows `snapshot`."""
    if not argv or argv[0] != "restore":
        sys.stderr.write(errors.SNAP_USAGE + "\n")
        return EXIT_BAD_ARGS
    args = _parser().parse_args(list(argv[1:]))
    if len(args.file) != 1:
        sys.stderr.write(errors.SNAP_ERROR_LINE.format(error=errors.SNAP_ONE_ARG) + "\n")
        return EXIT_BAD_ARGS
    try:
        mid = restore(
            args.file[0],
            data_dir=args.data_dir,
            name=args.name,
            initial_cluster=args.initial_cluster,
            initial_cluster_token=args.initial_cluster_token,
            initial_advertise_peer_urls=[u for u in args.initial_advertise_peer_urls.split(",")
                                         if u],
            wal_dir=args.wal_dir,
            skip_hash_check=args.skip_hash_check,
        )
    except (ConfigError, SnapshotFormatError, ValueError, OSError) as exc:
        sys.stderr.write(errors.SNAP_ERROR_LINE.format(error=exc) + "\n")
        return EXIT_ERROR
    sys.stdout.write(
        f"restored snapshot {args.file[0]} into {args.data_dir or args.name + '.etcd'} "
        f"(member {mid:x})\n"
    )
    return 0
