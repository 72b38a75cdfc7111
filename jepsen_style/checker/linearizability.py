"""Linearizability checking: the Wing-Gong / Lowe search as implemented by Porcupine.

Algorithm (per partition of ``n`` operations):

* Every operation contributes a *call* and a *return* entry; entries are sorted by time, calls
  before returns at equal times (intervals are closed, so touching operations are concurrent),
  and threaded into a doubly linked list behind a head sentinel.
* Walking the list from the head, a call entry whose operation is legal in the current model
  state may be *linearized*: it is pushed on a stack together with the state before it, and its
  call and return entries are *lifted* out of the list (dancing links: a lifted node keeps its
  own pointers, so *unlift* reinserts it in O(1)). The walk restarts at the head.
* Reaching a return entry means that operation's response was observed before anything still
  in the list could take effect, yet it has not been linearized: this branch is dead, so the
  search *backtracks* (pop, unlift, continue after the popped call).
* A cache of ``(linearized set, state)`` pairs prunes branches that reach a configuration
  already explored: the future of the search depends on nothing else.
* The history is linearizable iff the list empties; it is not iff the stack empties at a
  return entry.

Two prunings beyond Porcupine, both complete (argued where they are applied, and checked
against brute force in the tests): *loose* operations (unknown outcome, open to the end) are
never linearized as a no-op and stop mattering once every other operation is linearized; and a
legal *read-only* operation (``Model.read_only``) is linearized at once without branching.

Representation choices for speed in CPython: nodes are ints (call ``i``, return ``n + i``, head
``2n``) and links are two int lists; the linearized set is a Python int used as a bitset;
states are interned to ids pre-shifted left by ``n`` bits, so a cache key is the single int
``linearized | state_id`` and a state's transitions are memoised per operation
(``model.step`` is pure).

Partitions (``model.partition``, e.g. by key) are checked independently -- in parallel worker
processes when asked -- and checking stops at the first illegal one. A deadline or a cap on
the number of cached configurations ends the search with an honest ``None`` (unknown).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace

from jepsen_style.history import INF, Operation
from jepsen_style.models import Model, State

DEFAULT_MAX_STATES = 5_000_000
"""Cached configurations per partition before giving up (roughly 100 bytes each)."""

_SLICE = 512  # backtracks per slice: between memory checks, deadline checks and interleaving


@dataclass(frozen=True, slots=True)
class Candidate:
    """An operation that could be linearized next at the stuck point, and why it does not fit."""

    op: Operation
    legal: bool
    """True: legal in the state, but every continuation from it was already refuted."""


@dataclass(frozen=True, slots=True)
class Counterexample:
    """Why a partition is not linearizable, at the deepest point the search reached.

    ``prefix`` is the longest linearizable prefix found (in linearization order) and ``state``
    the model state after it (described). ``blocked`` is the earliest-returning operation not
    in the prefix: it must take effect before anything invoked after its return, but no
    candidate order lets it. ``candidates`` are the operations invoked before ``blocked``
    returned and not in the prefix -- those that could have been linearized next -- all of
    which fail.
    """

    partition: int
    prefix: tuple[Operation, ...]
    state: str
    blocked: Operation
    candidates: tuple[Candidate, ...]

    def describe(self, model: Model, tail: int = 8) -> str:
        """Multi-line human-readable explanation; shows the last ``tail`` prefix operations."""
        lines = [f"partition {self.partition}: not linearizable"]
        shown = self.prefix[-tail:] if tail > 0 else ()
        lines.append(
            f"longest linearizable prefix: {len(self.prefix)} operations"
            + (f" (last {len(shown)} shown)" if len(shown) < len(self.prefix) else "")
        )
        for op in shown:
            lines.append("  " + _describe_op(model, op))
        lines.append(f"state after prefix: {self.state}")
        lines.append("cannot be linearized next:")
        for c in self.candidates:
            why = "legal here, but no continuation works" if c.legal else "illegal in this state"
            lines.append(f"  {_describe_op(model, c.op)}  [{why}]")
        lines.append(f"yet this must take effect before it returns: {_describe_op(model, self.blocked)}")
        return "\n".join(lines)

    def to_json(self, model: Model) -> dict[str, object]:
        """A JSON-ready summary (operations as id, process, description, call, return)."""
        return {
            "partition": self.partition,
            "prefix_length": len(self.prefix),
            "prefix_tail": [_op_json(model, op) for op in self.prefix[-8:]],
            "state": self.state,
            "blocked": _op_json(model, self.blocked),
            "candidates": [
                dict(_op_json(model, c.op), legal_in_state=c.legal) for c in self.candidates
            ],
        }


def _describe_op(model: Model, op: Operation) -> str:
    ret = "inf" if op.open else str(int(op.ret))
    desc = model.describe_operation(op.input, op.output)
    return f"#{op.id} p{op.process} {desc} @[{op.call}, {ret}]"


def _op_json(model: Model, op: Operation) -> dict[str, object]:
    return {
        "id": op.id,
        "process": op.process,
        "op": model.describe_operation(op.input, op.output),
        "call": op.call,
        "return": None if op.open else int(op.ret),
    }


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """Verdict for one partition: True / False / None (unknown, see ``reason``)."""

    index: int
    linearizable: bool | None
    reason: str = ""
    explored: int = 0
    """Number of distinct (linearized set, state) configurations cached."""
    counterexample: Counterexample | None = None
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Verdict for a whole history.

    ``linearizable`` is False if any partition is illegal (checking stopped there), None if
    none is illegal but some could not be decided (``reason``: ``timeout`` or ``state limit``),
    else True.
    """

    linearizable: bool | None
    reason: str = ""
    partitions: int = 0
    explored: int = 0
    counterexample: Counterexample | None = None
    results: tuple[PartitionResult, ...] = field(default=())


