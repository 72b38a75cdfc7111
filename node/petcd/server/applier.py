"""Applying KV requests to the MVCC store, with etcd 3.5's semantics.

Writes (put, delete, txn) run inside one MVCC write txn, so everything one request changes
gets a single new main revision. Reads (range, read-only txn) run against the store directly.
Invariant: a request that fails validation here changes nothing — every check that can fail
is made before the first write of the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.mvccpb import kv_pb2 as mvccpb
from petcd.mvcc.errors import CompactedError, FutureRevError
from petcd.mvcc.kv import KeyValue
from petcd.mvcc.kvstore import KVStore, WriteTxn
from petcd.mvcc.range_filter import RangeReader as Reader
from petcd.mvcc.range_filter import serve_range


class LeaseChecker(Protocol):
    def exists(self, lease_id: int) -> bool: ...


class _NoLeases:
    def exists(self, lease_id: int) -> bool:
        return False


def to_pb_kv(kv: KeyValue) -> mvccpb.KeyValue:
    return mvccpb.KeyValue(
        key=kv.key,
        create_revision=kv.create_revision,
        mod_revision=kv.mod_revision,
        version=kv.version,
        value=kv.value,
        lease=kv.lease,
    )


def _mvcc_error(exc: Exception) -> errors.EtcdError:
    if isinstance(exc, CompactedError):
        return errors.COMPACTED
    if isinstance(exc, FutureRevError):
        return errors.FUTURE_REV
    raise exc


def do_range(reader: Reader, r: pb.RangeRequest) -> pb.RangeResponse:
    """etcd's applier Range (sorting, filters, limit and `more` live in `serve_range`)."""
    try:
        out = serve_range(
            reader,
            r.key,
            r.range_end or None,
            revision=r.revision,
            limit=r.limit,
            sort_order=r.sort_order,
            sort_target=r.sort_target,
            count_only=r.count_only,
            keys_only=r.keys_only,
            min_mod_revision=r.min_mod_revision,
            max_mod_revision=r.max_mod_revision,
            min_create_revision=r.min_create_revision,
            max_create_revision=r.max_create_revision,
        )
    except (CompactedError, FutureRevError) as exc:
        raise _mvcc_error(exc) from None
    resp = pb.RangeResponse(more=out.more, count=out.count)
    resp.kvs.extend(to_pb_kv(kv) for kv in out.kvs)
    resp.header.revision = out.rev
    return resp


def _compare(c: pb.Compare, kv: KeyValue) -> bool:
    target = c.target
    which = c.WhichOneof("target_union")
    if target == pb.Compare.VALUE:
        want: object = c.value if which == "value" else b""
        have: object = kv.value
    elif target == pb.Compare.VERSION:
        want, have = (c.version if which == "version" else 0), kv.version
    elif target == pb.Compare.CREATE:
        want = c.create_revision if which == "create_revision" else 0
        have = kv.create_revision
    elif target == pb.Compare.MOD:
        want, have = (c.mod_revision if which == "mod_revision" else 0), kv.mod_revision
    elif target == pb.Compare.LEASE:
        want, have = (c.lease if which == "lease" else 0), kv.lease
    else:
        # An unknown target compares nothing (etcd: the difference stays 0).
        want = have = 0
    result = c.result
    if result == pb.Compare.EQUAL:
        return have == want
    if result == pb.Compare.NOT_EQUAL:
        return have != want
    if result == pb.Compare.GREATER:
        return bool(have > want)  # type: ignore[operator]
    if result == pb.Compare.LESS:
        return bool(have < want)  # type: ignore[operator]
    # etcd: an unknown result operator holds.
    return True


def compare_holds(reader: Reader, c: pb.Compare) -> bool:
    """All keys in the compare's range satisfy it; a missing key compares as all-zero fields,
    except that a VALUE compare on a missing key always fails (etcd)."""
    try:
        kvs = reader.range(c.key, c.range_end or None).kvs
    except (CompactedError, FutureRevError):
        return False
    if not kvs:
        if c.target == pb.Compare.VALUE:
            return False
        return _compare(c, KeyValue(key=c.key))
    return all(_compare(c, kv) for kv in kvs)


def is_read_only_txn(r: pb.TxnRequest) -> bool:
    for op in (*r.success, *r.failure):
        kind = op.WhichOneof("request")
        if kind == "request_txn":
            if not is_read_only_txn(op.request_txn):
                return False
        elif kind != "request_range":
            return False
    return True


def is_serializable_txn(r: pb.TxnRequest) -> bool:
    """Every op is a serializable range (a nested txn never is, as in etcd): etcd serves such a
    txn from local state without a ReadIndex round."""
    return all(
        op.WhichOneof("request") == "request_range" and op.request_range.serializable
        for op in (*r.success, *r.failure)
    )


def do_read_only_txn(reader: Reader, r: pb.TxnRequest) -> pb.TxnResponse:
    ok = all(compare_holds(reader, c) for c in r.compare)
    resp = pb.TxnResponse(succeeded=ok)
    resp.header.SetInParent()  # etcd: a nested txn's response carries an empty header
    for op in r.success if ok else r.failure:
        out = resp.responses.add()
        if op.WhichOneof("request") == "request_range":
            out.response_range.CopyFrom(do_range(reader, op.request_range))
        else:
            out.response_txn.CopyFrom(do_read_only_txn(reader, op.request_txn))
    return resp


