"""PNG plots of a `harness.scale` run, every implementation on the same axes (matplotlib, Agg).

growth.png (put/get req/s and p99, range latency, fill rate against keys), memory.png (RSS
and disk of the largest member against keys), watch.png (events/s against watchers) and
lease_catchup.png (keep-alives/s and a new member's catch-up time). Each figure's caption
gives the 1-minute load average at the start and end of the steps it shows, and LOADED.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import bench

if TYPE_CHECKING:
    from harness.scale import Point, ScaleRun

COLORS = ("#c0392b", "#2471a3", "#2a9d4b", "#8e44ad")


def _color(run: ScaleRun, impl: str) -> str:
    names = run.options.impls
    return COLORS[names.index(impl) % len(COLORS)] if impl in names else "#7f8c8d"


def _caption(run: ScaleRun, loads: Sequence[tuple[str, str]]) -> str:
    starts = [bench.load1(s) for s, _ in loads if s]
    ends = [bench.load1(e) for _, e in loads if e]
    if not starts:
        return f"{run.started}; {run.cpus} CPUs"
    flag = "  LOADED" if run.is_loaded(*[s for s, _ in loads], *[e for _, e in loads]) else ""
    return (f"{run.started}; 1-min load average at start {starts[0]:.2f}, at end {ends[-1]:.2f} "
            f"(max {max(starts + ends):.2f}); {run.cpus} CPUs{flag}")


def _finish(fig: Any, caption: str, path: Path) -> Path:
    fig.text(0.01, 0.005, caption, fontsize=8, color="#444444")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _series(run: ScaleRun, impl: str, fig: Callable[[Point], float]) -> tuple[list[int], list[float]]:
    pts = sorted((p for p in run.points if p.impl == impl and p.keys > 0), key=lambda p: p.keys)
    return [p.keys for p in pts], [fig(p) for p in pts]


def _keys_axes(run: ScaleRun, ax: Any, title: str, ylabel: str,
               fig: Callable[[Point], float]) -> None:
    for impl in run.impls:
        xs, ys = _series(run, impl, fig)
        if xs:
            ax.plot(xs, ys, marker="o", color=_color(run, impl), label=impl, lw=1.5)
    keys = [p.keys for p in run.points if p.keys > 0]
    if keys and max(keys) >= 5 * min(keys):
        ax.set_xscale("log")
    ax.set_xlabel("keys in the store (1 KiB values)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot(run: ScaleRun, out: Path) -> list[Path]:
    """Write the figures that have data into `out`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    if run.points:
        loads = [(p.load_start, p.load_end) for p in run.points]
        fig, axs = plt.subplots(2, 3, figsize=(14, 7.5))
        _keys_axes(run, axs[0][0], "put throughput (overwrites)", "req/s", lambda p: p.put.rps)
        _keys_axes(run, axs[0][1], "linearizable get throughput", "req/s", lambda p: p.get.rps)
        _keys_axes(run, axs[0][2], f"range over {run.options.range_keys} keys: p50", "ms",
                   lambda p: p.range.p50_ms)
        _keys_axes(run, axs[1][0], "put p99", "ms", lambda p: p.put.p99_ms)
        _keys_axes(run, axs[1][1], "get p99", "ms", lambda p: p.get.p99_ms)
        _keys_axes(run, axs[1][2], "CPU per put, all members", "ms/req",
                   lambda p: p.put.server_cpu_ms_per_req)
        paths.append(_finish(fig, _caption(run, loads), out / "growth.png"))
        fig, axs = plt.subplots(1, 2, figsize=(11, 4.2))
        _keys_axes(run, axs[0], "RSS of the largest member", "MiB",
                   lambda p: max(p.rss_mib, default=0))
        _keys_axes(run, axs[1], "data dir on disk, largest member", "MiB",
                   lambda p: max(p.disk_mib, default=0))
        paths.append(_finish(fig, _caption(run, loads), out / "memory.png"))
    if run.watch:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for impl in run.impls:
            ws = sorted((w for w in run.watch if w.impl == impl), key=lambda w: w.watchers)
            if ws:
                ax.plot([w.watchers for w in ws], [w.events_per_s for w in ws], marker="o",
                        color=_color(run, impl), label=impl, lw=1.5)
        if max(w.watchers for w in run.watch) >= 10:
            ax.set_xscale("log")
        ax.set_xlabel("watchers on one key")
        ax.set_ylabel("events delivered / s")
        ax.set_title("watch fan-out", fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(_finish(fig, _caption(run, [(w.load_start, w.load_end) for w in run.watch]),
                             out / "watch.png"))
    if run.lease or run.catchup:
        fig, axs = plt.subplots(1, 2, figsize=(10, 4.2))
        rank = {impl: n for n, impl in enumerate(run.options.impls)}
        leases = sorted(run.lease, key=lambda r: rank.get(r.impl, 9))
        axs[0].bar([r.impl for r in leases], [r.rps for r in leases],
                   color=[_color(run, r.impl) for r in leases])
        axs[0].set_title(f"lease keep-alives/s with {run.options.leases} leases", fontsize=9)
        axs[0].set_ylabel("keep-alives / s")
        cs = sorted((c for c in run.catchup if not c.error), key=lambda c: rank.get(c.impl, 9))
        axs[1].bar([f"{c.impl}\n{c.keys} keys" for c in cs], [c.seconds for c in cs],
                   color=[_color(run, c.impl) for c in cs])
        axs[1].set_title("a new member catching up (start to serving)", fontsize=9)
        axs[1].set_ylabel("seconds")
        loads = [(r.load_start, r.load_end) for r in leases] + [
            (c.load_start, c.load_end) for c in run.catchup]
        paths.append(_finish(fig, _caption(run, loads), out / "lease_catchup.png"))
    return paths
