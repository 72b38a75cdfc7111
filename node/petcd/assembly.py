"""The assembly point: `run(config, logger)` builds one petcd member from its flags, from data
dir to serving, until stopped.

It sits above every layer it wires together (server/, its subsystems in server/ and v2/, the
peer transport, the gRPC and HTTP APIs): nothing below imports it. `INSTALLERS` lists the
subsystems (one `install(server)` each, run while the EtcdServer is built, configured from
`ServerOptions`); `server_options` derives those options from the parsed `Config`.
"""

from __future__ import annotations

from typing import Any

from petcd import errors, ids, tlsutil
from petcd.config import Config
from petcd.grpc_api.server import start_client_server
from petcd.http import gofail
from petcd.logutil import Logger
from petcd.server import alarms, auth_ops, compactor, lease_ops, server_metrics
from petcd.server.bootstrap import open_member
from petcd.server.etcdserver import EtcdServer, Installer
from petcd.server.options import ServerOptions
from petcd.server.watch_hub import install as install_watch_hub
from petcd.transport.transport import PeerTransport
from petcd.v2 import server as v2_server

INSTALLERS: tuple[Installer, ...] = (
    lease_ops.install,
    install_watch_hub,
    alarms.install,
    server_metrics.install,
    v2_server.install,
    compactor.install,
    auth_ops.install,
)
"""Every optional subsystem, in install order; add one line per subsystem."""


def server_options(cfg: Config, client_tls: tlsutil.TLSInfo | None) -> ServerOptions:
    """The member's `ServerOptions` from its parsed flags (and client-side TLS)."""
    if "experimental-watch-progress-notify-interval" in cfg.explicit:
        interval: float | None = cfg.experimental_watch_progress_notify_interval
    else:
        interval = cfg.settings.watch_progress_notify_interval
    return ServerOptions(
        name=cfg.name,
        client_urls=tuple(cfg.advertise_client_urls),
        heartbeat_ms=cfg.heartbeat_interval,
        election_ms=cfg.election_timeout,
        snapshot_count=cfg.snapshot_count,
        max_txn_ops=cfg.max_txn_ops,
        max_request_bytes=cfg.max_request_bytes,
        cluster_token=cfg.initial_cluster_token,
        settings=cfg.settings,
        compaction_batch_limit=cfg.experimental_compaction_batch_limit,
        watch_progress_notify_interval=interval,
        auto_compaction_mode=cfg.auto_compaction_mode,
        auto_compaction_retention=cfg.auto_compaction_retention,
        quota_backend_bytes=cfg.quota_backend_bytes,
        bcrypt_cost=cfg.bcrypt_cost,
        auth_token_ttl=cfg.auth_token_ttl,
        enable_v2=cfg.enable_v2,
        client_tls=client_tls,
    )


def _members_json(server: EtcdServer) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "name": m.name,
            "peerURLs": m.peer_urls,
            "clientURLs": m.client_urls,
            "isLearner": m.is_learner,
        }
        for m in server.membership.sorted_members()
    ]


async def run(cfg: Config, logger: Logger) -> None:
    """Serve until the member is removed or the task is cancelled (SIGTERM/SIGINT)."""
    tls = tlsutil.configure(cfg, logger)
    # gofail serves from its init, before etcd opens anything: points on the boot path can be
    # armed too (the table itself is armed by the CLI from PETCD_FAILPOINTS).
    addr = cfg.settings.failpoints_http
    gofail_http = await gofail.start(addr) if addr else None
    try:
        await _run(cfg, logger, tls)
    finally:
        if gofail_http is not None:
            gofail_http.close()


async def _run(cfg: Config, logger: Logger, tls: tlsutil.ServerTLS) -> None:
    opened = await open_member(cfg, logger)
    mid = opened.member_id
    log = logger.with_(**{"local-member-id": ids.format_id(mid)})
    server = EtcdServer(
        member_id=mid,
        backend=opened.backend,
        raft_storage=opened.raft_storage,
        options=server_options(cfg, tls.client),
        logger=log,
        installers=INSTALLERS,
    )
    log.info(
        "starting member" if not opened.restarted else "restarting member",
        **{
            "cluster-id": ids.format_id(server.cluster_id),
            "data-dir": cfg.data_dir,
            "applied-index": server.applied_index,
        },
    )

    def on_removed(_peer: int) -> None:
        log.warning("the local member has been permanently removed from the cluster")
        server.request_stop(errors.MEMBER_REMOVED_EXIT)

    transport = PeerTransport(
        mid,
        server.cluster_id,
        cfg.listen_peer_urls,
        server.driver.step,
        log,
        advertise_urls=cfg.initial_advertise_peer_urls,
        report_unreachable=server.driver.report_unreachable,
        report_snapshot=server.driver.report_snapshot,
        members=lambda: _members_json(server),
        is_id_removed=lambda pid: pid in server.membership.removed,
        on_removed=on_removed,
        tls=tls.peer,
    )
    for m in server.membership.sorted_members():
        transport.add_peer(m.id, m.peer_urls)
    await transport.start()
    server.start(transport)
    grpc_server = await start_client_server(
        server, cfg.listen_client_urls, cfg.listen_metrics_urls, tls=tls.client
    )
    log.info(
        "serving client traffic",
        address=",".join(cfg.listen_client_urls),
        **{"peer-address": ",".join(cfg.listen_peer_urls)},
    )
    try:
        await server.stopped.wait()
        if server.stop_reason:
            log.warning("stopping", reason=server.stop_reason)
    finally:
        await grpc_server.stop(grace=0.5)
        await server.stop()
        await transport.stop()
        opened.raft_storage.close()
        opened.backend.close()
