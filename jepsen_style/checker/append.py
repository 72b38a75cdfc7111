"""An Elle-style checker for list-append transactions (strict serializability).

A transaction is a sequence of micro-operations on keys whose values are lists of integers:
``("r", key, list-or-None)`` reads the whole list (None in an invocation, the list read in an
``ok`` completion) and ``("append", key, x)`` appends ``x``. Every appended ``(key, x)`` is unique
in the history, so every element read names the one transaction that appended it.

Inference (Elle's, for list append):

* the *version order* of a key is the longest list read from it (including the final read
  taken after the run, when given); every other read must be a prefix of it, else the key has
  an ``incompatible-order`` anomaly and yields no dependencies;
* ``ww``: the appender of element ``i`` precedes the appender of element ``i + 1``;
* ``wr``: the appender of the last element of an external read (a read of the key before the
  transaction's own appends to it) precedes the reader;
* ``rw`` (anti-dependency): a reader whose external read has length ``n`` precedes the appender
  of element ``n`` (the first one it did not see);
* ``rt`` (real time): a transaction that completed before another was invoked precedes it
  (built as a frontier, so the graph stays linear in size).

``ok`` transactions and ``info`` transactions (unknown outcome, committed if any of their
appends was read) are nodes; ``fail`` transactions did not commit: reading their appends is G1a.

Anomalies reported (each a violation of strict serializability):

* cycles: ``G0`` (ww only), ``G1c`` (ww and wr, at least one wr), ``G-single`` (exactly one rw),
  ``G2`` (several rw, no G-single found), and their ``-realtime`` variants when the cycle needs
  an ``rt`` edge;
* ``G1a`` (aborted read), ``G1b`` (intermediate read: an element that was not its writer's last
  append to the key), ``garbage-read`` (an element nobody appended), ``duplicate-elements``,
  ``incompatible-order``;
* ``lost-append``: an acknowledged append absent from the version order of its key although a
  read of the key (or the final read) began after the append was acknowledged.

The checker is pure: no I/O, no clocks; bounded by ``max_cycles`` reports per anomaly type and
``max_searches`` path searches per cycle type.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from jepsen_style.history import INF, Event, HistoryError, Process, Value, pair

TXN = "txn"
EDGE_TYPES = ("ww", "wr", "rw", "rt")
CYCLE_TYPES = ("G0", "G1c", "G-single", "G2")


@dataclass(frozen=True, slots=True)
class Mop:
    """One micro-operation: ``f`` is ``r`` or ``append``; ``value`` the list read (None when
    unknown) or the element appended."""

    f: str
    key: str
    value: tuple[int, ...] | int | None


@dataclass(frozen=True, slots=True)
class Txn:
    """A paired transaction: ``type`` ok / info / fail; ``ret`` is inf for info."""

    id: int
    process: Process
    type: str
    call: int
    ret: float
    mops: tuple[Mop, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "process": self.process, "type": self.type, "call": self.call,
            "ret": None if self.ret == INF else int(self.ret),
            "mops": [[m.f, m.key, list(m.value) if isinstance(m.value, tuple) else m.value]
                     for m in self.mops],
        }


@dataclass
class AppendResult:
    """``valid`` is False when any anomaly was found; ``anomalies`` maps a type to examples."""

    valid: bool
    anomalies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "anomaly_types": sorted(self.anomalies),
                "anomaly_counts": self.counts, "anomalies": self.anomalies, "stats": self.stats}


def parse_mops(value: Value, where: str) -> tuple[Mop, ...]:
    """Micro-operations from a history value (a tuple of ``(f, key, value)`` triples)."""
    if not isinstance(value, tuple):
        raise HistoryError(f"{where}: a txn value must be a list of micro-operations")
    out: list[Mop] = []
    for raw in value:
        if not (isinstance(raw, tuple) and len(raw) == 3 and isinstance(raw[1], str)):
            raise HistoryError(f"{where}: bad micro-operation {raw!r}")
        f, key, v = raw[0], str(raw[1]), raw[2]
        if f == "r":
            if v is None:
                out.append(Mop("r", key, None))
                continue
            if not isinstance(v, tuple):
                raise HistoryError(f"{where}: a read must be null or a list of integers")
            elems = tuple(e for e in v if isinstance(e, int) and not isinstance(e, bool))
            if len(elems) != len(v):
                raise HistoryError(f"{where}: a read must be null or a list of integers")
            out.append(Mop("r", key, elems))
        elif f == "append":
            if not isinstance(v, int) or isinstance(v, bool):
                raise HistoryError(f"{where}: an append needs an integer")
            out.append(Mop("append", key, v))
        else:
            raise HistoryError(f"{where}: unknown micro-operation {f!r}")
    return tuple(out)


def txns_from_events(events: Sequence[Event]) -> list[Txn]:
    """Pair a history of ``txn`` events into transactions (failed ones kept as ``fail``)."""
    ops = pair([e for e in events if e.f == TXN], keep_failed=(TXN,))
    txns: list[Txn] = []
    for op in ops:
        where = f"txn {op.id} (process {op.process!r})"
        value = op.output.value if op.output.type == "ok" else op.input.value
        txns.append(Txn(op.id, op.process, op.output.type, op.call, op.ret,
                        parse_mops(value, where)))
    return txns


class _Graph:
    """Typed dependency edges between transaction ids."""

    def __init__(self) -> None:
        self.adj: dict[str, dict[int, set[int]]] = {t: {} for t in EDGE_TYPES}

    def add(self, typ: str, a: int, b: int) -> None:
        if a != b:
            self.adj[typ].setdefault(a, set()).add(b)

    def succ(self, node: int, types: Iterable[str]) -> Iterable[tuple[int, str]]:
        for t in types:
            for b in self.adj[t].get(node, ()):
                yield b, t

    def nodes(self, types: Iterable[str]) -> set[int]:
        out: set[int] = set()
        for t in types:
            for a, bs in self.adj[t].items():
                out.add(a)
                out.update(bs)
        return out


def _sccs(graph: _Graph, types: tuple[str, ...]) -> list[set[int]]:
    """Strongly connected components with more than one node (iterative Tarjan)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[set[int]] = []
    counter = 0
    for root in sorted(graph.nodes(types)):
        if root in index:
            continue
        work: list[tuple[int, Iterator[tuple[int, str]]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(list(graph.succ(root, types)))))
        while work:
            node, it = work[-1]
            advanced = False
            for nxt, _ in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(list(graph.succ(nxt, types)))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp: set[int] = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(comp)
    return out