class _Stuck:
    """Deepest dead end seen: the stack, the state there and the list frontier."""

    __slots__ = ("blocked", "frontier", "prefix", "state")

    def __init__(self) -> None:
        self.prefix: list[int] = []
        self.state: State = None
        self.frontier: list[int] = []
        self.blocked = -1


SearchRun = Generator[None, None, PartitionResult]
"""A resumable search: yields every few hundred backtracks, returns its verdict."""


def search_steps(
    model: Model,
    ops: Sequence[Operation],
    *,
    max_states: int = DEFAULT_MAX_STATES,
    index: int = 0,
    slice_backtracks: int = _SLICE,
) -> SearchRun:
    """Check one partition as a resumable computation. Pure: no clock, no I/O.

    The generator yields after every ``slice_backtracks`` backtracks so that a driver can
    interleave partitions and enforce a deadline; its return value (``StopIteration.value``) is
    the verdict: True, False with a counterexample, or None with reason ``state limit`` once
    more than ``max_states`` configurations are cached.
    """
    n = len(ops)
    if n == 0:
        return PartitionResult(index, True)
    head = 2 * n
    # Loose operations: open to the end with an unknown outcome (legal in any state, by the
    # Model contract). A linearization of all other operations extends to a full one by
    # appending them, so (1) they are never linearized as a no-op -- dropping such a step from
    # a linearization leaves it valid -- and (2) reaching a loose return entry, which sorts
    # after every other return, means every other operation is linearized: success.
    loose = [op.ret == INF and op.output.type == "info" for op in ops]
    # Sort entries: by time, calls (kind 0) before returns (kind 1) at equal times.
    order = sorted(
        [(float(op.call), 0, False, i) for i, op in enumerate(ops)]
        + [(op.ret, 1, loose[i], i) for i, op in enumerate(ops)]
    )
    nxt = [-1] * (2 * n + 1)
    prv = [-1] * (2 * n + 1)
    last = head
    for _, kind, _, i in order:
        node = i + n * kind
        nxt[last] = node
        prv[node] = last
        last = node

    init = model.init()
    intern: dict[State, int] = {init: 0}
    states: list[State] = [init]
    trans: list[dict[int, int]] = [{} for _ in range(n)]
    bits = [1 << i for i in range(n)]
    inputs = [op.input for op in ops]
    outputs = [op.output for op in ops]
    step = model.step
    # Read-only operations never change the state. If one is legal now, linearizing it now
    # is never worse than later (moving it earlier keeps the state trajectory and only relaxes
    # real-time order), so it is taken without branching: it is *forced*, and if it leads
    # nowhere the configuration that forced it is refuted as a whole.
    read_only = [model.read_only(op.input, op.output) and not loose[i]
                 for i, op in enumerate(ops)]

    def transition(i: int, sid: int) -> int:
        ok, new_state = step(states[sid >> n], inputs[i], outputs[i])
        if not ok:
            return -1
        k = intern.get(new_state)
        if k is None:
            k = len(states)
            intern[new_state] = k
            states.append(new_state)
        return k << n

    cache: set[int] = set()
    calls_op: list[int] = []
    calls_sid: list[int] = []
    calls_forced: list[bool] = []
    lin = 0
    sid = 0  # interned state id << n
    stuck = _Stuck()
    best = -1
    backtracks = 0
    entry = nxt[head]
    fresh = True  # a new configuration: look for a forced read-only step first
    while entry >= 0:
        dead = False
        if fresh:
            fresh = False
            f = entry
            forced_ns = -1
            while 0 <= f < n:
                if read_only[f]:
                    t = trans[f]
                    got = t.get(sid)
                    if got is None:
                        got = t[sid] = transition(f, sid)
                    if got >= 0:
                        forced_ns = got
                        break
                f = nxt[f]
            if forced_ns >= 0:
                key = lin | bits[f] | forced_ns
                if key in cache:
                    dead = True  # explored before and refuted, so this configuration is too
                else:
                    cache.add(key)
                    calls_op.append(f)
                    calls_sid.append(sid)
                    calls_forced.append(True)
                    lin |= bits[f]
                    sid = forced_ns
                    p = prv[f]
                    q = nxt[f]
                    nxt[p] = q
                    prv[q] = p
                    r = f + n
                    p = prv[r]
                    q = nxt[r]
                    nxt[p] = q
                    if q >= 0:
                        prv[q] = p
                    entry = nxt[head]
                    fresh = True
                    continue
        if dead:
            pass
        elif entry < n:
            t = trans[entry]
            ns = t.get(sid)
            if ns is None:
                ns = t[sid] = transition(entry, sid)
            if ns >= 0 and (ns != sid or not loose[entry]):
                nl = lin | bits[entry]
                key = nl | ns
                if key not in cache:
                    cache.add(key)
                    calls_op.append(entry)
                    calls_sid.append(sid)
                    calls_forced.append(False)
                    lin = nl
                    sid = ns
                    # lift the call and its return
                    p = prv[entry]
                    q = nxt[entry]
                    nxt[p] = q
                    prv[q] = p
                    r = entry + n
                    p = prv[r]
                    q = nxt[r]
                    nxt[p] = q
                    if q >= 0:
                        prv[q] = p
                    entry = nxt[head]
                    fresh = True
                    continue
            entry = nxt[entry]
            continue
        else:
            if loose[entry - n]:
                break  # every non-loose operation is linearized (see above)
            # A return entry: its operation cannot be left unlinearized past this point.
            depth = len(calls_op)
            if depth > best:
                best = depth
                _record(stuck, calls_op, states[sid >> n], nxt, head, n, entry)
        # Backtrack to the latest choice that was not forced.
        while True:
            if not calls_op:
                return _illegal(model, ops, index, stuck, len(cache))
            entry = calls_op.pop()
            sid = calls_sid.pop()
            lin ^= bits[entry]
            # unlift: the return first, then the call (reverse of lift)
            r = entry + n
            p = prv[r]
            q = nxt[r]
            nxt[p] = r
            if q >= 0:
                prv[q] = r
            p = prv[entry]
            q = nxt[entry]
            nxt[p] = entry
            prv[q] = entry
            if not calls_forced.pop():
                break
        entry = q
        backtracks += 1
        if backtracks % slice_backtracks == 0:
            if len(cache) > max_states:
                return PartitionResult(index, None, "state limit", len(cache))
            yield
    return PartitionResult(index, True, "", len(cache))


