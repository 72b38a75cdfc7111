"""Revision arithmetic: fresh clusters start at revision 1, each write txn adds exactly one."""

from __future__ import annotations

from conformance.util import revision
from harness.etcdctl import Etcdctl
from harness.local import LocalCluster


def test_first_put_is_revision_2(target: str, fresh_cluster: LocalCluster) -> None:
    ctl = fresh_cluster.ctl()
    for m in fresh_cluster.members:
        st = fresh_cluster.status(m)
        assert st is not None and st["header"]["revision"] == 1
    put = ctl("put", "first", "v", "-w", "json").check().json()
    assert put["header"]["revision"] == 2
    kv = ctl("get", "first", "-w", "json").check().json()["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (2, 2, 1)


def test_revision_arithmetic(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    r0 = revision(etcdctl("get", prefix + "none", "-w", "json"))
    assert revision(etcdctl("put", prefix + "a", "1", "-w", "json")) == r0 + 1
    assert revision(etcdctl("put", prefix + "a", "2", "-w", "json")) == r0 + 2
    # A delete that removes nothing and a read do not advance the revision.
    assert revision(etcdctl("del", prefix + "zzz", "-w", "json")) == r0 + 2
    assert revision(etcdctl("get", prefix + "a", "-w", "json")) == r0 + 2
    assert revision(etcdctl("del", prefix + "a", "-w", "json")) == r0 + 3
    # Re-creating a key starts a new generation: version 1, new create_revision.
    etcdctl("put", prefix + "a", "3").check()
    kv = etcdctl("get", prefix + "a", "-w", "json").check().json()["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (r0 + 4, r0 + 4, 1)
