"""The fuzzer's operations and the Hypothesis strategies that generate sequences of them.

An operation is a JSON-able dict with a ``kind`` (see :data:`KINDS`) and its parameters, so a
shrunk sequence can be saved as a regression case (``regressions/*.json``) and replayed as is.
Bytes (keys, values) are latin-1 strings: every byte value survives JSON. Values are given by
size (``value_size``), never spelled out, so cases near the request-size limit stay small.

Revisions in an operation are *relative* to the sequence's start revision (``rel``), so a case
means the same thing whatever history the servers have behind it; ``0`` keeps etcd's meaning
("latest" / "no bound") where the field has one.

What is left out of generation on purpose, and why:
- lease TTLs below 30 s: a lease expiring during a sequence makes the answer depend on timing
  (etcd's minimum TTL is about 2 s with our heartbeat);
- watch progress notifications and ``progress_notify``: timing;
- auth sequences are self-contained: one ``auth`` operation sets up root, enables auth, runs
  its steps with tokens and always ends with ``auth disable`` and deletes what it made.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st

Op = dict[str, Any]

MAX_REQUEST_BYTES = 1572864  # --max-request-bytes default (1.5 MiB)
GRPC_MAX_RECV = MAX_REQUEST_BYTES + 512 * 1024  # etcd's gRPC receive limit (request + overhead)
MAX_TXN_OPS = 128  # --max-txn-ops default
MAX_LEASE_TTL = 9_000_000_000
KNOWN = os.environ.get("FUZZ_KNOWN", "") in ("1", "yes", "true")
"""Also generate inputs of known, recorded findings (see the module docstring)."""

KINDS = ("put", "range", "delete", "txn", "lease_grant", "lease_revoke", "lease_keepalive",
         "lease_ttl", "lease_leases", "watch", "compact", "member_list", "auth", "gw", "v2")


# A small key space, so operations collide; "\x00" and "\xff" are etcd's range sentinels.
KEYS = ("a", "b", "c", "a/1", "a/2", "b/x", "\x00", "\xff", "\xff\xff", "é", "a" * 200)
key = st.sampled_from(KEYS)
# range_end: none, a prefix end, the "everything from key" sentinel, or another key.
range_end = st.sampled_from(("", "", "\x00", "b", "c", "a0", "\xff", "z"))
# Sizes near the limits: request size (1.5 MiB; the InternalRaftRequest adds some bytes and a
# request id whose varint length varies, so the cases sit 64 bytes either side) and the gRPC
# receive limit (2 MiB).
value_size = st.one_of(
    st.sampled_from((0, 1, 3, 100, 4096)),
    st.sampled_from((MAX_REQUEST_BYTES - 64, MAX_REQUEST_BYTES + 64, GRPC_MAX_RECV + 64)),
)
small_value_size = st.sampled_from((0, 1, 3, 100))
rel_rev = st.sampled_from((0, 0, 1, 2, 3, 5, 50, -1))
lease_slot = st.sampled_from((None, None, 0, 1, 9))  # 9: a slot never granted -> id 9999
odd_enum = st.sampled_from((0, 1, 2, 3, 4, 7, 9))


@st.composite
def put(draw: st.DrawFn, small: bool = False) -> Op:
    return {
        "kind": "put", "key": draw(key),
        "value_size": draw(small_value_size if small else value_size),
        "lease": draw(lease_slot), "prev_kv": draw(st.booleans()),
        "ignore_value": draw(st.booleans()) if not small else False,
        "ignore_lease": draw(st.booleans()) if not small else False,
    }


@st.composite
def range_(draw: st.DrawFn) -> Op:
    return {
        "kind": "range", "key": draw(key), "range_end": draw(range_end),
        "limit": draw(st.sampled_from((0, 0, 1, 2, -1, 1000))),
        "revision": draw(rel_rev),
        "sort_order": draw(st.sampled_from((0, 0, 1, 2, 5))),
        # No unknown sort target: etcd 3.5.1 sorts with a nil sorter there (a panic).
        "sort_target": draw(st.sampled_from((0, 0, 1, 2, 3, 4))),
        "serializable": draw(st.booleans()), "keys_only": draw(st.booleans()),
        "count_only": draw(st.booleans()),
        "min_mod_revision": draw(st.sampled_from((0, 0, 1, 3))),
        "max_mod_revision": draw(st.sampled_from((0, 0, 1, 3))),
        "min_create_revision": draw(st.sampled_from((0, 0, 1))),
        "max_create_revision": draw(st.sampled_from((0, 0, 2))),
    }


@st.composite
def delete(draw: st.DrawFn) -> Op:
    return {"kind": "delete", "key": draw(key), "range_end": draw(range_end),
            "prev_kv": draw(st.booleans())}


@st.composite
def compare(draw: st.DrawFn) -> Op:
    return {"key": draw(key), "range_end": draw(st.sampled_from(("", "", "\x00", "b"))),
            "target": draw(odd_enum), "result": draw(odd_enum),
            "value": draw(st.sampled_from(("", "v", "x" * 3))),
            "number": draw(st.sampled_from((0, 1, 2, -1)))}


def request_op(depth: int) -> st.SearchStrategy[Op]:
    """One RequestOp of a txn: range, small put, delete, or (depth permitting) a nested txn."""
    leaves: list[st.SearchStrategy[Op]] = [range_(), put(small=True), delete()]
    if depth > 0:
        leaves.append(txn(depth - 1))
    return st.one_of(*leaves)


@st.composite
def txn(draw: st.DrawFn, depth: int = 3) -> Op:
    big = draw(st.sampled_from((None, None, None, None, None, MAX_TXN_OPS, MAX_TXN_OPS + 1)))
    if big is not None:  # the --max-txn-ops boundary: distinct keys, all ranges or all puts
        what = draw(st.sampled_from(("range", "put")))
        success = [{"kind": "range", "key": f"t/{i}"} if what == "range" else
                   {"kind": "put", "key": f"t/{i}", "value_size": 1} for i in range(big)]
        return {"kind": "txn", "compare": [], "success": success, "failure": []}
    return {
        "kind": "txn",
        "compare": draw(st.lists(compare(), max_size=3)),
        "success": draw(st.lists(request_op(depth), max_size=3)),
        "failure": draw(st.lists(request_op(depth), max_size=3)),
    }


@st.composite
def lease_grant(draw: st.DrawFn) -> Op:
    return {"kind": "lease_grant", "ttl": draw(st.sampled_from((30, 600, MAX_LEASE_TTL + 1))),
            "id": draw(st.sampled_from((0, 0, 0, 42, -1)))}


@st.composite
def lease_use(draw: st.DrawFn, kind: str) -> Op:
    op: Op = {"kind": kind, "lease": draw(st.sampled_from((0, 1, 9)))}
    if kind == "lease_ttl":
        op["keys"] = draw(st.booleans())
    return op


@st.composite
def watch(draw: st.DrawFn) -> Op:
    return {"kind": "watch", "key": draw(key), "range_end": draw(range_end),
            "start": draw(st.sampled_from((0, 1, 2, -1, -50))), "prev_kv": draw(st.booleans()),
            # 5: an unknown filter value, ignored by etcd (regressions/watch-unknown-filter.json)
            "filters": draw(st.lists(st.sampled_from((0, 1, 5)), max_size=2)),
            "fragment": draw(st.booleans())}


@st.composite
def compact(draw: st.DrawFn) -> Op:
    return {"kind": "compact", "revision": draw(st.sampled_from((0, 1, 2, -1, 100))),
            "physical": draw(st.booleans())}


AUTH_STEPS = ("put-own", "put-other", "range-own", "range-all", "no-token", "bad-password",
              "revoke-perm", "user-list", "role-get")


@st.composite
def auth(draw: st.DrawFn) -> Op:
    """A self-contained auth session: root setup (parts may be left out, so enabling fails the
    way etcd fails it), a user with a role on key range [a, b), steps, and the closing disable."""
    return {"kind": "auth",
            "root_user": draw(st.booleans()) or draw(st.booleans()),
            "root_role": draw(st.booleans()) or draw(st.booleans()),
            "perm_type": draw(st.sampled_from((0, 1, 2, 5))),
            "steps": draw(st.lists(st.sampled_from(AUTH_STEPS), max_size=5))}


GW_PATHS = ("/v3/kv/range", "/v3/kv/put", "/v3/kv/deleterange", "/v3/kv/txn",
            "/v3/lease/grant", "/v3/lease/revoke", "/v3/lease/timetolive", "/v3/lease/leases",
            "/v3/kv/compaction", "/v3/cluster/member/list", "/v3/maintenance/status-bogus")


@st.composite
def gateway_body(draw: st.DrawFn) -> Op:
    """A gateway call: the body is a generated request in grpc-gateway JSON, `{}`, or
    something malformed (bad JSON, badly padded base64, a wrong JSON type, null)."""
    forms = ["request", "request", "empty", "bad-json", "bad-base64", "wrong-type", "null"]
    path = draw(st.sampled_from(GW_PATHS))
    inner: Op
    if path == "/v3/kv/put":
        inner = draw(put())
    elif path == "/v3/kv/range":
        inner = draw(range_())
    elif path == "/v3/kv/deleterange":
        inner = draw(delete())
    elif path == "/v3/kv/txn":
        inner = draw(txn(depth=1))
    elif path == "/v3/lease/grant":
        inner = draw(lease_grant())
    elif path in ("/v3/lease/revoke", "/v3/lease/timetolive"):
        inner = draw(lease_use("lease_ttl"))
    elif path == "/v3/kv/compaction":
        inner = draw(compact())
    else:
        inner = {"kind": "none"}
    return {"kind": "gw", "path": path, "form": draw(st.sampled_from(forms)), "req": inner}


V2_ACTIONS = ("set", "get", "get-recursive", "delete", "delete-dir", "mkdir", "cas-value",
              "cas-exist", "create-in-order", "get-sorted")


@st.composite
def v2(draw: st.DrawFn) -> Op:
    return {"kind": "v2", "action": draw(st.sampled_from(V2_ACTIONS)),
            "key": draw(st.sampled_from(("a", "b", "d", "d/x", "d/y/z", "%41", "a%2Fb"))),
            "value": draw(st.sampled_from(("", "v", "w", "x" * 100)))}


operation: st.SearchStrategy[Op] = st.one_of(
    put(), range_(), delete(), txn(), lease_grant(), lease_use("lease_revoke"),
    lease_use("lease_keepalive"), lease_use("lease_ttl"), st.just({"kind": "lease_leases"}),
    watch(), compact(), st.just({"kind": "member_list"}), auth(), gateway_body(), v2(),
)

sequence: st.SearchStrategy[list[Op]] = st.lists(operation, min_size=1, max_size=12)
"""A request sequence: what one example runs on both servers."""


def weight(op: Op) -> int:
    """How many requests an operation sends (for the summary's request count)."""
    if op["kind"] == "auth":
        return 12 + len(op["steps"])
    if op["kind"] == "watch":
        return 2
    return 1
