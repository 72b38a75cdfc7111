"""The etcd v2 HTTP API (--enable-v2): the seed documents' curl examples and the v2 semantics.

Each body is compared after `norm` (indexes, expiration times and TTLs replaced) with what
etcd 3.5.1 answers; the same assertions run on every target.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.v2util import Reply, call, norm
from harness.local import LocalCluster
from tests.support.clusters import running
from tests.support.timeouts import CONVERGE, SETTLE
from tests.support.wait import wait_for, wait_until


@pytest.fixture(scope="module")
def v2(target: str) -> Iterator[LocalCluster]:
    with running(target, size=3, extra_args=("--enable-v2",)) as c:
        yield c


@pytest.fixture
def url(v2: LocalCluster) -> str:
    return v2.members[0].client_url


@pytest.fixture
def k(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own."""
    name: str = request.node.name
    return "/v2/keys/" + name.replace("[", "_").replace("]", "").replace("-", "_")


def _ok(r: Reply, status: int = 200) -> Any:
    assert r.status == status, (r.status, r.body)
    assert r.headers["content-type"] == "application/json"
    for h in ("x-etcd-index", "x-raft-index", "x-raft-term", "x-etcd-cluster-id"):
        assert h in r.headers, (h, r.headers)
    return norm(r.doc)


def _err(r: Reply, status: int, code: int, cause: str) -> dict[str, Any]:
    assert r.status == status, (r.status, r.body)
    doc: dict[str, Any] = r.doc
    assert doc["errorCode"] == code, doc
    assert doc.get("cause", "") == cause, doc
    assert r.body.endswith(b"\n")
    assert int(r.headers["x-etcd-index"]) == doc["index"]
    return doc


def test_set_get_update_delete(url: str, k: str) -> None:
    key = k[len("/v2/keys"):] + "/message"
    assert _ok(call(url, "PUT", f"{k}/message", {"value": "Hello world"}), 201) == {
        "action": "set", "node": {"key": key, "value": "Hello world", "modifiedIndex": "N",
                                  "createdIndex": "N"}}
    assert _ok(call(url, "GET", f"{k}/message")) == {
        "action": "get", "node": {"key": key, "value": "Hello world", "modifiedIndex": "N",
                                  "createdIndex": "N"}}
    assert _ok(call(url, "PUT", f"{k}/message", {"value": "Hello etcd"})) == {
        "action": "set",
        "node": {"key": key, "value": "Hello etcd", "modifiedIndex": "N", "createdIndex": "N"},
        "prevNode": {"key": key, "value": "Hello world", "modifiedIndex": "N",
                     "createdIndex": "N"}}
    assert _ok(call(url, "DELETE", f"{k}/message")) == {
        "action": "delete", "node": {"key": key, "modifiedIndex": "N", "createdIndex": "N"},
        "prevNode": {"key": key, "value": "Hello etcd", "modifiedIndex": "N",
                     "createdIndex": "N"}}
    _err(call(url, "GET", f"{k}/message"), 404, 100, key)


def test_ttl_expires(url: str, k: str) -> None:
    r = call(url, "PUT", f"{k}/foo", {"value": "bar", "ttl": "2"})
    doc = r.doc
    assert r.status == 201 and doc["node"]["ttl"] in (1, 2) and doc["node"]["expiration"]
    assert doc["node"]["expiration"].endswith("Z")
    since = doc["node"]["modifiedIndex"] + 1
    got = call(url, "GET", f"{k}/foo", query={"wait": "true", "waitIndex": str(since)},
               timeout=30)
    assert norm(got.doc) == {
        "action": "expire",
        "node": {"key": f"{k[8:]}/foo", "modifiedIndex": "N", "createdIndex": "N"},
        "prevNode": {"key": f"{k[8:]}/foo", "value": "bar", "expiration": "T",
                     "modifiedIndex": "N", "createdIndex": "N"}}
    _err(call(url, "GET", f"{k}/foo"), 404, 100, f"{k[8:]}/foo")


def test_ttl_refresh_and_clear(url: str, k: str) -> None:
    key = f"{k[8:]}/foo"
    call(url, "PUT", f"{k}/foo", {"value": "bar", "ttl": "50"})
    r = call(url, "PUT", f"{k}/foo", {"ttl": "60", "refresh": "true", "prevExist": "true"})
    assert _ok(r) == {
        "action": "update",
        "node": {"key": key, "value": "bar", "expiration": "T", "ttl": "S",
                 "modifiedIndex": "N", "createdIndex": "N"},
        "prevNode": {"key": key, "value": "bar", "expiration": "T", "ttl": "S",
                     "modifiedIndex": "N", "createdIndex": "N"}}
    assert r.doc["node"]["ttl"] > 50
    # `-d ttl= -d prevExist=true`: the TTL is removed (and the value, which was not sent)
    assert _ok(call(url, "PUT", f"{k}/foo", {"ttl": "", "prevExist": "true"}))["node"] == {
        "key": key, "value": "", "modifiedIndex": "N", "createdIndex": "N"}
    _err(call(url, "PUT", f"{k}/foo", {"value": "x", "refresh": "true"}), 400, 211,
         "A value was provided on a refresh")
    _err(call(url, "PUT", f"{k}/foo", query={"refresh": "true"}), 400, 212, "No TTL value set")


