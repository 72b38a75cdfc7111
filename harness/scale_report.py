"""The text of a `harness.scale` run: scale.md's tables and the notes on where curves bend.

A curve "bends" when the first implementation's figure worsens from the smallest to the
largest checkpoint by more than `BEND_FACTOR` times as much as the second's (and by at least
`BEND_MIN`): its cost grows with the store where the reference's stays flat or linear. CPU
per request is the figure that survives a loaded box; req/s and p99 move with other load.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from harness import bench

if TYPE_CHECKING:
    from harness.scale import Point, ScaleRun

BEND_FACTOR = 1.5
BEND_MIN = 1.3

# (label, figure of a point, True when higher is better)
METRICS: tuple[tuple[str, Callable[[Point], float], bool], ...] = (
    ("put req/s", lambda p: p.put.rps, True),
    ("put p99", lambda p: p.put.p99_ms, False),
    ("put CPU ms/req", lambda p: p.put.server_cpu_ms_per_req, False),
    ("get req/s", lambda p: p.get.rps, True),
    ("get p99", lambda p: p.get.p99_ms, False),
    ("get CPU ms/req", lambda p: p.get.server_cpu_ms_per_req, False),
    ("range p50", lambda p: p.range.p50_ms, False),
    ("fill keys/s", lambda p: p.fill_keys_per_s, True),
)


def by_impl(run: ScaleRun, impl: str) -> list[Point]:
    return sorted((p for p in run.points if p.impl == impl and p.keys > 0), key=lambda p: p.keys)


def _worsening(points: Sequence[Point], fig: Callable[[Point], float], higher: bool) -> float | None:
    """How many times worse the figure is at the last point than at the first (None: unknown)."""
    a, b = fig(points[0]), fig(points[-1])
    if a <= 0 or b <= 0:
        return None
    return a / b if higher else b / a


def _per_key_kib(points: Sequence[Point], attr: str) -> list[float]:
    """Marginal KiB per key of the largest member's RSS or disk, between successive points."""
    out = []
    for p, q in itertools.pairwise(points):
        dk = q.keys - p.keys
        if dk > 0:
            out.append((max(getattr(q, attr)) - max(getattr(p, attr))) * 1024 / dk)
    return out


def bend_notes(run: ScaleRun) -> list[str]:
    """One line per figure comparing how the two implementations' curves grow."""
    impls = run.impls
    if len(impls) < 2:
        return []
    a, b = impls[:2]
    pa, pb = by_impl(run, a), by_impl(run, b)
    if len(pa) < 2 or len(pb) < 2:
        return ["one checkpoint only: no curve to compare (grow to more keys for a shape)"]
    notes: list[str] = []
    span = f"{pa[0].keys} to {pa[-1].keys} keys"
    for label, fig, higher in METRICS:
        if label == "range p50" and len({p.range_keys for p in pa + pb}) > 1:
            pa_r = [p for p in pa if p.range_keys == pa[-1].range_keys]
            pb_r = [p for p in pb if p.range_keys == pb[-1].range_keys]
            if len(pa_r) < 2 or len(pb_r) < 2:
                continue
            wa, wb = _worsening(pa_r, fig, higher), _worsening(pb_r, fig, higher)
        else:
            wa, wb = _worsening(pa, fig, higher), _worsening(pb, fig, higher)
        if wa is None or wb is None:
            continue
        bends = wa > BEND_FACTOR * wb and wa >= BEND_MIN
        tag = "**BENDS**: " if bends else ""
        if bends and run.loaded and "CPU" not in label:
            tag = "bends, but on a loaded box (trust the CPU ms/req lines): "
        notes.append(f"{tag}{label}: cost x{wa:.2f} for {a}, x{wb:.2f} for {b} from {span} "
                     "(x above 1: worse at the larger store)")
    for attr, what in (("rss_mib", "RSS"), ("disk_mib", "disk")):
        ka, kb = _per_key_kib(pa, attr), _per_key_kib(pb, attr)
        if not ka or not kb:
            continue
        line = (f"{what} per added key (largest member, per segment): {a} "
                f"{', '.join(f'{x:.2f}' for x in ka)} KiB; {b} {', '.join(f'{x:.2f}' for x in kb)} KiB")
        if len(ka) >= 2 and len(kb) >= 2 and ka[0] > 0 and kb[0] > 0:
            ga, gb = ka[-1] / ka[0], kb[-1] / kb[0]
            if ga > BEND_FACTOR * max(gb, 1.0) and ga >= BEND_MIN:
                line = "**BENDS** (grows faster than linear): " + line
        notes.append(line)
    return notes


def _load(start: str, end: str, run: ScaleRun) -> str:
    flag = " LOADED" if run.is_loaded(start, end) else ""
    return f"{bench.load1(start):.2f}→{bench.load1(end):.2f}{flag}"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)]


def _ratio(x: float, y: float) -> str:
    return f"{x / y:.2f}" if x > 0 and y > 0 else "n/a"


