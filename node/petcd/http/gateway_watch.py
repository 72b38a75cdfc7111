"""Gateway route of the Watch service: `POST /v3/watch` with one or more WatchRequest objects
(`{"create_request": {...}}`, `{"cancel_request": {...}}`, `{"progress_request": {}}`) as
the body. The answer streams `{"result": <WatchResponse>}` lines for as long as the client
stays (the watch stream outlives the end of the request body, as etcd's)."""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from petcd.api.etcdserverpb import rpc_pb2 as pb

BINDINGS: tuple[tuple[str, ServiceDescriptor, str], ...] = (
    ("/v3/watch", pb.DESCRIPTOR.services_by_name["Watch"], "Watch"),
)
"""(path, service, method) of every route (built into the table by `gateway.route_table`)."""
