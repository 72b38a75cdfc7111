"""put / get / del through etcdctl 3.5.1: flags, output formats and error strings."""

from __future__ import annotations

from conformance.util import error_line, kv_pairs, revision
from harness.etcdctl import Etcdctl
from tests.support.encoding import b64


def _fill(etcdctl: Etcdctl, prefix: str, items: list[tuple[str, str]]) -> list[int]:
    """Put items in order; return the revision each put created."""
    return [revision(etcdctl("put", prefix + k, v, "-w", "json")) for k, v in items]


def test_put_get_simple(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    put = etcdctl("put", prefix + "k", "hello world").check()
    assert put.stdout == "OK\n"
    got = etcdctl("get", prefix + "k").check()
    assert got.stdout == f"{prefix}k\nhello world\n"
    assert etcdctl("get", prefix + "k", "--print-value-only").check().stdout == "hello world\n"
    assert etcdctl("get", prefix + "missing").check().stdout == ""


def test_get_json_fields(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    r1 = revision(etcdctl("put", prefix + "k", "v1", "-w", "json"))
    r2 = revision(etcdctl("put", prefix + "k", "v2", "-w", "json"))
    assert r2 == r1 + 1
    doc = etcdctl("get", prefix + "k", "-w", "json").check().json()
    assert set(doc["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
    assert doc["header"]["revision"] >= r2
    assert doc["count"] == 1
    assert "more" not in doc  # false is omitted
    (kv,) = doc["kvs"]
    assert kv == {
        "key": b64(prefix + "k"),
        "create_revision": r1,
        "mod_revision": r2,
        "version": 2,
        "value": b64("v2"),
    }


def test_get_prefix_and_range(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    _fill(etcdctl, prefix, [("a/1", "x"), ("a/2", "y"), ("a/3", "z"), ("b", "w")])
    doc = etcdctl("get", prefix + "a/", "--prefix", "-w", "json").check().json()
    assert kv_pairs(doc) == [(prefix + "a/1", "x"), (prefix + "a/2", "y"), (prefix + "a/3", "z")]
    # [key, range_end)
    res = etcdctl("get", prefix + "a/2", prefix + "b").check()
    assert res.lines() == [prefix + "a/2", "y", prefix + "a/3", "z"]


def test_get_from_key(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    _fill(etcdctl, prefix, [("a", "1"), ("b", "2"), ("c", "3")])
    res = etcdctl("get", prefix + "b", "--from-key", "--keys-only", "--limit=2").check()
    assert [ln for ln in res.lines() if ln] == [prefix + "b", prefix + "c"]


def test_get_rev(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    r1, r2, _ = _fill(etcdctl, prefix, [("k", "v1"), ("k", "v2"), ("k", "v3")])
    assert etcdctl("get", prefix + "k", f"--rev={r1}", "--print-value-only").check().stdout == "v1\n"
    doc = etcdctl("get", prefix + "k", f"--rev={r2}", "-w", "json").check().json()
    assert kv_pairs(doc) == [(prefix + "k", "v2")]
    assert doc["kvs"][0]["version"] == 2
    # Before the key existed there is nothing.
    assert etcdctl("get", prefix + "k", f"--rev={r1 - 1}").check().stdout == ""


def test_get_limit_more_count(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    _fill(etcdctl, prefix, [("a", "1"), ("b", "2"), ("c", "3")])
    doc = etcdctl("get", prefix, "--prefix", "--limit=2", "-w", "json").check().json()
    assert [k for k, _ in kv_pairs(doc)] == [prefix + "a", prefix + "b"]
    assert doc["more"] is True
    assert doc["count"] == 3


def test_get_sort_order(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    # Created in order b, a, c; values chosen so every sort target gives a different order.
    _fill(etcdctl, prefix, [("b", "2"), ("a", "3"), ("c", "1"), ("a", "3x")])

    def keys(*flags: str) -> list[str]:
        res = etcdctl("get", prefix, "--prefix", "--keys-only", *flags).check()
        return [ln.removeprefix(prefix) for ln in res.lines() if ln]

    assert keys() == ["a", "b", "c"]
    assert keys("--order=DESCEND") == ["c", "b", "a"]
    assert keys("--sort-by=CREATE") == ["b", "a", "c"]
    assert keys("--sort-by=CREATE", "--order=DESCEND") == ["c", "a", "b"]
    assert keys("--sort-by=MODIFY") == ["b", "c", "a"]
    assert keys("--sort-by=VALUE") == ["c", "b", "a"]
    assert keys("--sort-by=VERSION", "--order=DESCEND")[0] == "a"
    assert keys("--sort-by=KEY", "--order=ASCEND") == ["a", "b", "c"]


def test_get_keys_only(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    _fill(etcdctl, prefix, [("a", "1"), ("b", "2")])
    res = etcdctl("get", prefix, "--prefix", "--keys-only").check()
    assert res.stdout == f"{prefix}a\n\n{prefix}b\n\n"
    doc = etcdctl("get", prefix, "--prefix", "--keys-only", "-w", "json").check().json()
    assert all("value" not in kv for kv in doc["kvs"])
    assert doc["count"] == 2


def test_get_count_only(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    _fill(etcdctl, prefix, [("a", "1"), ("b", "2"), ("c", "3")])
    res = etcdctl("get", prefix, "--prefix", "--count-only", "-w", "fields").check()
    assert '"Count" : 3' in res.lines()
    assert not any(ln.startswith('"Key"') for ln in res.lines())
    # etcdctl 3.5 only prints counts in the fields format (a client-side rule).
    bad = etcdctl("get", prefix, "--prefix", "--count-only")
    assert bad.rc != 0
    assert error_line(bad) == "Error: --count-only is only for `--write-out=fields`"


def test_del_variants(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    _fill(etcdctl, prefix, [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("p/x", "5"), ("p/y", "6")])
    assert etcdctl("del", prefix + "a").check().stdout == "1\n"
    assert etcdctl("del", prefix + "a").check().stdout == "0\n"
    assert etcdctl("del", prefix + "b", "--prev-kv").check().stdout == f"1\n{prefix}b\n2\n"
    # [c, d) deletes only c
    assert etcdctl("del", prefix + "c", prefix + "d").check().stdout == "1\n"
    assert etcdctl("del", prefix + "p/", "--prefix").check().stdout == "2\n"
    left = etcdctl("get", prefix, "--prefix", "--keys-only").check()
    assert [ln for ln in left.lines() if ln] == [prefix + "d"]


def test_del_json_and_revision(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    (r1,) = _fill(etcdctl, prefix, [("k", "v")])
    doc = etcdctl("del", prefix + "k", "--prev-kv", "-w", "json").check().json()
    assert doc["deleted"] == 1
    # The shared cluster serves one test at a time, so revisions are exact.
    assert doc["header"]["revision"] == r1 + 1
    assert kv_pairs({"kvs": doc["prev_kvs"]}) == [(prefix + "k", "v")]
    # Deleting nothing does not create a revision.
    before = revision(etcdctl("get", prefix + "k", "-w", "json"))
    nothing = etcdctl("del", prefix + "nothing-here", "-w", "json").check().json()
    assert "deleted" not in nothing  # 0 is omitted
    assert nothing["header"]["revision"] == before


def test_empty_key_is_rejected(target: str, etcdctl: Etcdctl) -> None:
    for args in (("put", "", "x"), ("get", ""), ("del", "")):
        res = etcdctl(*args)
        assert res.rc != 0, args
        assert error_line(res) == "Error: etcdserver: key is not provided", args