def markdown(run: ScaleRun, pngs: Sequence[str] = ()) -> str:
    o = run.options
    impls = run.impls
    limit = bench.LOADED_PER_CPU * run.cpus
    lines = [f"# scale {run.started}: {' vs '.join(o.impls)}", "",
             (f"3-member local clusters on loopback, interleaved step by step (A B, B A, ...); "
              f"client {run.client} (one Python process: a ceiling both share); "
              f"{run.cpus} CPUs; run took {run.seconds:.0f}s."),
             (f"Load average (1/5/15 min) at start {run.load_start}, at end {run.load_end}. "
              + (f"**LOADED**: the 1-minute load exceeded {limit:g} ({bench.LOADED_PER_CPU:g} x "
                 f"{run.cpus} CPUs) in at least one step (its load column says LOADED); req/s "
                 "and latency are skewed by other work, CPU ms/req and ratios less so."
                 if run.loaded else f"Not loaded (1-minute load stayed below {limit:g}).")),
             (f"Options: --max-keys {o.max_keys}, checkpoints {o.plan()}, budget "
              f"{o.budget_minutes:g} min, {o.seconds:g}s per cell, {o.inflight} in flight, "
              f"1 KiB values, range over {o.range_keys} keys, --snapshot-count "
              f"{o.snapshot_count}, {o.leases} leases, watchers {o.watchers}."), ""]
    if run.stopped:
        lines += [f"**Budget:** {run.stopped}.", ""]
    for impl, why in run.failures.items():
        lines += [f"**{impl} not measured:** {why}", ""]
    lines += ["## Growth", "",
              ("RSS and disk: the largest member right after filling (etcd preallocates 64 MiB "
              "WAL segments). Range: one linearizable range over the first keys, values "
              "included. Load: 1-minute load average at the start → end of the checkpoint."), ""]
    rows = []
    for p in sorted(run.points, key=lambda p: (p.target_keys, impls.index(p.impl)
                                               if p.impl in impls else 9)):
        rows.append([p.keys, p.impl, f"{p.fill_keys_per_s:.0f}", f"{p.put.rps:.0f}",
                     f"{p.put.p99_ms:.2f}", f"{p.put.server_cpu_ms_per_req:.3f}",
                     f"{p.get.rps:.0f}", f"{p.get.p99_ms:.2f}",
                     f"{p.get.server_cpu_ms_per_req:.3f}", p.range_keys,
                     f"{p.range.p50_ms:.1f}", f"{p.range.p99_ms:.1f}",
                     f"{max(p.rss_mib, default=0):.0f}", f"{max(p.disk_mib, default=0):.0f}",
                     _load(p.load_start, p.load_end, run)])
    lines += _table(["keys", "impl", "fill keys/s", "put req/s", "put p99 ms", "put cpu ms/req",
                     "get req/s", "get p99 ms", "get cpu ms/req", "range keys", "range p50 ms",
                     "range p99 ms", "RSS MiB", "disk MiB", "load"], rows)
    if len(impls) >= 2:
        a, b = impls[:2]
        pa = {p.target_keys: p for p in run.points if p.impl == a}
        pb = {p.target_keys: p for p in run.points if p.impl == b}
        rows = [[k, _ratio(pa[k].put.rps, pb[k].put.rps), _ratio(pa[k].get.rps, pb[k].get.rps),
                 _ratio(pa[k].put.server_cpu_ms_per_req, pb[k].put.server_cpu_ms_per_req),
                 _ratio(pa[k].get.server_cpu_ms_per_req, pb[k].get.server_cpu_ms_per_req),
                 _ratio(pa[k].range.p50_ms, pb[k].range.p50_ms),
                 _ratio(max(pa[k].rss_mib, default=0), max(pb[k].rss_mib, default=0))]
                for k in sorted(pa) if k in pb]
        lines += ["", (f"Ratios {a}/{b} (req/s: higher is better for {a}; CPU, latency, RSS: "
                  f"lower is):"), ""]
        lines += _table(["keys", "put req/s", "get req/s", "put cpu", "get cpu", "range p50",
                         "RSS"], rows)
    lines += ["", "## Where the curves bend", ""]
    lines += [f"- {n}" for n in run.notes] or ["- (no comparison: fewer than two implementations)"]
    lines += ["", "## A new member catching up", "",
              ("A fourth member added (MemberAdd) and started; time from its start to serving the "
              "cluster's revision; removed again afterwards."), ""]
    lines += _table(["impl", "keys", "revision", "seconds", "via snapshot", "RSS MiB",
                     "disk MiB", "load", "error"],
                    [[c.impl, c.keys, c.revision, f"{c.seconds:.1f}",
                      "yes" if c.via_snapshot else "no", f"{c.rss_mib:.0f}", f"{c.disk_mib:.0f}",
                      _load(c.load_start, c.load_end, run), c.error] for c in run.catchup])
    lines += ["", "## Watch fan-out", "",
              ("Watchers on one key (100 per stream, streams spread over the members); a writer "
              "puts to it (4 in flight); events/s = events delivered to all watchers / time from "
              "the first put to the last event. Client cores near 1: the client is the ceiling."),
              ""]
    lines += _table(["watchers", "impl", "puts", "delivered / expected", "events/s",
                     "client cores", "load"],
                    [[w.watchers, w.impl, w.puts, f"{w.delivered} / {w.expected}",
                      f"{w.events_per_s:.0f}", f"{w.client_cpu_share:.2f}",
                      _load(w.load_start, w.load_end, run)]
                     for w in sorted(run.watch, key=lambda w: (w.watchers, w.impl))])
    lines += ["", "## Lease keep-alive", "",
              ("Leases granted first (64 in flight), then all kept alive round-robin over two "
              "LeaseKeepAlive streams per member, 64 requests in flight on each."), ""]
    lines += _table(["impl", "leases", "grant/s", "keep-alives/s", "p50 ms", "p99 ms",
                     "cpu ms/req", "errors", "load"],
                    [[r.impl, r.leases, f"{r.grant.rps:.0f}", f"{r.rps:.0f}", f"{r.p50_ms:.2f}",
                      f"{r.p99_ms:.2f}", f"{r.server_cpu_ms_per_req:.3f}", r.errors,
                      _load(r.load_start, r.load_end, run)] for r in run.lease])
    if pngs:
        lines += ["", "## Plots", ""] + [f"![{n}]({n})" for n in pngs]
    return "\n".join(lines) + "\n"