def _path(graph: _Graph, src: int, dst: int, types: tuple[str, ...],
          within: set[int]) -> list[tuple[int, str, int]] | None:
    """Shortest path src -> dst over ``types`` inside ``within``, as (from, type, to) steps."""
    if src == dst:
        return []
    prev: dict[int, tuple[int, str]] = {}
    seen = {src}
    queue = deque([src])
    while queue:
        node = queue.popleft()
        for nxt, typ in graph.succ(node, types):
            if nxt in seen or nxt not in within:
                continue
            seen.add(nxt)
            prev[nxt] = (node, typ)
            if nxt == dst:
                steps: list[tuple[int, str, int]] = []
                cur = dst
                while cur != src:
                    p, t = prev[cur]
                    steps.append((p, t, cur))
                    cur = p
                return steps[::-1]
            queue.append(nxt)
    return None


_REQUIRED = {"G0": "ww", "G1c": "wr", "G-single": "rw", "G2": "rw"}
_ALLOWED = {"G0": ("ww",), "G1c": ("ww", "wr"), "G-single": ("ww", "wr", "rw"),
            "G2": ("ww", "wr", "rw")}


def _cycles(graph: _Graph, kind: str, realtime: bool, max_cycles: int,
            max_searches: int) -> list[list[tuple[int, str, int]]]:
    """Cycles of one kind: each closes one ``_REQUIRED`` edge a->b with a path b->a. For
    G-single the path avoids rw (exactly one rw); realtime variants must contain an rt edge."""
    allowed = _ALLOWED[kind] + (("rt",) if realtime else ())
    back = tuple(t for t in allowed if t != "rw") if kind == "G-single" else allowed
    found: list[list[tuple[int, str, int]]] = []
    searches = 0
    for comp in _sccs(graph, allowed):
        for a in sorted(comp):
            for b in sorted(graph.adj[_REQUIRED[kind]].get(a, ())):
                if b not in comp:
                    continue
                if searches >= max_searches or len(found) >= max_cycles:
                    return found
                searches += 1
                path = _path(graph, b, a, back, comp)
                if path is None:
                    continue
                cycle = [(a, _REQUIRED[kind], b), *path]
                types = [t for _, t, _ in cycle]
                if realtime and "rt" not in types:
                    continue
                if kind == "G2" and types.count("rw") < 2:
                    continue  # a G-single, reported as such
                found.append(cycle)
    return found


