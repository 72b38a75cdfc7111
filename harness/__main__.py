"""`python -m harness {up,down,status}`: run a long-lived cluster for humans (`make up`).

The cluster's pid files, logs, data and `cluster.json` live under `--dir` (default `.run/`);
members run in their own sessions so they outlive this command. `up` returns once the cluster
is healthy (exit 0) or prints the members' log tails and tears everything down (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cluster import ClusterError
from harness.impls import IMPL_NAMES, REPO_ROOT
from harness.local import STATE_FILE, LocalCluster

DEFAULT_DIR = REPO_ROOT / ".run"


def _say(msg: str) -> None:
    print(f"[harness] {msg}", flush=True)


def _attached(root: Path) -> LocalCluster | None:
    if not (root / STATE_FILE).is_file():
        return None
    return LocalCluster.attach(root)


def cmd_up(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    existing = _attached(root)
    if existing is not None and any(existing.is_running(m) for m in existing.members):
        if existing.impl.name != args.impl:
            _say(f"a {existing.impl.name} cluster is already up in {root}; run `make down` first")
            return 1
        _say(f"{existing.impl.name} cluster already running in {root}")
        existing.wait_healthy(timeout=args.timeout)
        _print_members(existing)
        return 0
    if existing is not None:
        existing.remove_data()
    cluster = LocalCluster(args.impl, size=3, root=root, port_layout=args.ports)
    _say(f"starting 3-member {cluster.impl.name} cluster ({cluster.impl.server}) in {root}")
    try:
        cluster.start()
        _say(f"waiting up to {args.timeout:.0f}s for health ...")
        cluster.wait_healthy(timeout=args.timeout)
    except ClusterError as exc:
        _say(f"cluster failed to come up: {str(exc).splitlines()[0]}")
        for m in cluster.members:
            _say(f"--- {m.name} log tail ({cluster.log_path(m)}):\n{cluster.log_tail(m)}")
        cluster.stop()
        return 1
    _print_members(cluster)
    return 0


def _print_members(cluster: LocalCluster) -> None:
    leader = cluster.leader(timeout=10)
    for m in cluster.members:
        mark = " (leader)" if m == leader else ""
        _say(f"{m.name}{mark} pid={cluster.pid(m)} client={m.client_url} peer={m.peer_url}")
    _say(f"logs: {cluster.root}/<name>.log   stop: make down")


def cmd_down(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    cluster = _attached(root)
    if cluster is None:
        _say(f"no cluster state in {root}; nothing to stop")
        return 0
    cluster.stop()
    cluster.remove_data()
    _say(f"stopped {cluster.impl.name} cluster and removed its data in {root}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    cluster = _attached(root)
    if cluster is None:
        _say(f"no cluster in {root}")
        return 3
    rc = 0
    for m in cluster.members:
        running = cluster.is_running(m)
        st = cluster.status(m) if running else None
        detail = (
            f"raft_term={st['raftTerm']} leader={st['leader']:x} revision={st['header']['revision']}"
            if st
            else "not answering"
        )
        _say(f"{m.name} {'up' if running else 'DOWN'} pid={cluster.pid(m)} {m.client_url} {detail}")
        if not running or st is None:
            rc = 1
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="state/log/data dir (default .run/)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a 3-member cluster and wait until healthy")
    up.add_argument("--impl", choices=IMPL_NAMES, default="petcd")
    up.add_argument("--ports", choices=("default", "auto"), default="default")
    up.add_argument("--timeout", type=float, default=60.0)
    sub.add_parser("down", help="stop the cluster and remove its data")
    sub.add_parser("status", help="show members and their status")
    args = ap.parse_args(argv)
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return handlers[args.cmd](args)
    except ClusterError as exc:
        _say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
