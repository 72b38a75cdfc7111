"""Plots of a run: throughput and latency over time, fault windows shaded (matplotlib, PNG).

``plot_run(samples, faults, out_dir)`` writes ``throughput.png`` (completions per second by
type ok / fail / info, one-second buckets) and ``latency.png`` (each completed operation's
latency against its completion time, log scale, by type). Fault windows (``faults`` as in
``nemesis.json``: ``start``/``end`` seconds since the run start) are shaded and labelled by
nemesis. Uses the non-interactive Agg backend; needs no display.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

COLORS = {"ok": "#2a9d4b", "fail": "#d98b1b", "info": "#c0392b"}
FAULT_COLORS = {"kill": "#e74c3c", "pause": "#8e44ad", "partition": "#2980b9",
                "latency": "#16a085", "admin": "#7f8c8d", "partition-leader": "#1f5f8b"}


class _Sample(Protocol):
    t: float
    latency: float
    type: str


def _shade(ax: Any, faults: Iterable[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for f in faults:
        if f.get("start") is None:
            continue
        end = f.get("end") if f.get("end") is not None else f["start"] + 0.5
        name = str(f.get("nemesis", "fault"))
        label = name if name not in seen else None
        seen.add(name)
        ax.axvspan(f["start"], max(end, f["start"] + 0.2), alpha=0.18,
                   color=FAULT_COLORS.get(name, "#999999"), label=label, lw=0)


def plot_run(samples: Sequence[_Sample], faults: Sequence[dict[str, Any]], out_dir: Path,
             title: str = "") -> list[Path]:
    """Write the two PNGs into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    span = max((s.t for s in samples), default=1.0)
    nb = int(span) + 1
    out: list[Path] = []

    fig, ax = plt.subplots(figsize=(11, 4))
    xs = list(range(nb))
    for typ in ("ok", "fail", "info"):
        counts = [0] * nb
        for s in samples:
            if s.type == typ:
                counts[min(nb - 1, int(s.t))] += 1
        if any(counts):
            ax.step(xs, counts, where="post", color=COLORS[typ], label=typ, lw=1.2)
    _shade(ax, faults)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("completions / s")
    ax.set_title(f"throughput {title}".strip(), fontsize=9)
    ax.set_xlim(0, max(span, 1.0))
    ax.legend(loc="upper right", fontsize=8, ncols=4)
    fig.tight_layout()
    p = out_dir / "throughput.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(p)

    fig, ax = plt.subplots(figsize=(11, 4))
    for typ in ("ok", "fail", "info"):
        pts = [(s.t, max(s.latency, 1e-5)) for s in samples if s.type == typ]
        if pts:
            ax.scatter([a for a, _ in pts], [b for _, b in pts], s=3, color=COLORS[typ],
                       label=typ, alpha=0.6, lw=0)
    _shade(ax, faults)
    ax.set_yscale("log")
    ax.set_xlabel("completion time since start (s)")
    ax.set_ylabel("latency (s)")
    ax.set_title(f"latency {title}".strip(), fontsize=9)
    ax.set_xlim(0, max(span, 1.0))
    ax.legend(loc="upper right", fontsize=8, ncols=4, markerscale=3)
    fig.tight_layout()
    p = out_dir / "latency.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out.append(p)
    return out