def drive(
    runs: Sequence[tuple[int, SearchRun]],
    *,
    deadline: float | None = None,
    clock: Callable[[], float] | None = None,
) -> list[PartitionResult]:
    """Interleave ``(partition index, search)`` pairs round-robin, one slice each, until all
    finish or one is illegal.

    Results are in completion order; an illegal result is last and the other searches are
    abandoned. At ``deadline`` (on ``clock``'s scale; give both or neither) every unfinished
    search is reported as None with reason ``timeout``; a deadline needs a ``clock``, a clock
    alone only times. ``seconds`` of each result is the ``clock`` time spent in its slices (0
    without a clock).
    """
    if deadline is not None and clock is None:
        raise ValueError("a deadline needs a clock")
    active: deque[tuple[int, SearchRun]] = deque(runs)
    spent = dict.fromkeys((i for i, _ in runs), 0.0)
    results: list[PartitionResult] = []
    while active:
        slot, run = active.popleft()
        t0 = clock() if clock is not None else 0.0
        try:
            next(run)
        except StopIteration as stop:
            res: PartitionResult = stop.value
            if clock is not None:
                spent[slot] += clock() - t0
            results.append(replace(res, seconds=spent[slot]))
            if res.linearizable is False:
                break
            continue
        if clock is not None:
            now = clock()
            spent[slot] += now - t0
            if deadline is not None and now >= deadline:
                active.appendleft((slot, run))
                for slot2, run2 in active:
                    run2.close()
                    results.append(PartitionResult(slot2, None, "timeout", seconds=spent[slot2]))
                break
        active.append((slot, run))
    for _, run in active:
        run.close()
    return results