def check(txns: Sequence[Txn], final: Mapping[str, Sequence[int]] | None = None,
          max_cycles: int = 5, max_examples: int = 20, max_searches: int = 2000) -> AppendResult:
    """Check transactions (see the module docstring); ``final`` maps keys to the lists read
    after the run (a key absent from ``final`` was not read finally; ``{}`` means none
    existed)."""
    by_id = {t.id: t for t in txns}
    anomalies: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}

    def report(kind: str, doc: dict[str, Any]) -> None:
        counts[kind] = counts.get(kind, 0) + 1
        lst = anomalies.setdefault(kind, [])
        if len(lst) < max_examples:
            lst.append(doc)

    writer: dict[tuple[str, int], int] = {}
    last_append: dict[tuple[int, str], int] = {}
    for t in txns:
        for m in t.mops:
            if m.f == "append":
                assert isinstance(m.value, int)
                if (m.key, m.value) in writer:
                    report("duplicate-appends", {"key": m.key, "element": m.value})
                writer[(m.key, m.value)] = t.id
                last_append[(t.id, m.key)] = m.value

    # External reads: the first micro-op on a key in a txn, when it is a read.
    reads: dict[str, list[tuple[int | None, tuple[int, ...]]]] = {}
    ext_reads: list[tuple[Txn, str, tuple[int, ...]]] = []
    for t in txns:
        if t.type != "ok":
            continue
        touched: set[str] = set()
        for m in t.mops:
            if m.f == "r" and isinstance(m.value, tuple):
                reads.setdefault(m.key, []).append((t.id, m.value))
                if m.key not in touched:
                    ext_reads.append((t, m.key, m.value))
            touched.add(m.key)
    for k, lst in (final or {}).items():
        reads.setdefault(k, []).append((None, tuple(lst)))

    # Version orders, prefix compatibility, element-level anomalies.
    order: dict[str, tuple[int, ...]] = {}
    for k, rs in reads.items():
        longest = max((r for _, r in rs), key=len)
        ok = True
        for tid, r in rs:
            if longest[:len(r)] != r:
                ok = False
                report("incompatible-order", {"key": k, "txn": tid, "read": list(r)[-10:],
                                              "longest": list(longest)[-10:]})
                break
            if len(set(r)) != len(r):
                report("duplicate-elements", {"key": k, "txn": tid, "read": list(r)})
        if ok:
            order[k] = longest
        for tid, r in rs:
            for x in set(r):
                w = writer.get((k, x))
                if w is None:
                    report("garbage-read", {"key": k, "element": x, "txn": tid})
                elif by_id[w].type == "fail":
                    report("G1a", {"key": k, "element": x, "txn": tid,
                                   "writer": by_id[w].describe()})
            if r and tid is not None:
                w = writer.get((k, r[-1]))
                if w is not None and w != tid and last_append.get((w, k)) != r[-1]:
                    report("G1b", {"key": k, "element": r[-1], "txn": tid, "writer": w})

    graph = _Graph()
    live = {t.id for t in txns if t.type != "fail"}
    for k, full in order.items():
        ws = [writer.get((k, x)) for x in full]
        for w1, w2 in pairwise(ws):
            if w1 is not None and w2 is not None and w1 in live and w2 in live:
                graph.add("ww", w1, w2)
    for t, k, r in ext_reads:
        vs = order.get(k)
        if vs is None:
            continue
        if r:
            w = writer.get((k, r[-1]))
            if w is not None and w in live:
                graph.add("wr", w, t.id)
        if len(r) < len(vs):
            w = writer.get((k, vs[len(r)]))
            if w is not None and w in live:
                graph.add("rw", t.id, w)
    _realtime_edges(graph, [t for t in txns if t.id in live])

    for realtime in (False, True):
        for kind in CYCLE_TYPES:
            name = kind + ("-realtime" if realtime else "")
            for cycle in _cycles(graph, kind, realtime, max_cycles, max_searches):
                report(name, {"cycle": [{"from": a, "type": typ, "to": b} for a, typ, b in cycle],
                              "txns": [by_id[a].describe() for a, _, _ in cycle]})

    # Lost appends: acknowledged, never in the version order, though read later.
    latest_read_call: dict[str, float] = {}
    for t, k, _ in ext_reads:
        latest_read_call[k] = max(latest_read_call.get(k, -INF), t.call)
    for t in txns:
        if t.type != "ok":
            continue
        for m in t.mops:
            if m.f != "append":
                continue
            vs = order.get(m.key)
            read_after = (final is not None and m.key in final) or (
                latest_read_call.get(m.key, -INF) > t.ret)
            if read_after and (vs is None or m.value not in vs):
                if m.key not in order and m.key in reads:
                    continue  # incompatible key: already reported
                report("lost-append", {"key": m.key, "element": m.value, "txn": t.describe()})

    unread = sum(1 for (k, x), w in writer.items()
                 if by_id[w].type == "ok" and x not in order.get(k, ()))
    stats = {
        "txns": len(txns), "ok": sum(t.type == "ok" for t in txns),
        "info": sum(t.type == "info" for t in txns), "fail": sum(t.type == "fail" for t in txns),
        "keys": len(order), "longest_list": max((len(v) for v in order.values()), default=0),
        "unread_acknowledged_appends": unread,
        **{f"edges_{t}": sum(len(b) for b in graph.adj[t].values()) for t in EDGE_TYPES},
    }
    return AppendResult(not anomalies, anomalies, counts, stats)


def _realtime_edges(graph: _Graph, txns: Sequence[Txn]) -> None:
    """rt edges, transitively reduced: every invocation links from the current frontier of
    completed transactions; a completion evicts the frontier members it already follows."""
    # (time, 0 invoke / 1 completion, id): at equal times the invocation comes first, so an
    # operation is never ordered after one that completed at the very instant it began.
    points: list[tuple[float, int, int]] = []
    for t in txns:
        points.append((t.call, 0, t.id))
        if t.type == "ok":
            points.append((t.ret, 1, t.id))
    points.sort()
    frontier: set[int] = set()
    preds: dict[int, frozenset[int]] = {}
    for _, kind, tid in points:
        if kind == 0:
            preds[tid] = frozenset(frontier)
            for p in frontier:
                graph.add("rt", p, tid)
        else:
            # Everything that was in the frontier when tid was invoked precedes tid, so tid
            # stands in for it in later edges.
            frontier -= preds.get(tid, frozenset())
            frontier.add(tid)
