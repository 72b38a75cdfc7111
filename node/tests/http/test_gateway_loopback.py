"""The gateway on a real petcd member is a client of the member's own gRPC server: its calls
show up in the gRPC metrics and meet the same auth checks as gRPC calls (including the checks
the Lock/Election services make as the caller through `concurrency.REQUEST_GUARD`)."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from harness.local import LocalCluster
from tests.support.encoding import b64
from tests.support.http import post_json, request

ALICE = ("--user", "alice:apw")
DENIED = "Error: etcdserver: permission denied"


def _handled(url: str, method: str) -> float:
    _, _, body = request(url, "GET", "/metrics")
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name == "grpc_server_handled":
            for s in fam.samples:
                if s.labels.get("grpc_method") == method and s.labels["grpc_code"] == "OK":
                    return float(s.value)
    return 0.0


def test_gateway_calls_are_grpc_calls(member: LocalCluster) -> None:
    url = member.members[0].client_url
    before = _handled(url, "LeaseLeases")
    for _ in range(3):
        status, _, _ = request(url, "POST", "/v3/kv/lease/leases", "{}")
        assert status == 200
    assert _handled(url, "LeaseLeases") - before == 3


def test_v3beta_prefix_and_cors_preflight(member: LocalCluster) -> None:
    url = member.members[0].client_url
    body = json.dumps({"key": b64("beta"), "value": b64("1")})
    status, _, _ = request(url, "POST", "/v3beta/kv/put", body)
    assert status == 200
    status, _, got = request(url, "POST", "/v3/kv/range", json.dumps({"key": b64("beta")}))
    assert status == 200 and json.loads(got)["kvs"][0]["value"] == b64("1")
    status, headers, got = request(url, "OPTIONS", "/v3/kv/put")
    assert (status, got) == (200, b"")
    assert headers["access-control-allow-headers"] == "accept, content-type, authorization"


def test_lock_and_election_check_the_caller(member: LocalCluster) -> None:
    ctl = member.ctl()
    for args in (
        ("user", "add", "root:rootpw"),
        ("user", "grant-role", "root", "root"),
        ("user", "add", "alice:apw"),
        ("role", "add", "r1"),
        ("role", "grant-permission", "r1", "readwrite", "/p/", "--prefix"),
        ("user", "grant-role", "alice", "r1"),
        ("auth", "enable"),
    ):
        ctl(*args).check()
    # gRPC (etcdctl): outside alice's range the services' own KV requests are refused ...
    for args in (("lock", "/x/l", "true"), ("elect", "/x/e", "v")):
        res = ctl(*args, *ALICE)
        assert res.rc != 0 and res.stderr.strip().splitlines()[-1] == DENIED, res.stderr
    # ... inside it they work.
    res = ctl("lock", "/p/l", "echo", "held", *ALICE)
    assert res.rc == 0 and res.stdout == "held\n", res.stderr
    # The gateway gets the same answers (code Unknown, as etcd's in-process client gives).
    url = member.members[0].client_url
    status, auth = post_json(url, "/v3/auth/authenticate", {"name": "alice", "password": "apw"})
    token = auth["token"]
    msg = "etcdserver: permission denied"
    assert post_json(url, "/v3/election/campaign", {"name": b64("/x/e")}, token) == (
        500, {"error": msg, "code": 2, "message": msg})
    assert post_json(url, "/v3/election/leader", {"name": b64("/x/e")}, token) == (
        500, {"error": msg, "code": 2, "message": msg})
    status, camp = post_json(url, "/v3/election/campaign", {"name": b64("/p/e")}, token)
    assert status == 200
    status, _ = post_json(url, "/v3/election/resign", {"leader": camp["leader"]}, token)
    assert status == 200
    bad = "etcdserver: invalid auth token"
    assert post_json(url, "/v3/lock/lock", {"name": b64("/p/l")}, "junk") == (
        500, {"error": bad, "code": 2, "message": bad})
