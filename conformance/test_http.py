"""HTTP/1.1 on the client port: /health, /version, /metrics and the gRPC-gateway JSON API.

The same port serves gRPC (etcdctl works on it) and these; bodies and status codes are
compared with etcd's exactly where etcd's are stable (IDs, revisions and terms vary).
"""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from harness.cluster import Cluster
from harness.etcdctl import Etcdctl
from tests.support.encoding import b64
from tests.support.http import post_json, request

METRIC_TYPES = {
    "etcd_server_has_leader": "gauge",
    "etcd_server_leader_changes_seen": "counter",
    "etcd_server_proposals_committed_total": "gauge",
    "etcd_server_proposals_applied_total": "gauge",
    "etcd_server_proposals_pending": "gauge",
    "etcd_server_proposals_failed": "counter",
    "etcd_disk_wal_fsync_duration_seconds": "histogram",
    "etcd_disk_backend_commit_duration_seconds": "histogram",
    "etcd_mvcc_db_total_size_in_bytes": "gauge",
    "grpc_server_handled": "counter",
    "grpc_server_started": "counter",
}
"""Family names as prometheus_client's parser reports them (counters without `_total`)."""


def _version(target: str) -> tuple[str, str]:
    return ("3.4.23", "3.4.0") if target == "etcd-3.4" else ("3.5.1", "3.5.0")


def test_health_and_version(target: str, cluster: Cluster) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    status, headers, body = request(url, "GET", "/health")
    assert status == 200
    expected = '{"health":"true"}' if target == "etcd-3.4" else '{"health":"true","reason":""}'
    assert body.decode() == expected
    status, headers, body = request(url, "GET", "/version")
    assert status == 200 and headers["content-type"] == "application/json"
    server, clus = _version(target)
    assert json.loads(body) == {"etcdserver": server, "etcdcluster": clus}
    if target != "etcd-3.4":
        status, headers, body = request(url, "POST", "/health", "")
        assert status == 405 and body == b"Method Not Allowed\n"


def test_metrics(target: str, cluster: Cluster, etcdctl: Etcdctl, prefix: str) -> None:
    cluster.leader()
    member = cluster.members[0]
    one = etcdctl.with_endpoints([member.client_url])
    one("put", f"{prefix}m", "1").check()
    one("get", f"{prefix}m").check()
    status, headers, body = request(member.client_url, "GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, kind in METRIC_TYPES.items():
        assert name in families, name
        assert families[name].type == kind, (name, families[name].type)
    assert [s.value for s in families["etcd_server_has_leader"].samples] == [1.0]
    assert families["etcd_mvcc_db_total_size_in_bytes"].samples[0].value > 0
    handled = [
        s for s in families["grpc_server_handled"].samples
        if s.labels == {"grpc_code": "OK", "grpc_method": "Range",
                        "grpc_service": "etcdserverpb.KV", "grpc_type": "unary"}
    ]
    assert handled and handled[0].value >= 1
    assert b'grpc_server_handled_total{grpc_code="OK",grpc_method="Range",' \
           b'grpc_service="etcdserverpb.KV",grpc_type="unary"}' in body


def test_gateway_kv(target: str, cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    key = b64(f"{prefix}gw")
    status, put = post_json(url, "/v3/kv/put", {"key": key, "value": b64("bar")})
    assert status == 200
    hdr = put["header"]
    assert set(hdr) == {"cluster_id", "member_id", "revision", "raft_term"}
    assert all(isinstance(v, str) and v.isdigit() for v in hdr.values())  # int64 as strings
    rev = hdr["revision"]
    status, got = post_json(url, "/v3/kv/range", {"key": key})
    assert status == 200
    assert got["count"] == "1"
    assert got["kvs"] == [{"key": key, "create_revision": rev, "mod_revision": rev,
                           "version": "1", "value": b64("bar")}]
    status, missing = post_json(url, "/v3/kv/range", {"key": b64(f"{prefix}none")})
    assert status == 200 and set(missing) == {"header"}  # count 0 and no kvs: omitted
    status, err = post_json(url, "/v3/kv/range", {"key": key, "revision": str(int(rev) + 1000)})
    msg = "etcdserver: mvcc: required revision is a future revision"
    assert (status, err) == (400, {"error": msg, "code": 11, "message": msg})
    status, err = post_json(url, "/v3/kv/put", {"value": b64("x")})
    msg = "etcdserver: key is not provided"
    assert (status, err) == (400, {"error": msg, "code": 3, "message": msg})
    txn = {
        "compare": [{"key": key, "result": "EQUAL", "target": "VALUE", "value": b64("bar")}],
        "success": [{"request_put": {"key": key, "value": b64("baz")}}],
    }
    status, done = post_json(url, "/v3/kv/txn", txn)
    assert status == 200 and done["succeeded"] is True
    assert list(done["responses"][0]) == ["response_put"]
    status, deleted = post_json(url, "/v3/kv/deleterange", {"key": key, "prev_kv": True})
    assert status == 200 and deleted["deleted"] == "1"
    assert deleted["prev_kvs"][0]["value"] == b64("baz")
    assert request(url, "GET", "/v3/kv/range")[0] == 405


def test_gateway_cluster_and_maintenance(target: str, cluster: Cluster) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    status, members = post_json(url, "/v3/cluster/member/list", {})
    assert status == 200
    assert sorted(m["name"] for m in members["members"]) == sorted(
        m.name for m in cluster.members
    )
    assert all(isinstance(m["ID"], str) for m in members["members"])
    status, st = post_json(url, "/v3/maintenance/status", {})
    assert status == 200 and st["version"] == _version(target)[0]
    assert isinstance(st["dbSize"], str) and isinstance(st["leader"], str)
    status, alarms = post_json(url, "/v3/maintenance/alarm", {"action": "GET"})
    assert status == 200 and "alarms" not in alarms  # 3.4 omits even the header
    status, h = post_json(url, "/v3/maintenance/hash", {})
    assert status == 200 and isinstance(h["hash"], int)
    status, d = post_json(url, "/v3/maintenance/defragment", {})
    assert status == 200 and d == {}