def test_in_order_keys(url: str, k: str) -> None:
    a = call(url, "POST", f"{k}/queue", {"value": "Job1"})
    b = call(url, "POST", f"{k}/queue", {"value": "Job2"})
    qkey = {"key": f"{k[8:]}/queue/QKEY", "modifiedIndex": "N", "createdIndex": "N"}
    assert _ok(a, 201) == {"action": "create", "node": {**qkey, "value": "Job1"}}
    assert _ok(b, 201) == {"action": "create", "node": {**qkey, "value": "Job2"}}
    ka, kb = a.doc["node"]["key"], b.doc["node"]["key"]
    assert ka < kb and ka.endswith(f"/{a.doc['node']['createdIndex']:020d}")
    listing = call(url, "GET", f"{k}/queue", query={"recursive": "true", "sorted": "true"})
    assert [n["key"] for n in listing.doc["node"]["nodes"]] == [ka, kb]
    assert [n["value"] for n in listing.doc["node"]["nodes"]] == ["Job1", "Job2"]


def test_directories(url: str, k: str) -> None:
    d = k[8:]
    assert _ok(call(url, "PUT", f"{k}/dir", {"dir": "true", "ttl": "30"}), 201) == {
        "action": "set", "node": {"key": f"{d}/dir", "dir": True, "expiration": "T",
                                  "ttl": "S", "modifiedIndex": "N", "createdIndex": "N"}}
    assert _ok(call(url, "PUT", f"{k}/empty", {"dir": "true"}), 201)["node"] == {
        "key": f"{d}/empty", "dir": True, "modifiedIndex": "N", "createdIndex": "N"}
    assert _ok(call(url, "DELETE", f"{k}/empty", query={"dir": "true"})) == {
        "action": "delete", "node": {"key": f"{d}/empty", "dir": True, "modifiedIndex": "N",
                                     "createdIndex": "N"},
        "prevNode": {"key": f"{d}/empty", "dir": True, "modifiedIndex": "N",
                     "createdIndex": "N"}}
    call(url, "PUT", f"{k}/full/a", {"value": "1"})
    _err(call(url, "DELETE", f"{k}/full", query={"dir": "true"}), 403, 108, f"{d}/full")
    _err(call(url, "DELETE", f"{k}/full"), 403, 102, f"{d}/full")
    _err(call(url, "PUT", f"{k}/full", {"value": "x"}), 403, 102, f"{d}/full")
    _err(call(url, "PUT", f"{k}/full/a/b", {"value": "x"}), 400, 104, f"{d}/full/a")
    assert _ok(call(url, "DELETE", f"{k}/full", query={"recursive": "true"}))["action"] == \
        "delete"
    _err(call(url, "GET", f"{k}/full/a"), 404, 100, f"{d}/full")


def test_recursive_sorted_listing_hides_underscore(url: str, k: str) -> None:
    d = k[8:]
    for name, value in (("b/x", "1"), ("a", "2"), ("_hidden", "3"), ("b/_h", "4")):
        assert call(url, "PUT", f"{k}/{name}", {"value": value}).status == 201
    got = _ok(call(url, "GET", k, query={"recursive": "true", "sorted": "true"}))
    assert got == {"action": "get", "node": {
        "key": d, "dir": True, "nodes": [
            {"key": f"{d}/a", "value": "2", "modifiedIndex": "N", "createdIndex": "N"},
            {"key": f"{d}/b", "dir": True, "nodes": [
                {"key": f"{d}/b/x", "value": "1", "modifiedIndex": "N", "createdIndex": "N"}],
             "modifiedIndex": "N", "createdIndex": "N"}],
        "modifiedIndex": "N", "createdIndex": "N"}}
    flat = _ok(call(url, "GET", k, query={"sorted": "true"}))
    assert flat["node"]["nodes"][1] == {"key": f"{d}/b", "dir": True, "modifiedIndex": "N",
                                        "createdIndex": "N"}
    assert _ok(call(url, "GET", f"{k}/_hidden"))["node"]["value"] == "3"


