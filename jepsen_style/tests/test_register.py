"""Hand-made register / etcd / kv histories with known verdicts and counterexamples."""

from __future__ import annotations

import multiprocessing

from jepsen_style.checker import check
from jepsen_style.history import Event, pair
from jepsen_style.models import EtcdModel, KvModel, Model, RegisterModel
from jepsen_style.tests.helpers import ev

REGISTER = RegisterModel()


def verdict(model: Model, events: list[Event]) -> bool | None:
    return check(model, pair(events, model.keep_failed)).linearizable


def test_overlapping_write_and_read_is_linearizable() -> None:
    h = [
        ev(0, "invoke", "write", 1, 0),
        ev(1, "invoke", "read", None, 5),
        ev(0, "ok", "write", 1, 10),
        ev(1, "ok", "read", 1, 15),
    ]
    assert verdict(REGISTER, h) is True


def test_read_may_see_old_value_while_write_in_flight() -> None:
    h = [
        ev(0, "invoke", "write", 1, 0),
        ev(1, "invoke", "read", None, 1),
        ev(1, "ok", "read", None, 2),
        ev(0, "ok", "write", 1, 3),
    ]
    assert verdict(REGISTER, h) is True


def test_touching_intervals_are_concurrent() -> None:
    # Closed intervals: the read returning at 5 and the write invoked at 5 overlap.
    h = [
        ev(1, "invoke", "read", None, 0),
        ev(0, "invoke", "write", 7, 5),
        ev(1, "ok", "read", 7, 5),
        ev(0, "ok", "write", 7, 6),
    ]
    assert verdict(REGISTER, h) is True


def test_stale_read_counterexample() -> None:
    h = [
        ev(0, "invoke", "write", 1, 0),
        ev(0, "ok", "write", 1, 1),
        ev(1, "invoke", "read", None, 2),
        ev(1, "ok", "read", None, 3),
    ]
    res = check(REGISTER, pair(h))
    assert res.linearizable is False
    cex = res.counterexample
    assert cex is not None
    assert [op.input for op in cex.prefix] == [("write", None, 1)]
    assert cex.state == "1"
    assert cex.blocked.input.f == "read" and cex.blocked.output.value is None
    assert (cex.blocked.call, cex.blocked.ret) == (2, 3)
    assert [(c.op.id, c.legal) for c in cex.candidates] == [(cex.blocked.id, False)]
    text = cex.describe(REGISTER)
    assert "read() -> nil" in text and "state after prefix: 1" in text
    assert "@[2, 3]" in text


def test_unknown_write_stays_open_but_cannot_be_undone() -> None:
    # The timed-out write of 1 may take effect late, but once read, the value cannot revert.
    h = [
        ev(0, "invoke", "write", 1, 0),
        ev(0, "info", "write", ":timed-out", 1),
        ev(1, "invoke", "read", None, 5),
        ev(1, "ok", "read", 1, 6),
        ev(1, "invoke", "read", None, 7),
        ev(1, "ok", "read", None, 8),
    ]
    res = check(REGISTER, pair(h))
    assert res.linearizable is False
    cex = res.counterexample
    assert cex is not None
    assert [op.input.f for op in cex.prefix] == ["write", "read"]
    assert cex.prefix[0].open and cex.prefix[0].ret == float("inf")
    assert cex.state == "1"
    assert (cex.blocked.call, cex.blocked.ret, cex.blocked.output.value) == (7, 8, None)
    assert [c.legal for c in cex.candidates] == [False]
    # Without the second read, the late write explains everything.
    assert verdict(REGISTER, h[:4]) is True
    # ...and an unknown write may also never happen.
    assert verdict(REGISTER, h[:2] + [ev(1, "invoke", "read", None, 9),
                                      ev(1, "ok", "read", None, 10)]) is True


