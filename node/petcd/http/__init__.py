"""HTTP on the client port: the gRPC/HTTP front multiplexer, /health, /version, /metrics and
the gRPC-gateway JSON API. `client_router` and `metrics_router` build the routers."""

from __future__ import annotations

from petcd.http import endpoints, gateway
from petcd.http.http1 import Router
from petcd.http.mux import private_grpc_address
from petcd.server.etcdserver import EtcdServer
from petcd.v2 import add_routes as add_v2_routes

GATEWAY_OVERHEAD_BYTES = 512 * 1024
GATEWAY_BODY_FACTOR = 8
"""etcd's gateway reads bodies of any size and lets its gRPC server refuse the decoded
request (429, `gateway.too_large`); a JSON body can be several times its message's size
(base64, byte arrays, whitespace), so the client port reads bodies up to this many times the
gRPC limit and answers 400 beyond that (a bound on memory that etcd does not have)."""


def client_router(server: EtcdServer, grpc_target: str | None = None) -> Router:
    """Everything etcd serves over HTTP/1.1 on --listen-client-urls. The gateway calls the
    member's gRPC server at `grpc_target` (default: the private address
    `petcd.grpc_api.server` serves it on)."""
    r = Router(GATEWAY_BODY_FACTOR * (server.max_request_bytes + GATEWAY_OVERHEAD_BYTES))
    endpoints.add_routes(r, server)
    gateway.add_routes(r, server, grpc_target or private_grpc_address(f"{server.id:x}"))
    add_v2_routes(r, server)
    return r


def metrics_router(server: EtcdServer) -> Router:
    """What etcd serves on --listen-metrics-urls: /metrics and /health."""
    r = Router(GATEWAY_OVERHEAD_BYTES)
    endpoints.add_metrics_routes(r, server)
    return r
