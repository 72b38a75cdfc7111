"""Gateway routes of the KV, Cluster and Maintenance services (etcd 3.5.1's rpc.proto
bindings)."""

from __future__ import annotations

from google.protobuf.descriptor import ServiceDescriptor

from petcd.api.etcdserverpb import rpc_pb2 as pb

_KV = pb.DESCRIPTOR.services_by_name["KV"]
_CLUSTER = pb.DESCRIPTOR.services_by_name["Cluster"]
_MAINTENANCE = pb.DESCRIPTOR.services_by_name["Maintenance"]

BINDINGS: tuple[tuple[str, ServiceDescriptor, str], ...] = (
    ("/v3/kv/range", _KV, "Range"),
    ("/v3/kv/put", _KV, "Put"),
    ("/v3/kv/deleterange", _KV, "DeleteRange"),
    ("/v3/kv/txn", _KV, "Txn"),
    ("/v3/kv/compaction", _KV, "Compact"),
    ("/v3/cluster/member/add", _CLUSTER, "MemberAdd"),
    ("/v3/cluster/member/remove", _CLUSTER, "MemberRemove"),
    ("/v3/cluster/member/update", _CLUSTER, "MemberUpdate"),
    ("/v3/cluster/member/list", _CLUSTER, "MemberList"),
    ("/v3/cluster/member/promote", _CLUSTER, "MemberPromote"),
    ("/v3/maintenance/alarm", _MAINTENANCE, "Alarm"),
    ("/v3/maintenance/status", _MAINTENANCE, "Status"),
    ("/v3/maintenance/defragment", _MAINTENANCE, "Defragment"),
    # etcd 3.5.1's rpc.proto binds both Hash and HashKV to /v3/maintenance/hash; its gateway's
    # mux serves the first binding (Hash), so HashKV has no gateway path.
    ("/v3/maintenance/hash", _MAINTENANCE, "Hash"),
    ("/v3/maintenance/snapshot", _MAINTENANCE, "Snapshot"),
    ("/v3/maintenance/transfer-leadership", _MAINTENANCE, "MoveLeader"),
    ("/v3/maintenance/downgrade", _MAINTENANCE, "Downgrade"),
)
"""(path, service, method) of every route (built into the table by `gateway.route_table`)."""
