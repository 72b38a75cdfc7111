"""The lock and lease checkers on hand-made histories (times in seconds, scaled to ns)."""

from __future__ import annotations

from jepsen_style.checker import lease, lock
from jepsen_style.history import Event, Value

S = 10**9


class B:
    """History builder: ``op(process, f, key, invoke_value, t_call, t_ret, type, ok_value)``."""

    def __init__(self) -> None:
        self.evs: list[Event] = []

    def op(self, p: int, f: str, key: str | None, value: Value, call: float, ret: float | None,
           typ: str = "ok", out: Value = None) -> None:
        self.evs.append(Event(p, "invoke", f, key, value, int(call * S)))
        if ret is not None:
            self.evs.append(Event(p, typ, f, key, value if out is None else out, int(ret * S)))

    def events(self) -> list[Event]:
        return sorted(self.evs, key=lambda e: e.time)


def _cycle(b: B, p: int, t: float, read: int, dur: float = 0.4) -> None:
    step = dur / 4
    b.op(p, "acquire", "lock", None, t, t + step, out=f"/lock/{p}")
    b.op(p, "read", "counter", None, t + step, t + 2 * step, out=read)
    b.op(p, "write", "counter", read + 1, t + 2 * step, t + 3 * step)
    b.op(p, "release", "lock", f"/lock/{p}", t + 3 * step, t + 4 * step)


def test_lock_serial_holds_are_valid() -> None:
    b = B()
    for i in range(5):
        _cycle(b, i % 2, float(i), i)
    res = lock.check(b.events(), final_counter=5)
    assert res.valid, res.anomalies
    assert res.holds == 5


def test_lock_overlap_and_lost_increment() -> None:
    b = B()
    _cycle(b, 0, 0.0, 0, dur=6.0)  # paused inside: its hold spans [1.5, 4.5]
    _cycle(b, 1, 2.0, 0)            # acquires while 0 still holds, reads the same value
    res = lock.check(b.events(), final_counter=1)
    assert {"overlapping-holds", "duplicate-increments", "lost-increments"} <= set(res.anomalies)


def test_lock_hold_ends_at_last_invoke_after_unknown_outcome() -> None:
    b = B()
    b.op(0, "acquire", "lock", None, 0.0, 0.1, out="/lock/0")
    b.op(0, "read", "counter", None, 0.2, 0.3, out=0)
    b.op(0, "write", "counter", 1, 0.4, None)  # unknown outcome: the process is gone
    _cycle(b, 1, 1.0, 1)
    res = lock.check(b.events(), final_counter=2)
    assert res.valid, res.anomalies  # 0's hold ended at 0.4 (its last invoke), before 1's


def test_lock_holder_waiting_on_a_timed_out_write_still_holds() -> None:
    b = B()
    b.op(0, "acquire", "lock", None, 0.0, 0.1, out="/lock/0")
    b.op(0, "read", "counter", None, 0.2, 0.3, out=0)
    b.op(0, "write", "counter", 1, 0.4, 10.4, typ="info")  # waited 10 s, then gave up
    _cycle(b, 1, 3.0, 0)  # the lease expired meanwhile and another session took the lock
    res = lock.check(b.events(), final_counter=1)
    assert "overlapping-holds" in res.anomalies, res.anomalies
    assert res.anomalies["overlapping-holds"][0]["first"]["ended_by"] == "write info"


def _lease(b: B, p: int, lid: int, t: float, ttl: int = 3) -> None:
    b.op(p, "grant", None, ttl, t, t + 0.01, out=(lid, ttl))
    b.op(p, "put", f"k{lid}", lid, t + 0.02, t + 0.03)


def test_lease_valid_history() -> None:
    b = B()
    _lease(b, 0, 7, 0.0)
    b.op(0, "read", "k7", None, 1.0, 1.01, out=7)
    b.op(0, "renew", None, 7, 2.0, 2.01, out=(7, 3))
    b.op(0, "read", "k7", None, 4.5, 4.51, out=7)
    b.op(0, "revoke", None, 7, 5.0, 5.01)
    b.op(0, "read", "k7", None, 5.5, 5.51)          # gone after the revoke
    b.op(1, "read", "k7", None, 4.99, 5.2, out=7)   # concurrent with the revoke: either
    _lease(b, 1, 8, 6.0)
    b.op(1, "read", "k8", None, 9.5, 9.51)          # abandoned: may be gone after its TTL
    res = lease.check(b.events(), final=set())
    assert res.valid, res.anomalies
    assert res.stats["reads_while_certainly_alive"] == 2  # at 1.0 and 4.5


def test_lease_vanished_early_and_lost_early() -> None:
    b = B()
    _lease(b, 0, 7, 0.0)
    b.op(0, "renew", None, 7, 2.0, 2.01, out=(7, 3))
    b.op(0, "read", "k7", None, 4.0, 4.01)                  # renewed at >= 2.0: alive to 5.0
    b.op(1, "renew", None, 7, 4.5, 4.51, out=(7, 0))        # "not found" while alive
    res = lease.check(b.events(), final=set())
    assert {"vanished-early", "lost-early"} == set(res.anomalies), res.anomalies


def test_lease_slack_makes_boundary_reads_inconclusive() -> None:
    b = B()
    _lease(b, 0, 7, 0.0)
    b.op(0, "read", "k7", None, 2.8, 2.9)  # within 0.25 s of the earliest expiry (3.0)
    assert lease.check(b.events(), final=set()).valid


def test_lease_present_after_revoke_and_never_expired() -> None:
    b = B()
    _lease(b, 0, 7, 0.0)
    b.op(0, "revoke", None, 7, 1.0, 1.01)
    b.op(1, "read", "k7", None, 1.5, 1.51, out=7)
    res = lease.check(b.events(), final={"k7"})
    assert {"present-after-revoke", "never-expired"} == set(res.anomalies), res.anomalies