def test_compare_and_swap_and_delete(url: str, k: str) -> None:
    d = k[8:]
    one = call(url, "PUT", f"{k}/foo", {"value": "one"}).doc["node"]["modifiedIndex"]
    _err(call(url, "PUT", f"{k}/foo", {"value": "three"}, query={"prevExist": "false"}),
         412, 105, f"{d}/foo")
    _err(call(url, "PUT", f"{k}/foo", {"value": "three"}, query={"prevValue": "two"}),
         412, 101, "[two != one]")
    _err(call(url, "PUT", f"{k}/foo", {"value": "three"}, query={"prevIndex": "1"}),
         412, 101, f"[1 != {one}]")
    assert _ok(call(url, "PUT", f"{k}/foo", {"value": "two"}, query={"prevValue": "one"})) == {
        "action": "compareAndSwap",
        "node": {"key": f"{d}/foo", "value": "two", "modifiedIndex": "N", "createdIndex": "N"},
        "prevNode": {"key": f"{d}/foo", "value": "one", "modifiedIndex": "N",
                     "createdIndex": "N"}}
    _err(call(url, "DELETE", f"{k}/foo", query={"prevValue": "one"}), 412, 101, "[one != two]")
    assert _ok(call(url, "DELETE", f"{k}/foo", query={"prevValue": "two"})) == {
        "action": "compareAndDelete",
        "node": {"key": f"{d}/foo", "modifiedIndex": "N", "createdIndex": "N"},
        "prevNode": {"key": f"{d}/foo", "value": "two", "modifiedIndex": "N",
                     "createdIndex": "N"}}
    assert _ok(call(url, "PUT", f"{k}/new", {"value": "v"}, query={"prevExist": "false"}),
               201)["action"] == "create"


def test_data_urlencode_file(url: str, k: str) -> None:
    text = 'line1\nline2 "quoted" <&> é\n'
    r = call(url, "PUT", f"{k}/afile", {"value": text})
    assert r.status == 201
    assert r.doc["node"]["value"] == text
    assert b"\\u003c\\u0026\\u003e" in r.body  # Go's JSON escapes <, & and >
    assert call(url, "GET", f"{k}/afile").doc["node"]["value"] == text


def test_no_value_on_success(url: str, k: str) -> None:
    r = call(url, "PUT", f"{k}/n", {"value": "v"}, query={"noValueOnSuccess": "true"})
    assert r.status == 201 and r.body == b'{"action":"set"}\n'


def test_wait_for_next_change(url: str, v2: LocalCluster, k: str) -> None:
    start = call(url, "GET", "/v2/keys/").etcd_index
    got: list[Reply] = []
    other = v2.members[1].client_url
    t = threading.Thread(target=lambda: got.append(call(
        other, "GET", f"{k}/w", query={"wait": "true", "waitIndex": str(start + 1)},
        timeout=30)))
    t.start()
    call(url, "PUT", f"{k}/w", {"value": "changed"})
    t.join(30)
    assert got and got[0].status == 200, got
    assert got[0].headers.get("transfer-encoding") == "chunked"
    assert norm(got[0].doc) == {"action": "set", "node": {
        "key": f"{k[8:]}/w", "value": "changed", "modifiedIndex": "N", "createdIndex": "N"}}
    # an index still in the history answers at once with the event at or after it
    again = call(url, "GET", f"{k}/w", query={"wait": "true", "waitIndex": str(start + 1)})
    assert again.doc == got[0].doc


def test_recursive_wait_sees_nested_change(url: str, k: str) -> None:
    start = call(url, "GET", "/v2/keys/").etcd_index
    got: list[Reply] = []
    t = threading.Thread(target=lambda: got.append(call(
        url, "GET", k, query={"wait": "true", "recursive": "true",
                              "waitIndex": str(start + 1)}, timeout=30)))
    t.start()
    call(url, "PUT", f"{k}/a/b/c", {"value": "deep"})
    t.join(30)
    assert got and got[0].doc["node"]["key"] == f"{k[8:]}/a/b/c"


def test_quorum_read_on_another_member(v2: LocalCluster, k: str) -> None:
    a, b = v2.members[0].client_url, v2.members[2].client_url
    call(a, "PUT", f"{k}/q", {"value": "replicated"})
    assert call(b, "GET", f"{k}/q", query={"quorum": "true"}).doc["node"]["value"] == \
        "replicated"