def test_unknown_cas_takes_effect_between_reads() -> None:
    base = [
        ev(0, "invoke", "write", 1, 0),
        ev(0, "ok", "write", 1, 1),
        ev(2, "invoke", "cas", (1, 2), 2),
        ev(2, "info", "cas", ":timed-out", 3),
    ]
    fwd = [ev(1, "invoke", "read", None, 4), ev(1, "ok", "read", 1, 5),
           ev(1, "invoke", "read", None, 6), ev(1, "ok", "read", 2, 7)]
    back = [ev(1, "invoke", "read", None, 4), ev(1, "ok", "read", 2, 5),
            ev(1, "invoke", "read", None, 6), ev(1, "ok", "read", 1, 7)]
    assert verdict(REGISTER, base + fwd) is True
    assert verdict(REGISTER, base + back) is False


def test_failed_cas_dropped_by_register_checked_by_etcd() -> None:
    # cas [1 2] failed although the register definitely held 1: etcd would have applied it.
    h = [
        ev(0, "invoke", "write", 1, 0),
        ev(0, "ok", "write", 1, 1),
        ev(1, "invoke", "cas", (1, 2), 2),
        ev(1, "fail", "cas", (1, 2), 3),
    ]
    assert verdict(REGISTER, h) is True
    assert verdict(EtcdModel(), h) is False
    # A failed cas whose compare really mismatched is fine for both.
    h2 = h[:2] + [ev(1, "invoke", "cas", (5, 2), 2), ev(1, "fail", "cas", (5, 2), 3)]
    assert verdict(EtcdModel(), h2) is True


def test_successful_cas_requires_match() -> None:
    h = [
        ev(0, "invoke", "write", 3, 0),
        ev(0, "ok", "write", 3, 1),
        ev(1, "invoke", "cas", (4, 5), 2),
        ev(1, "ok", "cas", (4, 5), 3),
    ]
    assert verdict(REGISTER, h) is False
    assert verdict(REGISTER, h[:2] + [ev(1, "invoke", "cas", (3, 5), 2),
                                      ev(1, "ok", "cas", (3, 5), 3),
                                      ev(1, "invoke", "read", None, 4),
                                      ev(1, "ok", "read", 5, 5)]) is True


def test_partitioned_by_key_counterexample_names_the_bad_key() -> None:
    h = [
        ev(0, "invoke", "write", 1, 0, key="a"),
        ev(0, "ok", "write", 1, 1, key="a"),
        ev(1, "invoke", "write", 2, 2, key="b"),
        ev(1, "ok", "write", 2, 3, key="b"),
        ev(2, "invoke", "read", None, 4, key="a"),
        ev(2, "ok", "read", 1, 5, key="a"),
        ev(2, "invoke", "read", None, 6, key="b"),
        ev(2, "ok", "read", 3, 7, key="b"),
    ]
    for workers in (1, 2):
        res = check(REGISTER, pair(h), workers=workers)
        assert res.linearizable is False
        assert res.partitions == 2
        assert res.counterexample is not None
        assert res.counterexample.blocked.input == ("read", "b", None)
        assert res.counterexample.blocked.output.value == 3
    ok = h[:6]
    assert check(REGISTER, pair(ok), workers=2).linearizable is True


def test_kv_append_order() -> None:
    kv = KvModel()
    h = [
        ev(0, "invoke", "append", "x", 0, key="k"),
        ev(1, "invoke", "append", "y", 1, key="k"),
        ev(0, "ok", "append", "x", 2, key="k"),
        ev(1, "ok", "append", "y", 3, key="k"),
        ev(2, "invoke", "get", None, 4, key="k"),
        ev(2, "ok", "get", "yx", 5, key="k"),
    ]
    assert verdict(kv, h) is True
    assert verdict(kv, h[:5] + [ev(2, "ok", "get", "xyx", 5, key="k")]) is False
    assert verdict(kv, [ev(0, "invoke", "get", None, 0, key="z"),
                        ev(0, "ok", "get", "", 1, key="z")]) is True


def _check_in_worker(workers: int) -> bool | None:
    h = [ev(0, "invoke", "write", 1, 0, key="a"), ev(0, "ok", "write", 1, 1, key="a"),
         ev(1, "invoke", "read", None, 2, key="b"), ev(1, "ok", "read", 5, 3, key="b")]
    return check(REGISTER, pair(h), workers=workers).linearizable


def test_parallel_check_inside_a_pool_worker_falls_back_to_in_process() -> None:
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_check_in_worker, [2]) == [False]
