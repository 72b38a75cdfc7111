"""Read-only transactions: served locally when every op is a serializable range, as etcd does
(`isTxnSerializable`); otherwise they need a ReadIndex round like a linearizable get."""

from __future__ import annotations

import grpc
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc

from harness.local import LocalCluster


def _txn(url: str, serializable: bool, nested: bool = False) -> pb.TxnResponse:
    rng = pb.RequestOp(request_range=pb.RangeRequest(key=b"rot", serializable=serializable))
    op = pb.RequestOp(request_txn=pb.TxnRequest(success=[rng])) if nested else rng
    with grpc.insecure_channel(url.removeprefix("http://")) as ch:
        stub = pb_grpc.KVStub(ch)  # type: ignore[no-untyped-call]
        resp: pb.TxnResponse = stub.Txn(pb.TxnRequest(success=[op]), timeout=2.0)
        return resp


def test_serializable_read_only_txn_is_local(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    c.ctl()("put", "rot", "v").check()
    c.wait_healthy()
    survivor, *others = c.members
    # Every member has applied the put once a linearizable txn through it sees it.
    assert _txn(survivor.client_url, False).responses[0].response_range.kvs[0].value == b"v"
    for m in others:
        c.kill(m)
    local = _txn(survivor.client_url, True)
    assert local.succeeded and local.responses[0].response_range.kvs[0].value == b"v"
    for serializable, nested in ((False, False), (True, True)):
        try:
            _txn(survivor.client_url, serializable, nested)
        except grpc.RpcError:
            # Which error depends on who gives up first (etcd's own timeout reads as
            # Unknown "context deadline exceeded"); what matters is that it gave no answer.
            pass
        else:
            raise AssertionError(
                f"txn (serializable={serializable}, nested={nested}) answered without a quorum"
            )