def test_request_errors(url: str, k: str) -> None:
    _err(call(url, "PUT", f"{k}/x", {"value": "x"}, query={"wait": "true"}), 400, 209,
         '"wait" can only be used with GET requests')
    _err(call(url, "PUT", f"{k}/x", {"value": "x"}, query={"ttl": "abc"}), 400, 202,
         'invalid value for "ttl"')
    _err(call(url, "PUT", f"{k}/x", {"value": "x"}, query={"prevIndex": "abc"}), 400, 203,
         'invalid value for "prevIndex"')
    _err(call(url, "PUT", f"{k}/x", {"value": "x", "prevValue": ""}), 400, 201,
         '"prevValue" cannot be empty')
    _err(call(url, "PUT", "/v2/keys/", {"value": "x"}), 400, 107, "/")
    _err(call(url, "DELETE", "/v2/keys/"), 400, 107, "/")
    r = call(url, "PATCH", f"{k}/x")
    assert r.status == 405 and r.body == b"Method Not Allowed\n"
    assert r.headers["allow"] == "HEAD,GET,PUT,POST,DELETE"


def test_members_and_stats(v2: LocalCluster, url: str) -> None:
    r = call(url, "GET", "/v2/members")
    assert r.status == 200 and "x-etcd-cluster-id" in r.headers
    got = sorted(r.doc["members"], key=lambda m: m["name"])
    assert [(m["name"], m["peerURLs"], m["clientURLs"]) for m in got] == [
        (m.name, [m.peer_url], [m.client_url]) for m in sorted(v2.members, key=lambda m: m.name)]
    leader = call(url, "GET", "/v2/members/leader")
    assert leader.status == 200 and leader.doc["id"] in {m["id"] for m in got}
    assert call(url, "GET", "/v2/members/zz", ).doc == {"message": "Not found"}
    bad = call(url, "POST", "/v2/members", body=b'{"peerURLs":["http://127.0.0.1:1"]}',
               content_type="application/x-www-form-urlencoded")
    assert bad.status == 415
    assert bad.doc == {"message": "Bad Content-Type application/x-www-form-urlencoded, "
                                  "accept application/json"}
    assert call(url, "DELETE", "/v2/members/zz").doc == {"message": "No such member: zz"}
    me = call(url, "GET", "/v2/stats/self").doc
    assert me["name"] == v2.members[0].name and me["state"] in ("StateLeader", "StateFollower")
    assert set(me) >= {"id", "startTime", "leaderInfo", "recvAppendRequestCnt"}
    assert set(call(url, "GET", "/v2/stats/store").doc) >= {"getsSuccess", "setsSuccess",
                                                            "expireCount", "watchers"}
    lead_url = next(m.client_url for m in v2.members
                    if call(m.client_url, "GET", "/v2/stats/self").doc["state"] == "StateLeader")
    lead = call(lead_url, "GET", "/v2/stats/leader").doc
    assert len(lead["followers"]) == 2
    follower = next(m.client_url for m in v2.members if m.client_url != lead_url)
    assert call(follower, "GET", "/v2/stats/leader").status == 403


def test_members_add_and_remove(v2: LocalCluster, url: str) -> None:
    taken = json.dumps({"peerURLs": [v2.members[1].peer_url]}).encode()

    def post(body: bytes) -> Reply | None:
        # etcd refuses membership changes (500) until every member has been connected for 5s.
        r = call(url, "POST", "/v2/members", body=body, content_type="application/json")
        return None if r.status == 500 else r

    dup = wait_for(lambda: post(taken), SETTLE, "the member add to be judged")
    assert dup.status == 409 and dup.doc == {"message": "membership: peerURL exists"}
    r = wait_for(lambda: post(b'{"peerURLs":["http://127.0.0.1:1"]}'), SETTLE, "the member add")
    assert r.status == 201, r.body
    assert r.doc["name"] == "" and r.doc["clientURLs"] == [] and \
        r.doc["peerURLs"] == ["http://127.0.0.1:1"]
    mid = r.doc["id"]
    assert call(url, "DELETE", f"/v2/members/{mid}").status == 204
    gone = call(url, "DELETE", f"/v2/members/{mid}")
    assert gone.status == 410 and gone.doc == {"message": f"Member permanently removed: {mid}"}


def test_v2_off_by_default(target: str) -> None:
    with running(target, size=1) as c:
        r = call(c.members[0].client_url, "GET", "/v2/keys/")
        assert r.status == 404 and r.body == b"404 page not found\n"


def test_watch_sees_ttl_expiry_across_members(v2: LocalCluster, k: str) -> None:
    a, b = v2.members[0].client_url, v2.members[1].client_url
    r = call(a, "PUT", f"{k}/short", {"value": "x", "ttl": "1"})
    idx = r.doc["node"]["modifiedIndex"]
    wait_until(lambda: call(b, "GET", f"{k}/short").status == 404, CONVERGE,
               "the key to expire on another member")
    ev = call(b, "GET", f"{k}/short", query={"wait": "true", "waitIndex": str(idx + 1)}).doc
    assert ev["action"] == "expire"
