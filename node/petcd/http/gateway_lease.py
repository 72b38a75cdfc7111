"""Gateway routes of the Lease service (etcd 3.5.1's rpc.proto bindings), including the
`/v3/kv/lease/*` additional bindings and the keep-alive stream (`/v3/lease/keepalive`: each
JSON object of the body renews once and gets one `{"result": ...}` line; the stream ends
after the last answer)."""

from __future__ import annotations

from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.http.gateway import route

_LEASE = pb.DESCRIPTOR.services_by_name["Lease"]

route("/v3/lease/grant", _LEASE, "LeaseGrant")
route("/v3/lease/revoke", _LEASE, "LeaseRevoke")
route("/v3/kv/lease/revoke", _LEASE, "LeaseRevoke")
route("/v3/lease/keepalive", _LEASE, "LeaseKeepAlive")
route("/v3/lease/timetolive", _LEASE, "LeaseTimeToLive")
route("/v3/kv/lease/timetolive", _LEASE, "LeaseTimeToLive")
route("/v3/lease/leases", _LEASE, "LeaseLeases")
route("/v3/kv/lease/leases", _LEASE, "LeaseLeases")
