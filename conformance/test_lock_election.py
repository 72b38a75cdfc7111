"""Distributed locks and elections: `etcdctl lock` / `etcdctl elect` (3.5.1, which run
clientv3's concurrency package on the client side over KV, Lease and Watch) and the
v3lockpb.Lock / v3electionpb.Election gRPC services (the same algorithm run by the server),
interoperating on the same keys.

The gRPC services are driven by `node/tests/concurrency/lockctl.py` in a subprocess (its
generated stubs must not share this process with aetcd). Long-running clients (a waiting
lock, an observer) are subprocesses whose output lines are awaited with deadlines; "still
waiting" is asserted only after the waiter's own key is visible, over a bounded window.

etcd answers every failure of these services with status UNKNOWN and the message of the
error its in-process client got; the texts asserted here are etcd 3.5.1's (3.4 alike).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.cluster import Cluster
from harness.etcdctl import Etcdctl
from harness.local import LocalCluster
from tests.support.encoding import unb64
from tests.support.leases import grant_id
from tests.support.procs import Proc, ok_response, start_lockctl
from tests.support.timeouts import CONVERGE, SETTLE
from tests.support.wait import wait_for

UNKNOWN = "UNKNOWN"


class Clients:
    """Starts etcdctl and lockctl processes against one cluster; closes them all at the end."""

    def __init__(self, cluster: Cluster, ctl: Etcdctl) -> None:
        self.cluster = cluster
        self.ctl = ctl
        self.procs: list[Proc] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
        env["ETCDCTL_API"] = "3"
        return env

    def etcdctl(self, *args: str) -> Proc:
        argv = [str(self.ctl.binary), f"--endpoints={','.join(self.ctl.endpoints)}", *args]
        proc = Proc(argv, self._env())
        self.procs.append(proc)
        return proc

    def lockctl_bg(self, op: str, member: int = 0, **args: Any) -> Proc:
        proc = start_lockctl(self.cluster.members[member].client_url, op, **args)
        self.procs.append(proc)
        return proc

    def lockctl(self, op: str, member: int = 0, **args: Any) -> dict[str, Any]:
        """One unary call: {"ok": response} or {"error": {"code", "details"}}."""
        proc = self.lockctl_bg(op, member, **args)
        doc: dict[str, Any] = json.loads(proc.line())
        proc.wait()
        return doc

    def ok(self, op: str, member: int = 0, **args: Any) -> dict[str, Any]:
        return ok_response(self.lockctl(op, member, **args))

    def close(self) -> None:
        for p in self.procs:
            p.close()


@pytest.fixture
def clients(cluster: Cluster, etcdctl: Etcdctl) -> Iterator[Clients]:
    c = Clients(cluster, etcdctl)
    try:
        yield c
    finally:
        c.close()


def keys(ctl: Etcdctl, pfx: str) -> list[dict[str, Any]]:
    """The kvs under `pfx` (decoded key and value), oldest first by create revision."""
    res = ctl("get", pfx, "--prefix", "--sort-by=CREATE", "--order=ASCEND", "-w", "json").check()
    out = []
    for kv in res.json().get("kvs", []):
        kv["key"] = unb64(kv["key"])
        kv["value"] = unb64(kv.get("value", ""))
        out.append(kv)
    return out


def wait_keys(ctl: Etcdctl, pfx: str, n: int, deadline: float = SETTLE) -> list[dict[str, Any]]:
    """Poll until exactly `n` keys are under `pfx`; return them."""

    def exactly_n() -> list[dict[str, Any]] | None:
        got = keys(ctl, pfx)
        return got if len(got) == n else None

    return wait_for(exactly_n, deadline, f"exactly {n} keys under {pfx}")


def unknown(doc: dict[str, Any], details: str) -> None:
    assert doc == {"error": {"code": UNKNOWN, "details": details}}


# -- etcdctl lock ------------------------------------------------------------------------------


def test_etcdctl_lock_holds_until_released(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "mylock"
    first = clients.etcdctl("lock", name)
    key1 = first.line()
    assert key1.startswith(name + "/")
    assert first.line() == ""  # the (empty) value: display.Get prints key and value lines
    second = clients.etcdctl("lock", name)
    held = wait_keys(etcdctl, name + "/", 2)
    assert held[0]["key"] == key1 and held[0]["value"] == ""
    assert held[0]["lease"] != 0 and held[1]["lease"] != 0
    assert second.silent_for()
    first.signal(signal.SIGTERM)  # etcdctl unlocks on SIGINT/SIGTERM
    first.exits_ok()
    assert second.line() == held[1]["key"]
    assert second.line() == ""
    assert [kv["key"] for kv in keys(etcdctl, name + "/")] == [held[1]["key"]]
    second.signal(signal.SIGINT)
    second.exits_ok()
    assert keys(etcdctl, name + "/") == []


def test_etcdctl_lock_killed_holder_released_by_lease_expiry(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "mylock"
    first = clients.etcdctl("lock", "--ttl=2", name)
    key1 = first.line()
    second = clients.etcdctl("lock", name)
    wait_keys(etcdctl, name + "/", 2)
    assert second.silent_for()
    first.signal(signal.SIGKILL)  # no unlock: the key goes when its 2s lease expires
    first.wait()
    key2 = second.line(CONVERGE)
    assert key2 != key1 and key2.startswith(name + "/")
    assert [kv["key"] for kv in keys(etcdctl, name + "/")] == [key2]


def test_etcdctl_lock_exec_command(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    name = prefix + "mylock"
    res = etcdctl("lock", name, "--", "sh", "-c", 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"')
    key, rev = res.check().stdout.split()
    assert key.startswith(name + "/")
    assert int(rev) > 0
    assert keys(etcdctl, name + "/") == []  # unlocked when the command ended
    failed = etcdctl("lock", name, "--", "sh", "-c", "exit 3")
    assert failed.rc == 3
    assert keys(etcdctl, name + "/") == []


# -- etcdctl elect -----------------------------------------------------------------------------


def test_etcdctl_elect_campaign_observe_and_handover(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "myelection"
    p1 = clients.etcdctl("elect", name, "p1")
    key1 = p1.line()
    assert key1.startswith(name + "/")
    assert p1.line() == "p1"
    observer = clients.etcdctl("elect", "-l", name)
    assert (observer.line(), observer.line()) == (key1, "p1")
    p2 = clients.etcdctl("elect", name, "p2")
    cands = wait_keys(etcdctl, name + "/", 2)
    assert [kv["value"] for kv in cands] == ["p1", "p2"]
    assert p2.silent_for()
    p1.signal(signal.SIGINT)  # resigns
    p1.exits_ok()
    key2 = cands[1]["key"]
    assert (p2.line(), p2.line()) == (key2, "p2")
    assert (observer.line(), observer.line()) == (key2, "p2")
    p2.signal(signal.SIGTERM)
    p2.exits_ok()
    observer.signal(signal.SIGINT)
    observer.exits_ok()


def test_etcdctl_elect_bad_args(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    res = etcdctl("elect", prefix + "e")
    assert res.rc != 0 and "no proposal argument but -l not set" in res.stderr
    res = etcdctl("elect", "-l", prefix + "e", "p")
    assert res.rc != 0 and "proposal given but -l is set" in res.stderr


# -- v3lockpb.Lock -----------------------------------------------------------------------------


def test_grpc_lock_unlock(target: str, clients: Clients, etcdctl: Etcdctl, prefix: str) -> None:
    name = prefix + "l"
    lease = grant_id(etcdctl, 30)
    got = clients.ok("lock", name=name, lease=lease)
    key = got["key"]
    assert key == f"{name}/{lease:x}"
    kvs = keys(etcdctl, name + "/")
    assert [(kv["key"], kv["value"], int(kv["lease"])) for kv in kvs] == [(key, "", lease)]
    assert got["header"]["revision"] == kvs[0]["create_revision"]
    # re-entrant for the same lease: same key, no write
    again = clients.ok("lock", member=1, name=name, lease=lease)
    assert again["key"] == key
    assert again["header"]["revision"] >= got["header"]["revision"]
    assert keys(etcdctl, name + "/")[0]["mod_revision"] == kvs[0]["mod_revision"]
    out = clients.ok("unlock", key=key)
    assert out["header"]["revision"] > got["header"]["revision"]
    assert keys(etcdctl, name + "/") == []
    # unlocking a key that is not there is no error
    assert "revision" in clients.ok("unlock", key=key)["header"]


def test_grpc_lock_errors_and_session_lease(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    unknown(
        clients.lockctl("lock", name=prefix + "l", lease=0x7E57),
        "etcdserver: requested lease not found",
    )
    unknown(clients.lockctl("unlock", key=""), "etcdserver: key is not provided")
    # without a lease the server grants a 60s one that nobody keeps alive
    got = clients.ok("lock", name=prefix + "l")
    lease_hex = got["key"].rsplit("/", 1)[1]
    ttl = etcdctl("lease", "timetolive", lease_hex).check().stdout
    assert "granted with TTL(60s)" in ttl, ttl
    etcdctl("lease", "revoke", lease_hex).check()
    assert keys(etcdctl, prefix + "l/") == []


def test_grpc_lock_waits_for_etcdctl_holder(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "mylock"
    holder = clients.etcdctl("lock", name)
    key1 = holder.line()
    lease = grant_id(etcdctl, 30)
    waiter = clients.lockctl_bg("lock", member=2, name=name, lease=lease)
    wait_keys(etcdctl, name + "/", 2)
    assert waiter.silent_for()
    holder.signal(signal.SIGTERM)
    holder.exits_ok()
    doc = json.loads(waiter.line())
    assert doc["ok"]["key"] == f"{name}/{lease:x}" != key1
    kvs = keys(etcdctl, name + "/")
    assert [kv["key"] for kv in kvs] == [doc["ok"]["key"]]
    # acquired after waiting: the header is the one of the final read
    assert doc["ok"]["header"]["revision"] >= kvs[0]["create_revision"]


def test_grpc_lock_holder_blocks_etcdctl_until_lease_revoked(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "mylock"
    lease = grant_id(etcdctl, 60)
    key = clients.ok("lock", member=1, name=name, lease=lease)["key"]
    waiter = clients.etcdctl("lock", name)
    wait_keys(etcdctl, name + "/", 2)
    assert waiter.silent_for()
    etcdctl("lease", "revoke", f"{lease:x}").check()
    key2 = waiter.line()
    assert key2 != key and key2.startswith(name + "/")


def test_grpc_lock_cancelled_waiter_removes_its_key(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "mylock"
    holder = clients.ok("lock", name=name, lease=grant_id(etcdctl, 60))["key"]
    lease = grant_id(etcdctl, 60)
    waiter = clients.lockctl_bg("lock", member=1, name=name, lease=lease)
    wait_keys(etcdctl, name + "/", 2)
    waiter.signal(signal.SIGKILL)  # the client goes away: the server drops its queued key
    waiter.wait()
    assert [kv["key"] for kv in wait_keys(etcdctl, name + "/", 1)] == [holder]
    # a deadline does the same
    timed = clients.lockctl("lock", member=2, name=name, lease=lease, timeout=1.0)
    assert timed == {"error": {"code": "DEADLINE_EXCEEDED", "details": "Deadline Exceeded"}}
    assert [kv["key"] for kv in wait_keys(etcdctl, name + "/", 1)] == [holder]


# -- v3electionpb.Election ---------------------------------------------------------------------


def test_grpc_election_campaign_leader_proclaim_resign(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "e"
    unknown(clients.lockctl("leader", name=name), "election: no leader")
    lease = grant_id(etcdctl, 60)
    got = clients.ok("campaign", name=name, lease=lease, value="v1")
    leader = got["leader"]
    assert leader == {
        "name": name,
        "key": f"{name}/{lease:x}",
        "rev": got["header"]["revision"],
        "lease": lease,
    }
    cur = clients.ok("leader", member=1, name=name)
    assert cur["kv"] == {
        "key": leader["key"],
        "create_revision": leader["rev"],
        "mod_revision": leader["rev"],
        "version": 1,
        "value": "v1",
        "lease": lease,
    }
    assert cur["header"]["revision"] >= leader["rev"]

    hdr = clients.ok("proclaim", member=2, leader=leader, value="v2")["header"]
    kv = keys(etcdctl, name + "/")[0]
    assert (kv["value"], kv["mod_revision"], kv["version"]) == ("v2", hdr["revision"], 2)
    stale = dict(leader, rev=leader["rev"] + 1000)
    unknown(clients.lockctl("proclaim", leader=stale, value="v3"), "election: not leader")
    missing = '"leader" field must be provided'
    unknown(clients.lockctl("proclaim", value="v3"), missing)
    unknown(clients.lockctl("resign"), missing)
    unknown(
        clients.lockctl("proclaim", leader=dict(leader, lease=0x7E57), value="v3"),
        "etcdserver: requested lease not found",
    )

    # resigning with a stale claim changes nothing and is no error
    before = keys(etcdctl, name + "/")
    clients.ok("resign", leader=stale)
    assert keys(etcdctl, name + "/") == before
    out = clients.ok("resign", member=1, leader=leader)
    assert out["header"]["revision"] > hdr["revision"]
    assert keys(etcdctl, name + "/") == []
    unknown(clients.lockctl("leader", name=name), "election: no leader")


def test_grpc_campaign_again_proclaims_new_value(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "e"
    lease = grant_id(etcdctl, 60)
    first = clients.ok("campaign", name=name, lease=lease, value="a")
    same = clients.ok("campaign", name=name, lease=lease, value="a")
    assert same["leader"] == first["leader"]
    changed = clients.ok("campaign", name=name, lease=lease, value="b")
    assert changed["leader"] == first["leader"]
    kv = keys(etcdctl, name + "/")[0]
    assert (kv["value"], kv["version"]) == ("b", 2)
    # the header is the campaign txn's (taken before the proclaim)
    assert changed["header"]["revision"] < kv["mod_revision"]


def test_grpc_election_waiting_campaign_and_observe(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "e"
    observer = clients.lockctl_bg("observe", member=2, name=name)
    la, lb = grant_id(etcdctl, 60), grant_id(etcdctl, 60)
    a = clients.ok("campaign", name=name, lease=la, value="a")
    first = json.loads(observer.line())["ok"]
    assert first["kv"]["key"] == a["leader"]["key"] and first["kv"]["value"] == "a"
    # waiting for a first leader: the header revision is the leader key's mod revision
    assert first["header"]["revision"] == a["leader"]["rev"]

    b_proc = clients.lockctl_bg("campaign", member=1, name=name, lease=lb, value="b")
    wait_keys(etcdctl, name + "/", 2)
    assert b_proc.silent_for()
    pr = clients.ok("proclaim", leader=a["leader"], value="a2")
    upd = json.loads(observer.line())["ok"]
    assert (upd["kv"]["value"], upd["kv"]["version"]) == ("a2", 2)
    assert upd["header"]["revision"] == pr["header"]["revision"] == upd["kv"]["mod_revision"]

    clients.ok("resign", leader=a["leader"])
    b = json.loads(b_proc.line())["ok"]
    assert b["leader"]["key"] == f"{name}/{lb:x}" and b["leader"]["lease"] == lb
    nxt = json.loads(observer.line())["ok"]
    assert nxt["kv"]["key"] == b["leader"]["key"] and nxt["kv"]["value"] == "b"
    assert nxt["kv"]["create_revision"] == b["leader"]["rev"]
    # the campaign's header is that of its txn, not of the moment it won
    assert b["header"]["revision"] == b["leader"]["rev"]

    etcdctl("lease", "revoke", f"{lb:x}").check()  # the leader's lease ends: no leader
    unknown(clients.lockctl("leader", name=name), "election: no leader")
    c = clients.ok("campaign", name=name, lease=grant_id(etcdctl, 60), value="c")
    last = json.loads(observer.line())["ok"]
    assert last["kv"]["key"] == c["leader"]["key"] and last["kv"]["value"] == "c"
    assert observer.silent_for()


def test_grpc_cancelled_campaign_resigns(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "e"
    leader = clients.ok("campaign", name=name, lease=grant_id(etcdctl, 60), value="a")["leader"]
    waiter = clients.lockctl_bg("campaign", member=1, name=name, lease=grant_id(etcdctl, 60))
    wait_keys(etcdctl, name + "/", 2)
    waiter.signal(signal.SIGKILL)
    waiter.wait()
    assert [kv["key"] for kv in wait_keys(etcdctl, name + "/", 1)] == [leader["key"]]


def test_etcdctl_observer_sees_grpc_campaigns(
    target: str, clients: Clients, etcdctl: Etcdctl, prefix: str
) -> None:
    name = prefix + "e"
    observer = clients.etcdctl("elect", "-l", name)
    leader = clients.ok("campaign", name=name, lease=grant_id(etcdctl, 60), value="x")["leader"]
    assert (observer.line(), observer.line()) == (leader["key"], "x")
    clients.ok("proclaim", leader=leader, value="y")
    assert (observer.line(), observer.line()) == (leader["key"], "y")
    observer.signal(signal.SIGINT)
    observer.exits_ok()


QUOTA = 2_000_000
BIG = "v" * 100_000
MAX_FILL_PUTS = 200
NOSPACE = "etcdserver: mvcc: database space exceeded"


def test_grpc_lock_and_campaign_refused_without_space(
    target: str, cluster_factory: Callable[..., LocalCluster]
) -> None:
    c = cluster_factory(3, extra_args=(f"--quota-backend-bytes={QUOTA}",))
    ctl = c.ctl()
    clients = Clients(c, ctl)
    try:
        lease = grant_id(ctl, 600)
        held = clients.ok("lock", name="/q/l", lease=lease)
        leader = clients.ok("campaign", name="/q/e", lease=lease, value="v")["leader"]
        for i in range(MAX_FILL_PUTS):
            if not ctl("put", f"/fill/{i}", BIG).ok:
                break
        else:
            raise AssertionError(f"no NOSPACE after {MAX_FILL_PUTS} puts of 100 kB")
        # every write of etcd's in-process client goes through its quota check
        unknown(clients.lockctl("lock", name="/q/l2", lease=lease), NOSPACE)
        unknown(clients.lockctl("lock", name="/q/l2"), NOSPACE)  # the session's lease grant
        unknown(clients.lockctl("campaign", name="/q/e", lease=lease, value="w"), NOSPACE)
        unknown(clients.lockctl("proclaim", leader=leader, value="w"), NOSPACE)
        # reads and deletes still work
        assert clients.ok("leader", name="/q/e")["kv"]["value"] == "v"
        clients.ok("unlock", key=held["key"])
        assert keys(ctl, "/q/l/") == []
    finally:
        clients.close()
