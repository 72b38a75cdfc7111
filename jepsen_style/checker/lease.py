"""Lease checks: keys attached to a lease live exactly as long as the lease, with clock slack.

History (see :mod:`jepsen_style.workloads.lease`): ``grant`` (ok value ``[id, ttl]``), ``put``
(key, value the lease id), ``renew`` (value the lease id; ok value ``[id, ttl]``, ttl 0 = etcd
answered "lease not found"), ``read`` (key; ok value the key's lease id, or null when absent),
``revoke`` (value the lease id). Times are monotonic nanoseconds of the client.

What a client may conclude (etcd only ever *extends* a lease: renewals, and leader changes,
which restart the remaining TTL):

* a grant or renewal acknowledged with TTL ``t`` was applied at some instant ``a`` in its
  ``[call, ret]``; the lease expires no earlier than ``a + t``, so it is certainly alive during
  ``[ret, call + t - slack]`` unless a revoke of it was invoked before. ``slack`` absorbs clock
  rate and rounding uncertainty between client and server;
* a key written with an acknowledged Put exists from the Put's ``ret`` as long as its lease is
  alive (every key is written once).

Anomalies:

* ``vanished-early``: a read, entirely inside a certain-alive interval of the key's lease and
  after its Put was acknowledged, found the key absent;
* ``lost-early``: a renewal answered "not found" entirely inside a certain-alive interval;
* ``present-after-revoke``: a read invoked after a revoke of the key's lease was acknowledged
  still found the key;
* ``wrong-lease``: a read found the key attached to another lease;
* ``never-expired``: the key was still present in the final read, taken after every lease had
  been abandoned or revoked for longer than its TTL plus slack (``final`` given).

Pure: no I/O, no clocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jepsen_style.history import Event, pair


@dataclass
class LeaseResult:
    valid: bool
    anomalies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "anomaly_types": sorted(self.anomalies),
                "anomaly_counts": self.counts, "anomalies": self.anomalies, "stats": self.stats}


def _id_ttl(value: object) -> tuple[int, int] | None:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None


def check(events: Sequence[Event], final: Iterable[str] | None = None,
          slack_s: float = 0.25, max_examples: int = 20) -> LeaseResult:
    """Check a lease history (see the module docstring); ``final`` is the set of keys present
    in the final read (None: no final read, ``never-expired`` is not checked)."""
    slack = int(slack_s * 1e9)
    final_keys = None if final is None else set(final)
    ops = pair(events)
    anomalies: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}

    def report(kind: str, doc: dict[str, Any]) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        lst = anomalies.setdefault(kind, [])
        if len(lst) < max_examples:
            lst.append(doc)

    alive: dict[int, list[tuple[int, int]]] = {}
    revoke_invoked: dict[int, int] = {}
    revoke_acked: dict[int, int] = {}
    key_lease: dict[str, int] = {}
    put_acked: dict[str, int] = {}
    for op in ops:
        f, out = op.input.f, op.output
        if f in ("grant", "renew") and out.type == "ok":
            got = _id_ttl(out.value)
            if got is not None and got[1] > 0:
                alive.setdefault(got[0], []).append((int(op.ret), op.call + got[1] * 10**9 - slack))
        elif f == "revoke" and isinstance(op.input.value, int):
            lid = op.input.value
            revoke_invoked[lid] = min(revoke_invoked.get(lid, op.call), op.call)
            if out.type == "ok":
                revoke_acked[lid] = min(revoke_acked.get(lid, int(op.ret)), int(op.ret))
        elif f == "put" and op.input.key is not None and isinstance(op.input.value, int):
            key_lease[op.input.key] = op.input.value
            if out.type == "ok":
                put_acked[op.input.key] = int(op.ret)

    def certainly_alive(lid: int, start: int, end: float) -> tuple[int, int] | None:
        if revoke_invoked.get(lid, end + 1) <= end:
            return None
        for a, b in alive.get(lid, ()):
            if a <= start and end <= b:
                return a, b
        return None

    reads = 0
    covered = 0  # reads that fell inside a certain-alive interval (the check had teeth)
    for op in ops:
        f, out = op.input.f, op.output
        if out.type != "ok":
            continue
        if f == "read" and op.input.key is not None:
            reads += 1
            key = op.input.key
            key_lid = key_lease.get(key)
            if key_lid is None:
                continue
            lid = key_lid
            acked = put_acked.get(key)
            span = certainly_alive(lid, op.call, op.ret)
            if acked is not None and acked < op.call and span is not None:
                covered += 1
            if out.value is None:
                if acked is not None and acked < op.call and span is not None:
                    report("vanished-early", {"key": key, "lease": lid, "read": [op.call, op.ret],
                                              "alive": list(span), "process": op.process})
            elif out.value != lid:
                report("wrong-lease", {"key": key, "lease": lid, "read": out.value})
            elif revoke_acked.get(lid, op.call) < op.call:
                report("present-after-revoke", {"key": key, "lease": lid,
                                                "revoked": revoke_acked[lid],
                                                "read": [op.call, op.ret]})
        elif f == "renew" and isinstance(op.input.value, int):
            got = _id_ttl(out.value)
            if got is not None and got[1] <= 0:
                span = certainly_alive(op.input.value, op.call, op.ret)
                if span is not None:
                    report("lost-early", {"lease": op.input.value, "renew": [op.call, op.ret],
                                          "alive": list(span), "process": op.process})
    if final_keys is not None:
        for key in sorted(final_keys):
            if key in key_lease:
                report("never-expired", {"key": key, "lease": key_lease[key]})
    stats = {"leases": len(alive), "keys": len(key_lease), "acknowledged_puts": len(put_acked),
             "reads": reads, "reads_while_certainly_alive": covered, "revoked": len(revoke_acked),
             "final_keys": -1 if final_keys is None else len(final_keys)}
    return LeaseResult(not anomalies, anomalies, counts, stats)
