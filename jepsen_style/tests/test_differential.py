"""The optimised search against a brute-force definition of linearizability.

Random small register histories (several processes, reads, writes, cas, failed cas, unknown
outcomes) are checked both by :func:`jepsen_style.checker.check` and by enumerating every
total order of *all* operations that respects real time (``a`` before ``b`` whenever
``a.ret < b.call``) and the model. Seeded and bounded: the same cases on every run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from jepsen_style.checker import check
from jepsen_style.history import Event, Operation, pair
from jepsen_style.models import EtcdModel, Model, RegisterModel, State
from jepsen_style.tests.helpers import ev


def brute_force(model: Model, ops: Sequence[Operation]) -> bool:
    def extend(done: frozenset[int], state: State) -> bool:
        if len(done) == len(ops):
            return True
        rest = [op for op in ops if op.id not in done]
        for op in rest:
            if any(other.ret < op.call for other in rest if other is not op):
                continue  # some pending operation must come first
            ok, new_state = model.step(state, op.input, op.output)
            if ok and extend(done | {op.id}, new_state):
                return True
        return False

    return extend(frozenset(), model.init())


def random_history(rng: random.Random, n_ops: int, n_procs: int) -> list[Event]:
    """A plausible-looking history: values from a small domain so that reads often match."""
    events: list[Event] = []
    busy: dict[int, tuple[str, object]] = {}
    next_proc = n_procs
    procs = list(range(n_procs))
    time = 0
    started = 0
    while started < n_ops or busy:
        time += 1
        idle = [p for p in procs if p not in busy]
        if started < n_ops and idle and (not busy or rng.random() < 0.5):
            p = rng.choice(idle)
            f = rng.choice(["read", "write", "cas"])
            value: object = None if f == "read" else (
                rng.randrange(3) if f == "write" else (rng.randrange(3), rng.randrange(3))
            )
            busy[p] = (f, value)
            events.append(ev(p, "invoke", f, value, time))  # type: ignore[arg-type]
            started += 1
            continue
        p = rng.choice(sorted(busy))
        f, value = busy.pop(p)
        roll = rng.random()
        if roll < 0.15:
            events.append(ev(p, "info", f, ":timed-out", time))
            procs[procs.index(p)] = next_proc  # a crashed process never returns
            next_proc += 1
        elif f == "cas" and roll < 0.45:
            events.append(ev(p, "fail", f, value, time))  # type: ignore[arg-type]
        elif f == "read":
            events.append(ev(p, "ok", f, rng.choice([None, 0, 1, 2]), time))
        else:
            events.append(ev(p, "ok", f, value, time))  # type: ignore[arg-type]
    return events


@pytest.mark.parametrize("model", [RegisterModel(), EtcdModel()], ids=lambda m: m.name)
@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force(model: Model, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(15):
        events = random_history(rng, n_ops=rng.randrange(2, 8), n_procs=rng.randrange(1, 4))
        ops = pair(events, model.keep_failed)
        want = brute_force(model, ops)
        got = check(model, ops).linearizable
        assert got is want, [e.to_json() for e in events]


def test_generator_exercises_both_verdicts() -> None:
    rng = random.Random(1234)
    model = EtcdModel()
    outcomes = [
        brute_force(model, pair(random_history(rng, rng.randrange(2, 8), rng.randrange(1, 4)),
                                model.keep_failed))
        for _ in range(200)
    ]
    assert outcomes.count(True) >= 30 and outcomes.count(False) >= 30, outcomes.count(True)
