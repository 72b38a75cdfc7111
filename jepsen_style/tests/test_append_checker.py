"""The list-append checker on hand-made histories: each anomaly it claims to find, found; the
valid histories (serial, concurrent, with unknown outcomes) left alone."""

from __future__ import annotations

from jepsen_style.checker.append import AppendResult, Mop, Txn, check, txns_from_events
from jepsen_style.history import INF, Event

_Spec = list[tuple[str, str, object]]


class H:
    """A history builder: ``t(call, ret, mops)``; ids in order of creation."""

    def __init__(self) -> None:
        self.txns: list[Txn] = []

    def t(self, call: int, ret: float, mops: _Spec, typ: str = "ok",
          process: int | None = None) -> int:
        ms = []
        for f, k, v in mops:
            if f == "r":
                ms.append(Mop("r", k, None if v is None else tuple(v)))  # type: ignore[arg-type]
            else:
                assert isinstance(v, int)
                ms.append(Mop("append", k, v))
        tid = len(self.txns)
        self.txns.append(Txn(tid, tid if process is None else process, typ, call,
                             INF if typ == "info" else ret, tuple(ms)))
        return tid

    def check(self, final: dict[str, list[int]] | None = None) -> AppendResult:
        return check(self.txns, final)


def test_serial_history_is_valid() -> None:
    h = H()
    h.t(0, 1, [("append", "x", 1), ("append", "y", 1)])
    h.t(2, 3, [("r", "x", [1]), ("append", "x", 2)])
    h.t(4, 5, [("r", "x", [1, 2]), ("r", "y", [1])])
    res = h.check({"x": [1, 2], "y": [1]})
    assert res.valid, res.anomalies
    assert res.stats["edges_ww"] == 1 and res.stats["edges_wr"] >= 2


def test_concurrent_and_unknown_outcomes_are_valid() -> None:
    h = H()
    h.t(0, 10, [("append", "x", 1)])
    h.t(1, 11, [("append", "x", 2)])         # concurrent with 0: either order is fine
    h.t(2, 0, [("append", "x", 3)], "info")  # unknown, later read: committed
    h.t(3, 0, [("append", "x", 4)], "info")  # unknown, never read: fine
    h.t(4, 5, [("append", "y", 9)], "fail")  # failed, never read: fine
    h.t(12, 13, [("r", "x", [2, 1, 3])])
    res = h.check({"x": [2, 1, 3]})
    assert res.valid, res.anomalies


def test_g0_write_cycle() -> None:
    h = H()
    h.t(0, 10, [("append", "x", 1), ("append", "y", 1)])
    h.t(0, 10, [("append", "x", 2), ("append", "y", 2)])
    h.t(20, 21, [("r", "x", [1, 2]), ("r", "y", [2, 1])])
    res = h.check()
    assert not res.valid
    assert "G0" in res.anomalies
    cycle = res.anomalies["G0"][0]["cycle"]
    assert {e["type"] for e in cycle} == {"ww"} and len(cycle) == 2


def test_g1c_circular_information_flow() -> None:
    h = H()
    h.t(0, 10, [("append", "x", 1), ("r", "y", [1])])
    h.t(0, 10, [("append", "y", 1), ("r", "x", [1])])
    res = h.check()
    assert "G1c" in res.anomalies, res.anomalies
    assert "G0" not in res.anomalies


def test_g_single_read_skew() -> None:
    # T0 appends x and y together; T1 sees y's append but not x's: one anti-dependency.
    h = H()
    h.t(0, 10, [("append", "x", 1), ("append", "y", 1)])
    h.t(0, 10, [("r", "x", []), ("r", "y", [1])])
    h.t(20, 21, [("r", "x", [1])])
    res = h.check()
    assert "G-single" in res.anomalies, res.anomalies
    types = [e["type"] for e in res.anomalies["G-single"][0]["cycle"]]
    assert types.count("rw") == 1


def test_g2_write_skew() -> None:
    h = H()
    h.t(0, 10, [("r", "x", []), ("append", "y", 1)])
    h.t(0, 10, [("r", "y", []), ("append", "x", 1)])
    h.t(20, 21, [("r", "x", [1]), ("r", "y", [1])])
    res = h.check()
    assert "G2" in res.anomalies and "G-single" not in res.anomalies, res.anomalies


def test_stale_read_is_g_single_realtime() -> None:
    # Serializable but not strict: a read that began after an append completed misses it.
    h = H()
    h.t(0, 1, [("append", "x", 1)])
    h.t(2, 3, [("r", "x", [])])
    h.t(4, 5, [("r", "x", [1])])
    res = h.check()
    assert set(res.anomalies) == {"G-single-realtime"}, res.anomalies


def test_lost_append() -> None:
    h = H()
    h.t(0, 1, [("append", "x", 1)])
    h.t(0, 1, [("append", "x", 2)])
    h.t(5, 6, [("r", "x", [2])])
    res = h.check({"x": [2]})
    assert "lost-append" in res.anomalies
    assert res.anomalies["lost-append"][0]["element"] == 1


def test_unread_append_without_later_read_is_not_lost() -> None:
    h = H()
    h.t(0, 10, [("append", "x", 1)])
    h.t(2, 3, [("r", "x", [])])  # began before the append was acknowledged
    assert h.check().valid


def test_aborted_garbage_duplicate_and_incompatible_reads() -> None:
    h = H()
    h.t(0, 1, [("append", "x", 1)], "fail")
    h.t(2, 3, [("r", "x", [1])])
    res = h.check()
    assert "G1a" in res.anomalies
    h = H()
    h.t(0, 1, [("append", "x", 1)])
    h.t(2, 3, [("r", "x", [1, 99])])
    assert "garbage-read" in h.check().anomalies
    h = H()
    h.t(0, 1, [("append", "x", 1)])
    h.t(2, 3, [("r", "x", [1, 1])])
    assert "duplicate-elements" in h.check().anomalies
    h = H()
    h.t(0, 1, [("append", "x", 1)])
    h.t(0, 1, [("append", "x", 2)])
    h.t(2, 3, [("r", "x", [1])])
    h.t(2, 3, [("r", "x", [2])])
    assert "incompatible-order" in h.check().anomalies


def test_intermediate_read() -> None:
    h = H()
    h.t(0, 1, [("append", "x", 1), ("append", "x", 2)])
    h.t(2, 3, [("r", "x", [1])])
    assert "G1b" in h.check().anomalies


def test_from_events_with_failed_and_open_txns() -> None:
    evs = [
        Event(0, "invoke", "txn", None, (("append", "x", 1),), 0),
        Event(1, "invoke", "txn", None, (("append", "x", 2),), 1),
        Event(2, "invoke", "txn", None, (("append", "x", 3),), 1),
        Event(0, "ok", "txn", None, (("append", "x", 1),), 2),
        Event(1, "fail", "txn", None, (("append", "x", 2),), 3),
        Event(3, "invoke", "txn", None, (("r", "x", None),), 4),
        Event(3, "ok", "txn", None, (("r", "x", (1, 3)),), 5),
    ]
    txns = txns_from_events(evs)
    assert [t.type for t in txns] == ["ok", "fail", "info", "ok"]
    assert check(txns).valid
    evs[-1] = Event(3, "ok", "txn", None, (("r", "x", (1, 2)),), 5)
    assert "G1a" in check(txns_from_events(evs)).anomalies
