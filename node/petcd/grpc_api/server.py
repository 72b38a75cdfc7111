"""The client-facing server on --listen-client-urls: gRPC and HTTP/1.1 on one port.

The grpc.aio server listens on a private abstract unix socket; `petcd.http.mux.ClientMux`
owns the public ports and splices HTTP/2 connections to it, serving HTTP/1.1 itself
(/health, /version, /metrics, the JSON gateway). --listen-metrics-urls get HTTP only.

https:// URLs (client and metrics) are served over TLS with the client side's TLSInfo
(`petcd.tlsutil`): the mux terminates TLS, then splices or serves as for plain connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from petcd import errors
from petcd.grpc_api import auth, decoding, election, interceptors, lease, lock, services
from petcd.grpc_api.learner import restrict as learner_restrict
from petcd.grpc_api.watch import register as register_watch
from petcd.http import client_router, metrics_router
from petcd.http.http1 import serve_connection
from petcd.http.mux import ClientMux, private_grpc_address
from petcd.server.etcdserver import EtcdServer
from petcd.tlsutil import ALPN_CLIENT_PORT, TLSInfo, is_secure

Registrar = Callable[[grpc.aio.Server, EtcdServer], None]

REGISTRARS: list[Registrar] = [
    services.register,
    lease.register,
    register_watch,
    lock.register,
    election.register,
    auth.register,
]
"""Each service module's `register(grpc_server, etcd_server)`; add one line per module."""

GRPC_OVERHEAD_BYTES = 512 * 1024
"""Room etcd leaves above --max-request-bytes for gRPC framing."""
GRPC_HARD_RECEIVE_FACTOR = 4
"""grpc core's receive limit, in multiples of etcd's (max request bytes + overhead)."""

MAX_SEND_BYTES = 2**31 - 1


def bind_address(url: str) -> str:
    """`http://host:port` -> `host:port` for grpc's add_insecure_port."""
    parts = urlsplit(url)
    host = parts.hostname or "0.0.0.0"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 2379}"


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 2379


class ClientServer:
    """The running client-port servers; `stop(grace)` as grpc.aio.Server's."""

    def __init__(self, grpc_server: grpc.aio.Server, muxes: list[ClientMux]) -> None:
        self.grpc = grpc_server
        self.muxes = muxes

    async def stop(self, grace: float | None) -> None:
        for m in self.muxes:
            await m.close()
        await self.grpc.stop(grace)


def _tls_check(info: TLSInfo) -> Callable[[asyncio.BaseTransport], str]:
    def check(transport: asyncio.BaseTransport) -> str:
        sslobj = transport.get_extra_info("ssl_object")
        peer = transport.get_extra_info("peername")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        return info.check_peer(der, str(peer[0]) if peer else "", check_san=False)

    return check


async def start_client_server(
    server: EtcdServer,
    listen_urls: list[str],
    metrics_urls: list[str] | None = None,
    tls: TLSInfo | None = None,
) -> ClientServer:
    """Serve the etcd v3 API (gRPC and HTTP) on `listen_urls`, and /metrics and /health on
    `metrics_urls`; https:// URLs use `tls` (required for them); returns the running servers."""
    ctx = None
    if tls is not None and not tls.empty():
        ctx = tls.server_context(ALPN_CLIENT_PORT)
    if ctx is None and any(is_secure(u) for u in [*listen_urls, *(metrics_urls or [])]):
        raise ValueError(errors.CLIENT_TLS_MISSING)
    recv_limit = server.max_request_bytes + GRPC_OVERHEAD_BYTES
    gs = grpc.aio.server(
        # Metrics outermost, then the learner restrictions, quota and auth (each method's
        # handler is built once: CachedChain).
        interceptors=[
            interceptors.CachedChain(
                outer=[interceptors.MetricsInterceptor()],
                inner=[interceptors.QuotaInterceptor(server), auth.AuthInterceptor(server)],
                is_learner=server.is_learner_member,
                restrict=learner_restrict,
            )
        ],
        options=[
            # grpc core's own limit sits above etcd's so that `decoding` answers with grpc-go's
            # text (grpc-python's differs); beyond it, grpc-python's text and a bounded buffer.
            ("grpc.max_receive_message_length", GRPC_HARD_RECEIVE_FACTOR * recv_limit),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ],
    )
    hardened = decoding.HardenedServer(gs, recv_limit)
    registered = cast(grpc.aio.Server, hardened)
    for register in REGISTRARS:
        register(registered, server)
    health = HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, hardened.plain())
    private = private_grpc_address(f"{server.id:x}")
    gs.add_insecure_port(private)
    await gs.start()
    mux = ClientMux(private, serve_connection(client_router(server)))
    muxes = [mux]
    try:
        for url in listen_urls:
            await mux.listen(*_host_port(url), tls=ctx if is_secure(url) else None)
        if metrics_urls:
            mmux = ClientMux(private, serve_connection(metrics_router(server)))
            muxes.append(mmux)
            for url in metrics_urls:
                await mmux.listen(
                    *_host_port(url), grpc_enabled=False, tls=ctx if is_secure(url) else None
                )
        if tls is not None and (tls.crl_file or tls.allowed_hostname):
            for m in muxes:
                m.tls_check = _tls_check(tls)
    except BaseException:
        for m in muxes:
            await m.close()
        await gs.stop(None)
        raise
    return ClientServer(gs, muxes)
