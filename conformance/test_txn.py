"""Transactions: etcdctl's interactive txn, compare targets, limits, nested txns over gRPC."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from conformance.util import error_line, kv_pairs, revision
from harness.etcdctl import Etcdctl, Result
from harness.pytest_plugin import AetcdRunner


def txn(etcdctl: Etcdctl, compares: list[str], success: list[str], failure: list[str],
        *flags: str) -> Result:
    """Drive `etcdctl txn` in interactive mode: three blocks separated by empty lines."""
    stdin = "".join("".join(line + "\n" for line in block) + "\n"
                    for block in (compares, success, failure))
    return etcdctl("txn", *flags, input=stdin)


def test_txn_value_compare_branches(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    k = prefix + "k"
    etcdctl("put", k, "bar").check()
    ok = txn(etcdctl, [f'value("{k}") = "bar"'], [f"put {k} baz", f"get {k}"], [f"put {k} nope"])
    assert ok.check().stdout == f"SUCCESS\n\nOK\n\n{k}\nbaz\n"
    bad = txn(etcdctl, [f'value("{k}") = "bar"'], [f"put {k} x"], [f"put {k} nope"])
    assert bad.check().stdout == "FAILURE\n\nOK\n"
    assert etcdctl("get", k, "--print-value-only").check().stdout == "nope\n"


def test_txn_version_create_mod_compares(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    k = prefix + "k"
    r1 = revision(etcdctl("put", k, "a", "-w", "json"))
    r2 = revision(etcdctl("put", k, "b", "-w", "json"))
    cases = [
        (f'version("{k}") = "2"', True),
        (f'version("{k}") > "2"', False),
        (f'create("{k}") = "{r1}"', True),
        (f'create("{k}") < "{r1}"', False),
        (f'mod("{k}") = "{r2}"', True),
        (f'mod("{k}") > "{r2}"', False),
        (f'value("{k}") != "a"', True),
        (f'version("{prefix}absent") = "0"', True),
    ]
    for cmp, want in cases:
        res = txn(etcdctl, [cmp], [f"get {k}"], [], "-w", "json").check().json()
        assert bool(res.get("succeeded", False)) is want, cmp
    # All compares must hold for success.
    both = txn(etcdctl, [f'version("{k}") = "2"', f'mod("{k}") < "{r2}"'], [], [f"get {k}"])
    assert both.check().stdout.startswith("FAILURE\n")


def test_txn_single_revision_and_json(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    a, b = prefix + "a", prefix + "b"
    before = revision(etcdctl("get", a, "-w", "json"))
    doc = txn(etcdctl, [], [f"put {a} 1", f"put {b} 2", f"get {a}"], [], "-w", "json").check().json()
    assert doc["succeeded"] is True  # no compares: success branch
    assert doc["header"]["revision"] == before + 1
    puts = [r["Response"] for r in doc["responses"][:2]]
    assert all("response_put" in p for p in puts)
    rng = doc["responses"][2]["Response"]["response_range"]
    assert kv_pairs(rng) == [(a, "1")]
    got = etcdctl("get", prefix, "--prefix", "-w", "json").check().json()
    assert {kv["mod_revision"] for kv in got["kvs"]} == {before + 1}


def test_txn_max_ops(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    # --max-txn-ops defaults to 128 on every target.
    ok = txn(etcdctl, [], [f"put {prefix}k{i} v" for i in range(128)], [])
    assert ok.check().stdout.startswith("SUCCESS\n")
    assert etcdctl("get", prefix + "k127", "--print-value-only").check().stdout == "v\n"
    res = txn(etcdctl, [], [f"put {prefix}x{i} v" for i in range(129)], [])
    assert res.rc != 0
    assert error_line(res) == "Error: etcdserver: too many operations in txn request"
    assert etcdctl("get", prefix + "x0").check().stdout == ""


def test_txn_duplicate_key(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    k = prefix + "k"
    res = txn(etcdctl, [], [f"put {k} a", f"put {k} b"], [])
    assert res.rc != 0
    assert error_line(res) == "Error: etcdserver: duplicate key given in txn request"
    # A put overlapping a delete range is a duplicate too.
    res = txn(etcdctl, [], [f"del {prefix} {prefix}z", f"put {k} b"], [])
    assert error_line(res) == "Error: etcdserver: duplicate key given in txn request"
    # Reads may repeat a key.
    assert txn(etcdctl, [], [f"get {k}", f"get {k}"], []).check().stdout.startswith("SUCCESS")


def _nested(aetcd: AetcdRunner, req_factory: Any) -> Any:
    async def go(client: Any) -> Any:
        from aetcd import rpc

        return await client.kvstub.Txn(req_factory(rpc), timeout=10)

    return aetcd.run(go)


def test_nested_txn(target: str, aetcd: AetcdRunner, etcdctl: Etcdctl, prefix: str) -> None:
    k, inner = (prefix + "k").encode(), (prefix + "inner").encode()
    etcdctl("put", k.decode(), "v").check()

    def req(rpc: Any) -> Any:
        inner_txn = rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.VALUE, result=rpc.Compare.EQUAL,
                                 value=b"v")],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=inner, value=b"yes"))],
            failure=[rpc.RequestOp(request_put=rpc.PutRequest(key=inner, value=b"no"))],
        )
        return rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.VERSION, result=rpc.Compare.EQUAL,
                                 version=1)],
            success=[rpc.RequestOp(request_txn=inner_txn),
                     rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )

    resp = _nested(aetcd, req)
    assert resp.succeeded
    assert resp.responses[0].response_txn.succeeded
    assert resp.responses[1].response_range.kvs[0].value == b"v"
    assert etcdctl("get", inner.decode(), "--print-value-only").check().stdout == "yes\n"


def test_nested_txn_duplicate_key(target: str, aetcd: AetcdRunner, prefix: str) -> None:
    k = (prefix + "k").encode()

    def req(rpc: Any) -> Any:
        inner_txn = rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=b"2"))])
        return rpc.TxnRequest(success=[
            rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=b"1")),
            rpc.RequestOp(request_txn=inner_txn),
        ])

    with pytest.raises(grpc.aio.AioRpcError) as exc:
        _nested(aetcd, req)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details() == "etcdserver: duplicate key given in txn request"
