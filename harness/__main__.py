"""`python -m harness {up,down,status}`: run a long-lived cluster for humans (`make up`).

`--backend auto|docker|local` (default auto, or $PETCD_BACKEND): auto means docker when a Docker
engine answers (`docker version` succeeds), local processes otherwise.

- docker: the compose topology of `compose/docker-compose.yml` (project `petcd`, members at
  172.16.238.100-102, client ports 127.0.0.1:2379/22379/32379), images built first with
  images/build.sh; `--toxiproxy` adds the Toxiproxy overlay; `--bootstrap discovery|dns` boots
  the members from a v2 discovery service (`--discovery-impl`) or DNS SRV records instead of a
  static initial cluster. See `harness.compose_up`.
- local: the cluster's pid files, logs, data and `cluster.json` live under `--dir` (default
  `.run/`); members run in their own sessions so they outlive this command.

`up` returns once the cluster is healthy (exit 0) or prints the members' log tails and tears
everything down (exit 1). `down` removes whichever cluster is up (both, if both are).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness import compose_up
from harness.cluster import ClusterError
from harness.docker_backend import engine_available
from harness.impls import IMPL_NAMES, REPO_ROOT
from harness.local import STATE_FILE, LocalCluster

DEFAULT_DIR = REPO_ROOT / ".run"


def _say(msg: str) -> None:
    print(f"[harness] {msg}", flush=True)


def _attached(root: Path) -> LocalCluster | None:
    if not (root / STATE_FILE).is_file():
        return None
    return LocalCluster.attach(root)


def _backend(args: argparse.Namespace) -> str:
    """The backend to use: as asked, or docker exactly when an engine answers."""
    if args.backend != "auto":
        return str(args.backend)
    return "docker" if engine_available() is None else "local"


def _local_running(root: Path) -> LocalCluster | None:
    cluster = _attached(root)
    if cluster is not None and any(cluster.is_running(m) for m in cluster.members):
        return cluster
    return None


def cmd_up(args: argparse.Namespace) -> int:
    backend = _backend(args)
    if backend == "docker":
        reason = engine_available()
        if reason is not None:
            _say(f"--backend docker: {reason}")
            return 1
        local = _local_running(Path(args.dir))
        if local is not None:
            _say(f"a local {local.impl.name} cluster is up in {args.dir}; run `make down` first")
            return 1
        _say("backend: docker (a Docker engine answers)")
        return compose_up.up(args.impl, args.toxiproxy, args.timeout, _say, args.bootstrap,
                             args.discovery_impl)
    if args.toxiproxy:
        _say("--toxiproxy needs the docker backend (Toxiproxy runs in the compose topology)")
        return 1
    if args.bootstrap != "static":
        _say(f"--bootstrap {args.bootstrap} needs the docker backend (its discovery service or "
             "DNS server runs in the compose topology)")
        return 1
    if engine_available() is None and compose_up.containers():
        _say("a compose cluster (project petcd) exists; run `make down` first")
        return 1
    _say("backend: local processes" + (" (no Docker engine)" if args.backend == "auto" else ""))
    return _cmd_up_local(args)


def _cmd_up_local(args: argparse.Namespace) -> int:
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
    removed = False
    if args.backend in ("auto", "docker") and engine_available() is None:
        removed = compose_up.down(_say)
    if args.backend in ("auto", "local"):
        root = Path(args.dir)
        cluster = _attached(root)
        if cluster is not None:
            cluster.stop()
            cluster.remove_data()
            _say(f"stopped {cluster.impl.name} cluster and removed its data in {root}")
            removed = True
    if not removed:
        _say("no cluster is up; nothing to stop")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.backend != "local" and engine_available() is None and compose_up.containers():
        return compose_up.status(_say)
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
    rest = sys.argv[1:] if argv is None else argv
    if rest[:1] == ["gate"]:  # the regression gate has its own options (harness.gate.cli)
        from harness.gate.cli import main as gate_main

        return gate_main(rest[1:])
    if rest[:1] == ["scale"]:  # the scale curves have their own options (harness.scale)
        from harness.scale import main as scale_main

        return scale_main(rest[1:])
    ap = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    ap.add_argument("--dir", default=str(DEFAULT_DIR), help="state/log/data dir (default .run/)")
    ap.add_argument("--backend", choices=("auto", "docker", "local"),
                    default=os.environ.get("PETCD_BACKEND") or "auto",
                    help="docker containers or local processes (default auto: docker if an "
                         "engine answers)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a 3-member cluster and wait until healthy")
    up.add_argument("--impl", choices=IMPL_NAMES, default="petcd")
    up.add_argument("--toxiproxy", action="store_true",
                    help="docker: add the Toxiproxy overlay (a proxy on every link)")
    up.add_argument("--bootstrap", choices=("static", "discovery", "dns"), default="static",
                    help="docker: how the members find each other (initial cluster, v2 "
                         "discovery service, DNS SRV records)")
    up.add_argument("--discovery-impl", choices=IMPL_NAMES, default="etcd-3.5",
                    help="docker, --bootstrap discovery: the discovery service's implementation")
    up.add_argument("--ports", choices=("default", "auto"), default="default")
    up.add_argument("--timeout", type=float, default=60.0)
    sub.add_parser("down", help="stop the cluster and remove its data")
    sub.add_parser("status", help="show members and their status")
    args = ap.parse_args(argv)
    if args.backend not in ("auto", "docker", "local"):
        ap.error(f"--backend (or PETCD_BACKEND) must be auto, docker or local, not {args.backend!r}")
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status}
    try:
        return handlers[args.cmd](args)
    except ClusterError as exc:
        _say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
