"""Replace a member of a `DockerCluster` in place: a fresh container and volume, same identity.

`replace_member(cluster, member)` follows etcd's "replace a failed member" procedure (runtime
reconfiguration guide), keeping everything the rest of the testbed knows the member by:

1. `member remove <id>` through the other running members (retried while etcd refuses it as
   "unhealthy cluster", e.g. right after another nemesis restarted a member);
2. force-remove the member's container and its data volume `<project>_<name>-data`;
3. `member add <name> --peer-urls=<its peer URL>` (retried while the cluster refuses, e.g.
   "unhealthy cluster" right after the remove), a new member id;
4. `docker run` of a fresh container (`<project>-<name>`, like joined members) on the same fixed
   bridge address, the same host client port and, through the Toxiproxy overlay, the same
   `extra_hosts` (so its links are the same `nodeS_to_nodeD` proxies), with an empty volume,
   `ETCD_INITIAL_CLUSTER_STATE=existing` and the `ETCD_INITIAL_CLUSTER` that `member add`
   returned.

Step 4 is the same for every bootstrap. A replacement never re-runs discovery or SRV bootstrap:
with a fresh data dir and state "existing", etcd's `--discovery` puts only the member itself in
its initial cluster (it then finds no peer to fetch the cluster from), and the v2 discovery
token is full anyway; `--discovery-srv` would give the SRV records' view, not the membership.
So it gets `--initial-cluster` instead, as a member added with `member add` does (etcd ignores
`--discovery`/`--initial-cluster` only once a data dir exists; this one is empty). With the dns
bootstrap it still resolves the members' SRV-target peer names through dnsmasq.

`wait_caught_up(cluster, member, new_id)` is the heal's check: the new id is a started voter in
`member list` (not a learner, named) and the member's revision has reached the leader's revision
read after that. Both return JSON-able records for the fault window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import docker_control as dc
from harness.cluster import ClusterError, Member

if TYPE_CHECKING:
    from harness.docker_backend import DockerCluster

ADD_TIMEOUT = 30.0
CATCH_UP_TIMEOUT = 60.0
POLL = 0.2


def _poll(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy `pred()`, polled every POLL seconds; ClusterError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise ClusterError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL)


def _members(cluster: DockerCluster, among: list[Member]) -> list[dict[str, Any]] | None:
    res = cluster.ctl(among, command_timeout="3s", timeout=10.0)("member", "list", "-w", "json")
    if res.rc != 0:
        return None
    found: list[dict[str, Any]] = res.json().get("members", [])
    return found


def _id_of(cluster: DockerCluster, member: Member, among: list[Member]) -> int:
    for m in _members(cluster, among) or []:
        if member.peer_url in (m.get("peerURLs") or []):
            return int(m["ID"])
    raise ClusterError(f"{member.name} ({member.peer_url}) is not in the member list")


def hosts_of(cluster: DockerCluster, name: str) -> dict[str, str]:
    """The `extra_hosts` of member `name`, as the compose files give them: through the overlay
    each other member's peer names lead to this member's own link proxy (<prefix>.2SD)."""
    from harness.docker_backend import CLASSIC, COMPOSE_MEMBERS, DNS_DOMAIN, FIRST_HOST

    nodes = COMPOSE_MEMBERS[:max(CLASSIC, len(cluster.members))]
    p = cluster.net_prefix
    if not cluster.proxied or name not in nodes:
        return {f"{o}.peer": f"{p}.{FIRST_HOST + i}" for i, o in enumerate(nodes)}
    s = nodes.index(name) + 1
    out: dict[str, str] = {}
    for d, other in enumerate(nodes, start=1):
        addr = cluster.address(name) if d == s else f"{p}.2{s}{d}"
        out[f"{other}.peer"] = out[f"{other}.{DNS_DOMAIN}"] = addr
    return out


def _add(cluster: DockerCluster, member: Member, among: list[Member]) -> tuple[int, str]:
    """`member add` (retried): the new id and the ETCD_INITIAL_CLUSTER to boot with."""
    last: list[str] = []

    def attempt() -> tuple[int, str] | None:
        res = cluster.ctl(among, command_timeout="5s", timeout=15.0)(
            "member", "add", member.name, f"--peer-urls={member.peer_url}", "-w", "json")
        if res.rc != 0:
            last[:] = [f"rc={res.rc} {res.stderr.strip()[-300:]}"]
            return None
        doc = res.json()
        new_id = int(doc["member"]["ID"])
        initial = ",".join(f"{m.get('name') or member.name}={url}"
                           for m in doc.get("members", []) for url in m.get("peerURLs") or [])
        return new_id, initial

    try:
        got: tuple[int, str] = _poll(attempt, ADD_TIMEOUT, f"member add {member.name}")
    except ClusterError as e:
        raise ClusterError(f"{e}: {last[0] if last else ''}") from None
    return got


def _remove(cluster: DockerCluster, name: str, old_id: int, among: list[Member]) -> None:
    """`member remove` (retried while etcd refuses, e.g. "unhealthy cluster": strict reconfig
    check right after another fault restarted a member; "member not found" means done)."""
    last: list[str] = []

    def attempt() -> bool:
        res = cluster.ctl(among, command_timeout="5s", timeout=15.0)(
            "member", "remove", format(old_id, "x"))
        if res.rc == 0 or "member not found" in res.stderr:
            return True
        last[:] = [res.stderr.strip().splitlines()[-1][-300:] if res.stderr.strip() else
                   f"rc={res.rc}"]
        return False

    try:
        _poll(attempt, ADD_TIMEOUT, f"member remove {name} ({old_id:x})")
    except ClusterError as e:
        raise ClusterError(f"{e}: {last[0] if last else ''}") from None


def replace_member(cluster: DockerCluster, member: Member) -> dict[str, Any]:
    """Replace `member` by a fresh container and volume (module docstring); returns the record
    {action, member, old_id, new_id, peer_url, container, volume} (ids in hex)."""
    name = member.name
    others = [m for m in cluster.members if m.name != name and cluster.is_running(m)]
    if not others:
        raise ClusterError(f"replacing {name} needs another running member")
    old_id = _id_of(cluster, member, others)
    _remove(cluster, name, old_id, others)
    cluster._down.add(name)  # its container goes away on purpose
    old = cluster._containers.pop(name, None)
    if old is not None:
        dc.remove_containers([old])
    volume = f"{cluster.project}_{name}-data"
    dc.remove_volume(volume)
    new_id, initial = _add(cluster, member, others)
    env = {
        "ETCD_NAME": name,
        "ETCD_LISTEN_PEER_URLS": "http://0.0.0.0:2380",
        "ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:2379",
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": member.peer_url,
        "ETCD_ADVERTISE_CLIENT_URLS": f"http://{cluster.address(name)}:2379",
        "ETCD_INITIAL_CLUSTER": initial,
        "ETCD_INITIAL_CLUSTER_STATE": "existing",
        "ETCD_INITIAL_CLUSTER_TOKEN": cluster.token,
        "ETCD_DATA_DIR": "/var/lib/etcd/data",
        "ETCD_HEARTBEAT_INTERVAL": str(cluster.heartbeat_ms),
        "ETCD_ELECTION_TIMEOUT": str(cluster.election_ms),
        "ETCDCTL_API": "3",
    }
    dns = [cluster.dns_server] if cluster.bootstrap == "dns" else []
    container = f"{cluster.project}-{name}"
    dc.remove_containers([container])  # a replacement of an earlier replacement
    cluster._joined.add(name)
    cid = dc.run_member(cluster.image, container, name, cluster._network, cluster.address(name),
                        cluster._ports[name], volume, env, hosts_of(cluster, name), dns,
                        {"org.petcd.project": cluster.project})
    cluster._containers[name] = cid
    cluster._down.discard(name)
    return {"action": "replace", "member": name, "old_id": format(old_id, "x"),
            "new_id": format(new_id, "x"), "peer_url": member.peer_url, "container": container,
            "volume": volume, "initial_cluster_state": "existing"}


def wait_caught_up(cluster: DockerCluster, member: Member, new_id: int,
                   timeout: float = CATCH_UP_TIMEOUT) -> dict[str, Any]:
    """Wait until `new_id` is a started voter and `member` has the leader's revision; returns
    {member, id, voter, revision, leader_revision, clean}."""
    others = [m for m in cluster.members if m.name != member.name and cluster.is_running(m)]

    def voter() -> bool:
        for m in _members(cluster, others) or []:
            if int(m["ID"]) == new_id:
                return bool(m.get("name")) and not m.get("isLearner", False)
        return False

    _poll(voter, timeout, f"{member.name} ({new_id:x}) to be a started voter")
    leader = cluster.leader(timeout, among=others)
    lead_st = _poll(lambda: cluster.status(leader), timeout, f"status of leader {leader.name}")
    target = int(lead_st["header"]["revision"])

    def revision() -> int | None:
        st = cluster.status(member)
        if st is None or int(st["header"]["member_id"]) != new_id:
            return None
        rev = int(st["header"]["revision"])
        return rev if rev >= target else None

    rev = _poll(revision, timeout, f"{member.name} to reach revision {target}")
    return {"member": member.name, "id": format(new_id, "x"), "voter": True, "revision": rev,
            "leader_revision": target, "clean": True}
