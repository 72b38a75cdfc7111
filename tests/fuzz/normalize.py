"""Answers made comparable across two clusters: ids masked, revisions relative, TTLs coarse.

:class:`Norm` walks a decoded answer (protobuf messages as ``MessageToDict`` with proto field
names, or gateway JSON) and rewrites, by field name:
- revisions (``revision``, ``create_revision``, ``mod_revision``, ``compact_revision``,
  ``compactRevision`` ...) to ``value - base`` (``base`` = the sequence's start revision; 0 and
  absent stay as they are, since etcd gives 0 a meaning);
- ids that differ by construction: ``member_id``, ``cluster_id``, ``raft_term``, member
  ``ID``/``peerURLs``/``clientURLs``, auth ``token`` -> ``"<masked>"``;
- lease ids -> ``"L<n>"`` (the n-th lease this server granted in the sequence; the map is per
  server, filled by the executor), unknown ids stay numbers;
- a remaining lease ``TTL`` -> ``"ttl-ok"`` when within 5 s of the granted TTL (time passes).
int64 values the gateway sends as strings are compared as ints.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

REV_FIELDS = frozenset({"revision", "create_revision", "mod_revision", "compact_revision",
                        "compactRevision", "hash_revision", "min_mod_revision"})
MASKED = frozenset({"member_id", "cluster_id", "raft_term", "token", "peerURLs", "clientURLs",
                    "raftIndex", "raftTerm", "leader", "dbSize", "dbSizeInUse", "raftAppliedIndex"})
LEASE_FIELDS = frozenset({"ID", "lease", "id"})


class Norm:
    """Normalizer for one server in one sequence."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.leases: dict[int, str] = {}  # real lease id -> "L<n>"

    def lease_name(self, lid: int) -> str:
        if lid not in self.leases:
            self.leases[lid] = f"L{len(self.leases)}"
        return self.leases[lid]

    def msg(self, m: Message) -> Any:
        return self.doc(MessageToDict(m, preserving_proto_field_name=True))

    def doc(self, d: Any, parent: str = "") -> Any:
        if isinstance(d, dict):
            out: dict[str, Any] = {}
            granted = d.get("grantedTTL", d.get("granted_ttl"))
            for k, v in d.items():
                out[k] = self.field(k, v, parent, granted)
            return out
        if isinstance(d, list):
            return [self.doc(x, parent) for x in d]
        return d

    def field(self, k: str, v: Any, parent: str, granted: Any) -> Any:
        if k in MASKED:
            return "<masked>"
        if k in REV_FIELDS and _is_int(v):
            n = int(v)
            return n - self.base if n > 0 else n
        if k in LEASE_FIELDS and _is_int(v):
            n = int(v)
            if parent in ("members", "member"):
                return "<masked>"
            return self.leases.get(n, n) if n else 0
        if k == "leases" and isinstance(v, list):
            return sorted(str(self.field("ID", x.get("ID", 0), "", None)) for x in v)
        if k == "TTL" and _is_int(v) and granted is not None and _is_int(granted):
            t, g = int(v), int(granted)
            return "ttl-ok" if 0 < t <= g and g - t <= 5 else t
        if k in ("members", "member") and isinstance(v, list | dict):
            return self.doc(v, k)
        return self.doc(v, parent)


def _is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, str) and v.lstrip("-").isdigit()