class KVApplier:
    """Applies put/delete/txn to the store; the caller commits the returned revision."""

    def __init__(self, store: KVStore, leases: LeaseChecker | None = None) -> None:
        self.store = store
        self.leases: LeaseChecker = leases if leases is not None else _NoLeases()

    # -- pre-checks (no writes) -----------------------------------------------------------

    def check_put(self, txn: WriteTxn, r: pb.PutRequest, in_txn: bool = True) -> None:
        """etcd 3.5.1's order: a Put on its own checks its lease first, a Put inside a txn
        checks its key first (apply.go Put / checkRequestPut; found by tests/fuzz)."""
        if not in_txn and r.lease and not r.ignore_lease and not self.leases.exists(r.lease):
            raise errors.LEASE_NOT_FOUND
        if (r.ignore_value or r.ignore_lease) and not txn.range(r.key).kvs:
            raise errors.KEY_NOT_FOUND
        if r.lease and not r.ignore_lease and not self.leases.exists(r.lease):
            raise errors.LEASE_NOT_FOUND

    def _check_chosen(self, txn: WriteTxn, r: pb.TxnRequest, path: Iterator[bool],
                      kind: str) -> None:
        """Check every op of `kind` on the chosen branches (etcd's checkRequests)."""
        for op in r.success if next(path) else r.failure:
            k = op.WhichOneof("request")
            if k == "request_txn":
                self._check_chosen(txn, op.request_txn, path, kind)
            elif k == kind == "request_put":
                self.check_put(txn, op.request_put)
            elif k == kind == "request_range":
                self._check_range(op.request_range)

    def _check_range(self, r: pb.RangeRequest) -> None:
        rev = r.revision
        if rev > 0:
            if rev > self.store.rev:  # etcd: req.Revision > rv.Rev(), the txn's read view
                raise errors.FUTURE_REV
            if rev < self.store.compact_rev:
                raise errors.COMPACTED

    # -- writes --------------------------------------------------------------------------

    def put(self, txn: WriteTxn, r: pb.PutRequest) -> pb.PutResponse:
        resp = pb.PutResponse()
        value, lease = r.value, r.lease
        if r.prev_kv or r.ignore_value or r.ignore_lease:
            prev = txn.range(r.key).kvs
            if prev:
                if r.prev_kv:
                    resp.prev_kv.CopyFrom(to_pb_kv(prev[0]))
                if r.ignore_value:
                    value = prev[0].value
                if r.ignore_lease:
                    lease = prev[0].lease
        # etcd fills the op's own header revision (seen inside a txn's responses).
        resp.header.revision = txn.put(r.key, value, lease)
        return resp

    def delete_range(self, txn: WriteTxn, r: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
        n, prev = txn.delete_range(r.key, r.range_end or None)
        resp = pb.DeleteRangeResponse(deleted=n)
        # etcd: the txn's new revision once it changed anything, else the one it began at.
        resp.header.revision = txn.rev + 1 if (n or txn.changes) else txn.rev
        if r.prev_kv:
            resp.prev_kvs.extend(to_pb_kv(kv) for kv in prev)
        return resp

    def txn(self, txn: WriteTxn, r: pb.TxnRequest) -> pb.TxnResponse:
        """etcd 3.5.1's apply.go Txn: the branch of every (nested) txn is fixed first, on the
        state before the txn (compareToPath: a nested compare does not see the writes of the
        ops before it); then every Put of the chosen branches is checked, then every Range
        (so an unknown lease wins over a future revision wherever they are); then the ops run.
        """
        path = txn_path(txn, r)
        self._check_chosen(txn, r, iter(path), "request_put")
        self._check_chosen(txn, r, iter(path), "request_range")
        return self._run_ops(txn, r, iter(path))

    def _run_ops(self, txn: WriteTxn, r: pb.TxnRequest, path: Iterator[bool]) -> pb.TxnResponse:
        ok = next(path)
        resp = pb.TxnResponse(succeeded=ok)
        resp.header.SetInParent()  # etcd: a nested txn's response carries an empty header
        for op in r.success if ok else r.failure:
            out = resp.responses.add()
            kind = op.WhichOneof("request")
            if kind == "request_range":
                out.response_range.CopyFrom(do_range(txn, op.request_range))
            elif kind == "request_put":
                out.response_put.CopyFrom(self.put(txn, op.request_put))
            elif kind == "request_delete_range":
                out.response_delete_range.CopyFrom(self.delete_range(txn, op.request_delete_range))
            elif kind == "request_txn":
                out.response_txn.CopyFrom(self._run_ops(txn, op.request_txn, path))
        return resp


def txn_path(reader: Reader, r: pb.TxnRequest) -> list[bool]:
    """Whether each txn of `r` (itself, then the nested txns of its chosen branch, depth
    first in op order) succeeded, all compared on `reader` as it is (etcd's compareToPath)."""
    ok = all(compare_holds(reader, c) for c in r.compare)
    path = [ok]
    for op in r.success if ok else r.failure:
        if op.WhichOneof("request") == "request_txn":
            path.extend(txn_path(reader, op.request_txn))
    return path
