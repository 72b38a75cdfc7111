"""member list, endpoint status, endpoint health: contents and output formats."""

from __future__ import annotations

from conformance.util import normalize
from harness.cluster import Cluster
from harness.etcdctl import Etcdctl

SERVER_VERSION = {"etcd-3.5": "3.5.1", "etcd-3.4": "3.4.23"}


def test_member_list_json(target: str, cluster: Cluster, etcdctl: Etcdctl) -> None:
    doc = etcdctl("member", "list", "-w", "json").check().json()
    assert set(doc["header"]) == {"cluster_id", "member_id", "raft_term"}
    got = {m["name"]: (m["peerURLs"], m["clientURLs"]) for m in doc["members"]}
    want = {m.name: ([m.peer_url], [m.client_url]) for m in cluster.members}
    assert got == want
    assert len({m["ID"] for m in doc["members"]}) == 3
    # isLearner is false for all and therefore omitted.
    assert all("isLearner" not in m for m in doc["members"])


def test_member_list_table_and_simple(target: str, cluster: Cluster, etcdctl: Etcdctl) -> None:
    table = etcdctl("member", "list", "-w", "table").check().lines()
    assert normalize(table[1]) == (
        "|        ID        | STATUS  | NAME |       PEER ADDRS       |      CLIENT ADDRS      "
        "| IS LEARNER |"
    )
    assert table[0] == table[2] == table[-1]
    rows = sorted(
        [c.strip() for c in row.strip("|").split("|")][1:] for row in table[3:-1]
    )
    assert rows == sorted(
        ["started", m.name, m.peer_url, m.client_url, "false"] for m in cluster.members
    )
    simple = sorted(normalize(ln) for ln in etcdctl("member", "list").check().lines())
    assert simple == sorted(
        f"<ID>, started, {m.name}, {m.peer_url}, {m.client_url}, false" for m in cluster.members
    )


def test_endpoint_status_json(target: str, cluster: Cluster, etcdctl: Etcdctl) -> None:
    docs = etcdctl("endpoint", "status", "-w", "json").check().json()
    assert [d["Endpoint"] for d in docs] == cluster.endpoints
    ids = {d["Status"]["header"]["member_id"] for d in docs}
    leaders = {d["Status"]["leader"] for d in docs}
    assert len(ids) == 3 and len(leaders) == 1 and leaders <= ids
    for d in docs:
        st = d["Status"]
        want = SERVER_VERSION.get(target)
        assert st["version"] == want if want else st["version"].startswith("3.5.")
        assert st["raftTerm"] >= 2  # term 1 is never the first elected term with pre-vote off
        assert st["raftIndex"] >= st["raftAppliedIndex"] > 0
        assert st["dbSize"] >= st["dbSizeInUse"] > 0
        assert st["header"]["raft_term"] == st["raftTerm"]
        assert "isLearner" not in st


def test_endpoint_status_table(target: str, cluster: Cluster, etcdctl: Etcdctl) -> None:
    lines = etcdctl("endpoint", "status", "-w", "table").check().lines()
    header = [c.strip() for c in lines[1].strip("|").split("|")]
    assert header == ["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
                      "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"]
    rows = [[c.strip() for c in row.strip("|").split("|")] for row in lines[3:-1]]
    assert [r[0] for r in rows] == [m.client_url for m in cluster.members]
    assert sorted(r[4] for r in rows) == ["false", "false", "true"]
    assert {r[5] for r in rows} == {"false"}
    assert {r[9] for r in rows} == {""}


def test_endpoint_health(target: str, cluster: Cluster, etcdctl: Etcdctl,
                         etcdctl_native: Etcdctl) -> None:
    res = etcdctl("endpoint", "health").check()
    assert sorted(normalize(ln) for ln in res.lines()) == sorted(
        f"{m.client_url} is healthy: successfully committed proposal: took = T"
        for m in cluster.members
    )
    docs = etcdctl("endpoint", "health", "-w", "json").check().json()
    assert sorted(d["endpoint"] for d in docs) == sorted(m.client_url for m in cluster.members)
    assert all(d["health"] is True and "error" not in d for d in docs)
    # etcdctl echoes the endpoints as given (here with scheme).
    # etcdctl 3.4 writes the health lines to stderr, 3.5 to stdout (a client difference).
    native = etcdctl_native("endpoint", "health").check()
    out = native.stderr if cluster.impl.version == "3.4" else native.stdout
    assert sum("is healthy" in ln for ln in out.splitlines()) == 3
