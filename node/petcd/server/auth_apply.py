"""Permission checks of KV writes and lease revokes at apply time (etcd 3.5.1's authApplierV3).

etcd does not refuse a Put, DeleteRange, write Txn or LeaseRevoke before proposing it: the
proposer stamps the entry's header with the caller's user name and the auth revision its token
was resolved at (`RequestHeader.username`, `auth_revision`), and every member checks the
permission when it applies the entry, against the auth store as of that entry. A permission
revoked while the request was in flight is therefore honoured: the request is refused, never
applied after the revoke. Contract (`check_entry`, etcd's authApplierV3 / authStore):

- auth disabled at apply: nothing is checked;
- no user (revision 0): "user name is empty"; an auth revision older than the store's:
  "auth: revision in header is old" (etcd 3.5.1 has no gRPC mapping for it: code Unknown;
  clientv3 3.5.1 does not retry it, etcdctl prints it); then the permission itself
  (a user deleted meanwhile: "permission denied");
- Put: WRITE on the key, the keys attached to its lease writable (checkLeasePuts), READ on the
  key for prev_kv; DeleteRange: WRITE (+READ for prev_kv); Txn: `AuthStore.check_txn`;
  LeaseRevoke: every attached key writable.

The check is deterministic (applied state and the entry only), so every member decides alike.
`REQUEST_AUTH` carries the caller's identity from the gRPC layer (`grpc_api.auth`) to
`EtcdServer.propose`, which stamps it; a request proposed without one carries no user (and is
refused when auth is on). The server's own revokes of expired leases act as root (etcd's
`AuthStore.WithRoot`): `as_root`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING

from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.server.auth_store import ROOT_USER, AuthInfo, AuthStore

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

LeaseKeys = Callable[[int], set[bytes] | None]

REQUEST_AUTH: contextvars.ContextVar[AuthInfo | None] = contextvars.ContextVar(
    "petcd_request_auth", default=None
)
"""Who the request being served is (its token's user and the auth revision it was resolved
at); None: no token."""

CHECKED_KINDS = frozenset({"put", "delete_range", "txn", "lease_revoke"})
"""The InternalRaftRequest kinds checked here (auth mutations are checked in `auth_ops`)."""


def lease_keys(server: EtcdServer) -> LeaseKeys:
    """The keys attached to a lease of `server`'s lessor now (None: no such lease)."""

    def keys(lease_id: int) -> set[bytes] | None:
        lessor = server.leases.lessor if server.leases is not None else None
        lease = lessor.lookup(lease_id) if lessor is not None else None
        return None if lease is None else set(lease.keys)

    return keys


def stamp(req: ipb.InternalRaftRequest) -> None:
    """Put the current request's identity (`REQUEST_AUTH`) in `req`'s header, unless the
    header already names a user (auth mutations stamp their own)."""
    ai = REQUEST_AUTH.get()
    if ai is not None and not req.header.username:
        req.header.username = ai.username
        req.header.auth_revision = ai.revision


def as_root(store: AuthStore) -> None:
    """Act as root from here on in this context (the server's own requests)."""
    REQUEST_AUTH.set(AuthInfo(ROOT_USER, store.revision))


def check_entry(store: AuthStore, lease_keys: LeaseKeys, kind: str,
                req: ipb.InternalRaftRequest) -> None:
    """Raise the `EtcdError` etcd's apply returns if the entry's user may not do `kind`."""
    if not store.enabled or kind not in CHECKED_KINDS:
        return
    ai = AuthInfo(req.header.username, req.header.auth_revision)
    if kind == "put":
        r = req.put
        store.is_put_permitted(ai, r.key)
        store.check_lease_puts(ai, lease_keys, r.lease)
        if r.prev_kv:
            store.is_range_permitted(ai, r.key, b"")
    elif kind == "delete_range":
        d = req.delete_range
        store.is_delete_range_permitted(ai, d.key, d.range_end)
        if d.prev_kv:
            store.is_range_permitted(ai, d.key, d.range_end)
    elif kind == "txn":
        store.check_txn(ai, req.txn)
    else:
        store.check_lease_puts(ai, lease_keys, req.lease_revoke.ID)
