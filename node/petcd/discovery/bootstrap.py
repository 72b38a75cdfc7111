"""Turning --discovery / --discovery-srv into a static initial cluster before bootstrap.

`resolve_initial_cluster(cfg)` is called by `petcd.server.bootstrap.open_member` for a new
member with an empty data dir. It returns `cfg` unchanged without those flags; otherwise a copy
whose --initial-cluster (and, for discovery, --initial-cluster-token: etcd uses the discovery
URL as the token) describe the discovered cluster, so the static bootstrap path does the rest.
Failures are `ConfigError`s with etcd's texts; the CLI logs them as etcd does ("failed to start
etcd", then fatal "discovery failed") and exits 1.
"""

from __future__ import annotations

import asyncio

from petcd import errors, ids
from petcd.config import Config, ConfigError, replace
from petcd.discovery import service as discovery
from petcd.discovery import srv
from petcd.logutil import Logger, new_logger


def _urls_map_string(cluster: dict[str, list[str]]) -> str:
    """etcd's URLsMap.String(): "name=url" pairs sorted."""
    return ",".join(sorted(f"{n}={u}" for n, urls in cluster.items() for u in urls))


async def _discover(cfg: Config, log: Logger) -> Config:
    own = {cfg.name: sorted(cfg.initial_advertise_peer_urls)}
    mid = ids.initial_member_ids(own, cfg.discovery)[cfg.name]
    d = discovery.Discovery(cfg.discovery, mid, log)
    try:
        cluster = await d.join_cluster(_urls_map_string(own))
    except discovery.DiscoveryError as exc:
        if exc.err == errors.DISCOVERY_FULL_CLUSTER and cfg.discovery_fallback == "proxy":
            log.info("discovery cluster is full, falling back to proxy",
                     **{"fallback-proxy": "proxy", "error": exc.err})
            raise ConfigError(errors.DISCOVERY_NO_PROXY.format(error=exc)) from None
        _log_discovery_failure(cfg, log, exc)
        raise ConfigError(str(exc)) from None
    try:
        urls = discovery.parse_urls_map(cluster)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    seen: set[str] = set()
    for us in urls.values():
        for u in us:
            if u in seen:
                raise ConfigError(errors.DISCOVERY_DUPLICATE_URL.format(cluster=_urls_map_string(urls)))
            seen.add(u)
    return replace(cfg, initial_cluster=cluster, initial_cluster_token=cfg.discovery)


def _log_discovery_failure(cfg: Config, log: Logger, exc: discovery.DiscoveryError) -> None:
    if exc.err == errors.DISCOVERY_DUPLICATE_ID:
        log.warning("member has been registered with discovery service",
                    name=cfg.name, **{"discovery-token": cfg.discovery, "error": exc.err})
        log.warning("but could not find valid cluster configuration",
                    **{"data-dir": cfg.data_dir})
        log.warning("check data dir if previous bootstrap succeeded")
        log.warning("or use a new discovery token if previous bootstrap failed")
    elif exc.err == errors.DISCOVERY_DUPLICATE_NAME:
        log.warning("member with duplicated name has already been registered",
                    **{"discovery-token": cfg.discovery, "error": exc.err})
        log.warning("cURL the discovery token URL for details")
        log.warning("do not reuse discovery token; generate a new one to bootstrap a cluster")
    else:
        log.warning("failed to bootstrap; discovery token was already used",
                    **{"discovery-token": cfg.discovery, "error": exc.err})
        log.warning("do not reuse discovery token; generate a new one to bootstrap a cluster")


def _from_srv(cfg: Config, log: Logger) -> Config:
    try:
        cluster = srv.initial_cluster(cfg.name, cfg.discovery_srv, cfg.discovery_srv_name,
                                      list(cfg.initial_advertise_peer_urls),
                                      cfg.settings.dns_server)
    except srv.SrvError as exc:
        raise ConfigError(errors.CFG_INITIAL_CLUSTER.format(error=exc)) from None
    for entry in cluster.split(","):
        log.info("got bootstrap from DNS for etcd-server", node=entry)
    return replace(cfg, initial_cluster=cluster)


async def resolve_initial_cluster(cfg: Config) -> Config:
    """`cfg` with the initial cluster the discovery flags describe (see the module doc)."""
    if not cfg.discovery and not cfg.discovery_srv:
        return cfg
    log = new_logger(cfg.log_level, cfg.log_outputs)
    if cfg.discovery:
        return await _discover(cfg, log)
    return await asyncio.to_thread(_from_srv, cfg, log)
