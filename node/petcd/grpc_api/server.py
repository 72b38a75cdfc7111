"""The client-facing gRPC server on --listen-client-urls."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from petcd.grpc_api import lease, services
from petcd.grpc_api.watch import register as register_watch
from petcd.server.etcdserver import EtcdServer

Registrar = Callable[[grpc.aio.Server, EtcdServer], None]

REGISTRARS: list[Registrar] = [services.register, lease.register, register_watch]
"""Each service module's `register(grpc_server, etcd_server)`; add one line per module."""

GRPC_OVERHEAD_BYTES = 512 * 1024
"""Room etcd leaves above --max-request-bytes for gRPC framing."""

MAX_SEND_BYTES = 2**31 - 1


def bind_address(url: str) -> str:
    """`http://host:port` -> `host:port` for grpc's add_insecure_port."""
    parts = urlsplit(url)
    host = parts.hostname or "0.0.0.0"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 2379}"


async def start_client_server(server: EtcdServer, listen_urls: list[str]) -> grpc.aio.Server:
    """Start serving the etcd v3 API; returns the running grpc server."""
    gs = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", server.max_request_bytes + GRPC_OVERHEAD_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ]
    )
    for register in REGISTRARS:
        register(gs, server)
    health = HealthServicer()
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, gs)
    for url in listen_urls:
        gs.add_insecure_port(bind_address(url))
    await gs.start()
    return gs