def search(
    model: Model,
    ops: Sequence[Operation],
    *,
    deadline: float | None = None,
    clock: Callable[[], float] | None = None,
    max_states: int = DEFAULT_MAX_STATES,
    index: int = 0,
) -> PartitionResult:
    """Check one partition to the end (see :func:`search_steps` and :func:`drive`)."""
    run = search_steps(model, ops, max_states=max_states, index=index)
    return drive([(index, run)], deadline=deadline, clock=clock)[0]


def _record(
    stuck: _Stuck, calls: list[int], state: State, nxt: list[int], head: int, n: int, blocked: int
) -> None:
    stuck.prefix = list(calls)
    stuck.state = state
    stuck.blocked = blocked - n
    frontier: list[int] = []
    node = nxt[head]
    while node >= 0 and node < n:
        frontier.append(node)
        node = nxt[node]
    stuck.frontier = frontier


def _illegal(
    model: Model, ops: Sequence[Operation], index: int, stuck: _Stuck, explored: int
) -> PartitionResult:
    state = stuck.state
    candidates = tuple(
        Candidate(ops[i], model.step(state, ops[i].input, ops[i].output)[0])
        for i in stuck.frontier
    )
    cex = Counterexample(
        partition=index,
        prefix=tuple(ops[i] for i in stuck.prefix),
        state=model.describe_state(state),
        blocked=ops[stuck.blocked],
        candidates=candidates,
    )
    return PartitionResult(index, False, "", explored, cex)


_Job = tuple[Model, list[tuple[int, list[Operation]]], float | None, int]


def _run_group(job: _Job) -> list[PartitionResult]:
    """Worker entry point: round-robin over a group of partitions, wall-clock timed."""
    model, parts, deadline, max_states = job
    runs = [(i, search_steps(model, ops, max_states=max_states, index=i)) for i, ops in parts]
    return drive(runs, deadline=deadline, clock=time.monotonic)


def check(
    model: Model,
    history: Sequence[Operation],
    *,
    timeout: float | None = None,
    max_states: int = DEFAULT_MAX_STATES,
    workers: int = 1,
) -> CheckResult:
    """Check a paired history against ``model``.

    The history is split with ``model.partition``. Partitions are dealt (largest first) into
    ``min(workers, partitions)`` groups; each group is searched round-robin, a slice at a time,
    so a cheaply refuted partition is found early even next to an expensive legal one. Groups
    run in forked worker processes when there is more than one, and the pool is terminated as
    soon as any partition is illegal. ``timeout`` (seconds, wall clock) and ``max_states`` (per
    partition) bound the work; hitting either gives ``linearizable=None`` unless some partition
    is illegal.
    """
    parts = model.partition(history)
    deadline = None if timeout is None else time.monotonic() + timeout
    ranked = sorted(enumerate(parts), key=lambda p: -len(p[1]))
    # A daemonic process (e.g. a pool worker) may not fork children: search in-process there.
    if multiprocessing.current_process().daemon:
        workers = 1
    n_groups = max(1, min(workers, len(ranked)))
    groups: list[list[tuple[int, list[Operation]]]] = [[] for _ in range(n_groups)]
    for pos, part in enumerate(ranked):
        groups[pos % n_groups].append(part)
    jobs: list[_Job] = [(model, g, deadline, max_states) for g in groups]
    results: list[PartitionResult] = []
    if n_groups == 1:
        results = _run_group(jobs[0])
    else:
        pool = multiprocessing.get_context("fork").Pool(n_groups)
        try:
            for group_results in pool.imap_unordered(_run_group, jobs):
                results.extend(group_results)
                if any(r.linearizable is False for r in group_results):
                    break
        finally:
            pool.terminate()
            pool.join()
    return _combine(results, len(parts))


def _combine(results: list[PartitionResult], partitions: int) -> CheckResult:
    explored = sum(r.explored for r in results)
    for r in results:
        if r.linearizable is False:
            return CheckResult(False, "", partitions, explored, r.counterexample, tuple(results))
    for r in results:
        if r.linearizable is None:
            return CheckResult(None, r.reason, partitions, explored, None, tuple(results))
    return CheckResult(True, "", partitions, explored, None, tuple(results))
