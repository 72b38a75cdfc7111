"""Gateway routes of the Lease service (etcd 3.5.1's rpc.proto bindings), including the
`/v3/kv/lease/*` additional bindings and the keep-alive stream (`/v3/lease/keepalive`: each
JSON object of the body renews once and gets one `{"result": ...}` line; the stream ends
after the last answer)."""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from petcd.api.etcdserverpb import rpc_pb2 as pb

_LEASE = pb.DESCRIPTOR.services_by_name["Lease"]

BINDINGS: tuple[tuple[str, ServiceDescriptor, str], ...] = (
    ("/v3/lease/grant", _LEASE, "LeaseGrant"),
    ("/v3/lease/revoke", _LEASE, "LeaseRevoke"),
    ("/v3/kv/lease/revoke", _LEASE, "LeaseRevoke"),
    ("/v3/lease/keepalive", _LEASE, "LeaseKeepAlive"),
    ("/v3/lease/timetolive", _LEASE, "LeaseTimeToLive"),
    ("/v3/kv/lease/timetolive", _LEASE, "LeaseTimeToLive"),
    ("/v3/lease/leases", _LEASE, "LeaseLeases"),
    ("/v3/kv/lease/leases", _LEASE, "LeaseLeases"),
)
"""(path, service, method) of every route (built into the table by `gateway.route_table`)."""
