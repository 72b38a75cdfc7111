"""Cluster membership: the members the cluster has agreed on through Raft.

Invariant: the membership on every member is a function of the applied Raft log (conf-change
entries and published attributes), persisted in the backend in the same batch as the applied
index, so a restarted member recovers exactly the membership it had applied. Removed member IDs
are remembered forever so a removed member can never rejoin under its old ID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from petcd.storage import buckets
from petcd.storage.backend import Backend, Batch

_CLUSTER_ID_KEY = b"clusterID"


@dataclass(slots=True)
class Member:
    """One member. `name` and `client_urls` are empty until the member publishes them."""

    id: int
    peer_urls: list[str]
    name: str = ""
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "id": self.id,
                "peerURLs": self.peer_urls,
                "name": self.name,
                "clientURLs": self.client_urls,
                "isLearner": self.is_learner,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Member:
        d = json.loads(raw)
        return cls(
            id=int(d["id"]),
            peer_urls=list(d["peerURLs"]),
            name=str(d.get("name", "")),
            client_urls=list(d.get("clientURLs", [])),
            is_learner=bool(d.get("isLearner", False)),
        )


def _id_key(member_id: int) -> bytes:
    return member_id.to_bytes(8, "big")


class Membership:
    """The applied membership of one cluster, loaded from and saved to a backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.cluster_id = 0
        self.members: dict[int, Member] = {}
        self.removed: set[int] = set()
        self.reload()

    def reload(self) -> None:
        """Re-read everything from the backend (after a snapshot restore)."""
        raw = self.backend.get(buckets.CLUSTER, _CLUSTER_ID_KEY)
        self.cluster_id = int.from_bytes(raw, "big") if raw else 0
        self.members = {
            int.from_bytes(k, "big"): Member.from_json(v)
            for k, v in self.backend.iterate(buckets.MEMBERS)
        }
        self.removed = {
            int.from_bytes(k, "big") for k, _ in self.backend.iterate(buckets.MEMBERS_REMOVED)
        }

    # -- queries ---------------------------------------------------------------------------

    def sorted_members(self) -> list[Member]:
        return [self.members[i] for i in sorted(self.members)]

    def voters(self) -> list[int]:
        return sorted(i for i, m in self.members.items() if not m.is_learner)

    def peer_url_owner(self, url: str) -> int | None:
        for m in self.members.values():
            if url in m.peer_urls:
                return m.id
        return None

    # -- changes (each writes into the caller's batch) ----------------------------------------

    def set_cluster_id(self, cluster_id: int, batch: Batch) -> None:
        self.cluster_id = cluster_id
        batch.put(buckets.CLUSTER, _CLUSTER_ID_KEY, cluster_id.to_bytes(8, "big"))

    def add(self, member: Member, batch: Batch) -> None:
        """Add or (for a learner being promoted, or a replayed add) overwrite a member."""
        old = self.members.get(member.id)
        if old is not None:
            # A replayed add must not wipe attributes the member already published.
            member.name = member.name or old.name
            member.client_urls = member.client_urls or old.client_urls
        self.members[member.id] = member
        batch.put(buckets.MEMBERS, _id_key(member.id), member.to_json())

    def promote(self, member_id: int, batch: Batch) -> None:
        m = self.members.get(member_id)
        if m is not None:
            m.is_learner = False
            batch.put(buckets.MEMBERS, _id_key(m.id), m.to_json())

    def remove(self, member_id: int, batch: Batch) -> None:
        self.members.pop(member_id, None)
        self.removed.add(member_id)
        batch.delete(buckets.MEMBERS, _id_key(member_id))
        batch.put(buckets.MEMBERS_REMOVED, _id_key(member_id), b"removed")

    def update_peer_urls(self, member_id: int, peer_urls: list[str], batch: Batch) -> None:
        m = self.members.get(member_id)
        if m is not None:
            m.peer_urls = list(peer_urls)
            batch.put(buckets.MEMBERS, _id_key(m.id), m.to_json())

    def set_attributes(
        self, member_id: int, name: str, client_urls: list[str], batch: Batch
    ) -> None:
        m = self.members.get(member_id)
        if m is not None:
            m.name = name
            m.client_urls = list(client_urls)
            batch.put(buckets.MEMBERS, _id_key(m.id), m.to_json())
