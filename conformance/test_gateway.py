"""The gRPC-gateway JSON API (`/v3/...` on the client port) through the `etcd3gw` client and
through raw HTTP for what etcd3gw does not use (streams, lease bindings, Lock/Election, auth).

Expected bodies are etcd 3.5.1's (checked with curl against `.venv/bin/etcd`); IDs, revisions
and terms are compared by shape only. Where the targets differ:
- etcd 3.4 serves the same `/v3/` prefix (and `/v3beta/`), so etcd3gw's discovery picks `/v3/`
  on all three targets.
- etcd 3.4 has no AuthStatus (`/v3/auth/status` is 404 there).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import etcd3gw
import pytest
from etcd3gw.lock import Lock

from harness.cluster import Cluster
from tests.support.encoding import b64
from tests.support.timeouts import REQUEST, SETTLE


def _client(cluster: Cluster) -> etcd3gw.Etcd3Client:
    parts = urlsplit(cluster.members[0].client_url)
    return etcd3gw.Etcd3Client(host=parts.hostname or "127.0.0.1", port=parts.port or 2379,
                               timeout=REQUEST)


def _conn(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                      timeout=REQUEST)


def post(url: str, path: str, body: str | dict[str, Any], token: str | None = None
         ) -> tuple[int, dict[str, str], Any]:
    """One unary gateway call: (status, lower-cased headers, decoded JSON body)."""
    conn = _conn(url)
    headers = {"Authorization": token} if token else {}
    try:
        conn.request("POST", path, body=body if isinstance(body, str) else json.dumps(body),
                     headers=headers)
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return r.status, hdrs, json.loads(data) if hdrs.get("content-type") == \
            "application/json" else data.decode()
    finally:
        conn.close()


class Stream:
    """A streaming gateway call: `status`, `headers`, and `line()` for each `{...}` line."""

    def __init__(self, url: str, path: str, body: str, token: str | None = None) -> None:
        self.conn = _conn(url)
        headers = {"Authorization": token} if token else {}
        self.conn.request("POST", path, body=body, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def line(self) -> Any:
        """The next line, decoded; None at the end of the stream."""
        raw = self.resp.readline()
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def _is_header(hdr: dict[str, Any]) -> bool:
    return set(hdr) == {"cluster_id", "member_id", "revision", "raft_term"} and all(
        isinstance(v, str) and v.isdigit() for v in hdr.values()
    )


def _success_headers(headers: dict[str, str]) -> None:
    assert headers["content-type"] == "application/json"
    assert headers["grpc-metadata-content-type"] == "application/grpc"


# -- etcd3gw ----------------------------------------------------------------------------------


def test_etcd3gw_kv(cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    c = _client(cluster)
    assert c.api_path == "/v3/"
    assert c.put(f"{prefix}a", "1") is True
    assert c.get(f"{prefix}a") == [b"1"]
    assert c.create(f"{prefix}a", "again") is False
    assert c.replace(f"{prefix}a", "1", "2") is True
    assert c.replace(f"{prefix}a", "1", "3") is False
    c.put(f"{prefix}b", "x")
    c.put(f"{prefix}c", "y")
    got = c.get_prefix(prefix)
    assert sorted((meta["key"], value) for value, meta in got) == [
        (f"{prefix}a".encode(), b"2"), (f"{prefix}b".encode(), b"x"),
        (f"{prefix}c".encode(), b"y"),
    ]
    assert c.delete(f"{prefix}a") is True
    assert c.delete(f"{prefix}a") is False
    assert c.get(f"{prefix}a") == []
    assert c.delete_prefix(prefix) is True
    assert c.get_prefix(prefix) == []


def test_etcd3gw_lease(cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    c = _client(cluster)
    lease = c.lease(ttl=60)
    assert 0 < lease.ttl() <= 60
    assert c.put(f"{prefix}k", "v", lease=lease) is True
    assert lease.keys() == [f"{prefix}k".encode()]
    assert lease.refresh() == 60  # one keep-alive over /v3/lease/keepalive
    assert lease.revoke() is True
    assert c.get(f"{prefix}k") == []
    assert lease.ttl() == -1


def _next(executor: ThreadPoolExecutor, events: Iterator[Any]) -> Any:
    return executor.submit(next, events).result(timeout=SETTLE)


def test_etcd3gw_watch(cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    c = _client(cluster)
    events, cancel = c.watch(f"{prefix}w", prev_kv=True)
    pfx_events, pfx_cancel = c.watch_prefix(prefix)
    with ThreadPoolExecutor(max_workers=2) as ex:
        try:
            c.put(f"{prefix}w", "1")
            c.put(f"{prefix}w", "2")
            c.delete(f"{prefix}w")
            first, second, third = (_next(ex, events) for _ in range(3))
            assert first["kv"]["value"] == b"1" and "type" not in first  # PUT is the default
            assert second["kv"]["value"] == b"2"
            assert second["prev_kv"]["value"] == b64("1")  # etcd3gw decodes kv only
            assert third["type"] == "DELETE" and third["kv"]["key"] == f"{prefix}w".encode()
            assert [_next(ex, pfx_events)["kv"]["mod_revision"] for _ in range(3)] == [
                first["kv"]["mod_revision"], second["kv"]["mod_revision"],
                third["kv"]["mod_revision"],
            ]
        finally:
            cancel()
            pfx_cancel()


def test_etcd3gw_lock(cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    c = _client(cluster)
    name = prefix.strip("/").replace("/", "_")
    held = Lock(name, ttl=60, client=c)
    other = Lock(name, ttl=60, client=c)
    assert held.acquire() is True
    try:
        assert held.is_acquired() is True
        assert other.acquire() is False  # the txn's compare fails while held
        assert held.refresh() == 60
    finally:
        assert held.release() is True
    assert other.acquire() is True
    assert other.release() is True
    for lk in (held, other):
        assert lk.lease is not None
        lk.lease.revoke()


def test_etcd3gw_status_and_members(target: str, cluster: Cluster) -> None:
    cluster.leader()
    c = _client(cluster)
    st = c.status()
    assert st["version"] == ("3.4.23" if target == "etcd-3.4" else "3.5.1")
    assert _is_header(st["header"])
    names = sorted(m["name"] for m in c.members())
    assert names == sorted(m.name for m in cluster.members)


# -- raw HTTP: unary lease bindings and errors ----------------------------------------------------


def test_lease_bindings(target: str, cluster: Cluster) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    lid = str(int(time.monotonic_ns() % (1 << 40)) + 1000)
    status, headers, granted = post(url, "/v3/lease/grant", {"TTL": 30, "ID": lid})
    assert status == 200 and _is_header(granted.pop("header"))
    _success_headers(headers)
    assert granted == {"ID": lid, "TTL": "30"}
    for path in ("/v3/lease/timetolive", "/v3/kv/lease/timetolive"):
        status, _, ttl = post(url, path, {"ID": lid, "keys": True})
        assert status == 200 and ttl["ID"] == lid and ttl["grantedTTL"] == "30"
        assert 0 < int(ttl["TTL"]) <= 30 and "keys" not in ttl
    for path in ("/v3/lease/leases", "/v3/kv/lease/leases"):
        status, _, leases = post(url, path, {})
        assert status == 200 and {"ID": lid} in leases["leases"]
    status, _, revoked = post(url, "/v3/kv/lease/revoke", {"ID": lid})
    assert status == 200 and list(revoked) == ["header"]
    msg = "etcdserver: requested lease not found"
    status, _, err = post(url, "/v3/lease/revoke", {"ID": lid})
    assert (status, err) == (404, {"error": msg, "code": 5, "message": msg})
    status, _, gone = post(url, "/v3/lease/timetolive", {"ID": lid})
    assert status == 200 and gone["TTL"] == "-1"


def test_request_decoding(cluster: Cluster, prefix: str) -> None:
    url = cluster.members[0].client_url
    # Unknown fields are ignored; a truncated body is Go's "unexpected EOF".
    status, _, _ = post(url, "/v3/kv/put", {"key": b64(f"{prefix}d"), "bogus": 1})
    assert status == 200
    status, _, err = post(url, "/v3/kv/put", '{"key":')
    assert (status, err) == (400, {"error": "unexpected EOF", "code": 3,
                                   "message": "unexpected EOF"})
    status, _, text = post(url, "/v3/lease/nope", "{}")
    assert (status, text) == (404, "Not Found\n")


# -- raw HTTP: streams --------------------------------------------------------------------------


def test_keepalive_stream(target: str, cluster: Cluster) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    status, _, granted = post(url, "/v3/lease/grant", {"TTL": 40})
    lid = granted["ID"]
    missing = str(int(lid) + 1)
    s = Stream(url, "/v3/lease/keepalive", json.dumps({"ID": lid}) + json.dumps({"ID": missing}))
    try:
        assert s.status == 200 and s.headers["transfer-encoding"] == "chunked"
        _success_headers(s.headers)
        first, second, end = s.line(), s.line(), s.line()
    finally:
        s.close()
    assert _is_header(first["result"].pop("header"))
    assert first == {"result": {"ID": lid, "TTL": "40"}}
    assert _is_header(second["result"].pop("header"))
    assert second == {"result": {"ID": missing}}  # unknown lease: TTL 0, omitted
    assert end is None  # the stream ends once the body's requests are answered
    s = Stream(url, "/v3/lease/keepalive", "")
    try:
        assert s.status == 200 and s.line() is None
        assert "grpc-metadata-content-type" not in s.headers
    finally:
        s.close()
    status, _, err = post(url, "/v3/lease/keepalive", '{"ID":"x"}')
    msg = "invalid character 'x' looking for beginning of value"
    assert (status, err) == (500, {"error": msg, "code": 2, "message": msg})
    post(url, "/v3/lease/revoke", {"ID": lid})


def test_watch_stream(target: str, cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    key = b64(f"{prefix}w")
    s = Stream(url, "/v3/watch", json.dumps({"create_request": {"key": key, "prev_kv": True}}))
    try:
        assert s.status == 200
        _success_headers(s.headers)
        created = s.line()
        assert _is_header(created["result"].pop("header"))
        assert created == {"result": {"created": True}}
        post(url, "/v3/kv/put", {"key": key, "value": b64("1")})
        post(url, "/v3/kv/deleterange", {"key": key})
        put, deleted = s.line()["result"], s.line()["result"]
    finally:
        s.close()
    rev = put["header"]["revision"]
    assert put["events"] == [{"kv": {"key": key, "create_revision": rev, "mod_revision": rev,
                                     "version": "1", "value": b64("1")}}]
    drev = deleted["header"]["revision"]
    assert deleted["events"] == [{
        "type": "DELETE", "kv": {"key": key, "mod_revision": drev},
        "prev_kv": {"key": key, "create_revision": rev, "mod_revision": rev, "version": "1",
                    "value": b64("1")},
    }]
    # Create then cancel in one body: created, then canceled, then the stream stays open.
    body = json.dumps({"create_request": {"key": key, "watch_id": 7}}) + \
        json.dumps({"cancel_request": {"watch_id": 7}})
    s = Stream(url, "/v3/watch", body)
    try:
        created, canceled = s.line()["result"], s.line()["result"]
    finally:
        s.close()
    assert created["watch_id"] == "7" and created["created"] is True
    assert canceled["watch_id"] == "7" and canceled["canceled"] is True


def test_lock_and_election(cluster: Cluster, prefix: str) -> None:
    cluster.leader()
    url = cluster.members[0].client_url
    status, _, lease = post(url, "/v3/lease/grant", {"TTL": 60})
    lid = lease["ID"]
    name = b64(f"{prefix}lock")
    status, _, locked = post(url, "/v3/lock/lock", {"name": name, "lease": lid})
    assert status == 200 and _is_header(locked["header"])
    assert base64.b64decode(locked["key"]) == f"{prefix}lock/{int(lid):x}".encode()
    status, _, unlocked = post(url, "/v3/lock/unlock", {"key": locked["key"]})
    assert status == 200 and list(unlocked) == ["header"]
    msg = "etcdserver: key is not provided"
    status, _, err = post(url, "/v3/lock/unlock", {})
    assert (status, err) == (500, {"error": msg, "code": 2, "message": msg})

    election = b64(f"{prefix}el")
    status, _, camp = post(url, "/v3/election/campaign",
                           {"name": election, "value": b64("v1"), "lease": lid})
    assert status == 200
    leader = camp["leader"]
    assert leader["name"] == election and leader["lease"] == lid
    assert leader["rev"] == camp["header"]["revision"]
    # Nothing (not even the status line) is sent before the first message: observe once
    # there is a leader.
    obs = Stream(url, "/v3/election/observe", json.dumps({"name": election}))
    try:
        assert obs.status == 200
        assert obs.line()["result"]["kv"]["value"] == b64("v1")
        status, _, _ = post(url, "/v3/election/proclaim", {"leader": leader, "value": b64("v2")})
        assert status == 200
        assert obs.line()["result"]["kv"]["value"] == b64("v2")
        status, _, cur = post(url, "/v3/election/leader", {"name": election})
        assert status == 200 and cur["kv"]["value"] == b64("v2")
    finally:
        obs.close()
    status, _, _ = post(url, "/v3/election/resign", {"leader": leader})
    assert status == 200
    status, _, err = post(url, "/v3/election/leader", {"name": election})
    assert (status, err) == (500, {"error": "election: no leader", "code": 2,
                                   "message": "election: no leader"})
    msg = '"leader" field must be provided'
    status, _, err = post(url, "/v3/election/resign", {})
    assert (status, err) == (500, {"error": msg, "code": 2, "message": msg})
    post(url, "/v3/lease/revoke", {"ID": lid})


# -- auth over the gateway ----------------------------------------------------------------------


def _token(url: str, name: str, password: str) -> str:
    status, _, resp = post(url, "/v3/auth/authenticate", {"name": name, "password": password})
    assert status == 200, resp
    token: str = resp["token"]
    return token


def test_auth_over_gateway(target: str, fresh_cluster: Cluster) -> None:
    url = fresh_cluster.members[0].client_url
    for path, body in (
        ("/v3/auth/user/add", {"name": "root", "password": "rootpw"}),
        ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
        ("/v3/auth/user/add", {"name": "alice", "password": "apw"}),
        ("/v3/auth/role/add", {"name": "r1"}),
        ("/v3/auth/role/grant", {"name": "r1", "perm": {
            "permType": "READWRITE", "key": b64("/p/"), "range_end": b64("/p0")}}),
        ("/v3/auth/user/grant", {"user": "alice", "role": "r1"}),
        ("/v3/auth/enable", {}),
    ):
        status, _, resp = post(url, path, body)
        assert status == 200 and list(resp) == ["header"], (path, resp)
    empty = "etcdserver: user name is empty"
    assert post(url, "/v3/kv/range", {"key": b64("/p/k")})[::2] == (
        400, {"error": empty, "code": 3, "message": empty})
    failed = "etcdserver: authentication failed, invalid user ID or password"
    assert post(url, "/v3/auth/authenticate", {"name": "alice", "password": "bad"})[::2] == (
        400, {"error": failed, "code": 3, "message": failed})
    alice = _token(url, "alice", "apw")
    root = _token(url, "root", "rootpw")

    status, _, _ = post(url, "/v3/kv/put", {"key": b64("/p/k"), "value": b64("1")}, alice)
    assert status == 200
    denied = "etcdserver: permission denied"
    assert post(url, "/v3/kv/put", {"key": b64("/x"), "value": b64("1")}, alice)[::2] == (
        403, {"error": denied, "code": 7, "message": denied})
    invalid = "etcdserver: invalid auth token"
    assert post(url, "/v3/kv/range", {"key": b64("/p/k")}, "junk")[::2] == (
        401, {"error": invalid, "code": 16, "message": invalid})
    assert post(url, "/v3/auth/disable", {}, alice)[::2] == (
        403, {"error": denied, "code": 7, "message": denied})
    # Maintenance refuses non-admins with etcd's unconverted auth error.
    raw = "auth: permission denied"
    assert post(url, "/v3/maintenance/hash", {}, alice)[::2] == (
        500, {"error": raw, "code": 2, "message": raw})
    s = Stream(url, "/v3/maintenance/snapshot", "{}", alice)
    try:
        assert s.status == 500 and s.line() == {"error": {
            "grpc_code": 2, "http_code": 500, "message": raw,
            "http_status": "Internal Server Error"}}
    finally:
        s.close()
    # Lock and Election check their KV requests as the caller's (code Unknown, as etcd's).
    assert post(url, "/v3/lock/lock", {"name": b64("/x/lock")}, alice)[::2] == (
        500, {"error": denied, "code": 2, "message": denied})
    status, _, locked = post(url, "/v3/lock/lock", {"name": b64("/p/lock")}, alice)
    assert status == 200
    assert post(url, "/v3/lock/unlock", {"key": locked["key"]}, alice)[0] == 200
    # A watch outside alice's range is created canceled with etcd's reason.
    s = Stream(url, "/v3/watch", json.dumps({"create_request": {"key": b64("/x")}}), alice)
    try:
        refused = s.line()["result"]
    finally:
        s.close()
    assert refused["canceled"] is True and refused["cancel_reason"] == (
        "rpc error: code = PermissionDenied desc = etcdserver: permission denied")
    # The token also rides in Grpc-Metadata-Token.
    conn = _conn(url)
    try:
        conn.request("POST", "/v3/kv/range", body=json.dumps({"key": b64("/p/k")}),
                     headers={"Grpc-Metadata-Token": alice})
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["count"] == "1"
    finally:
        conn.close()

    status, _, users = post(url, "/v3/auth/user/list", {}, root)
    assert status == 200 and users["users"] == ["alice", "root"]
    status, _, role = post(url, "/v3/auth/role/get", {"role": "r1"}, root)
    assert role["perm"] == [{"permType": "READWRITE", "key": b64("/p/"),
                             "range_end": b64("/p0")}]
    status, _, st = post(url, "/v3/auth/status", {}, root)
    if target == "etcd-3.4":
        assert (status, st) == (404, "Not Found\n")
    else:
        assert status == 200 and st["enabled"] is True and st["authRevision"].isdigit()
    assert post(url, "/v3/auth/disable", {}, root)[0] == 200
    status, _, got = post(url, "/v3/kv/range", {"key": b64("/p/k")})
    assert status == 200 and got["count"] == "1"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests (under etcd3gw) honours *_proxy variables; the targets are on loopback."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
