"""Standalone HTML timelines of linearizability violations.

:func:`write_report` renders the partition that failed as an SVG timeline, one row per process,
each operation a horizontal bar from its call to its return (open operations run to the right
edge, dashed). The x axis is the *rank* of event times, not their value, so bursts stay legible;
hovering a bar shows the exact times. Colours: operations of the longest linearizable prefix are
green and numbered in linearization order, the operations that cannot be linearized next are
red, the blocked operation has a thick outline, everything else is grey. The page needs no
network access or scripts.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from jepsen_style.checker.linearizability import Counterexample
from jepsen_style.history import Operation
from jepsen_style.models import Model

_ROW = 28
_BAR = 16
_STEP = 14  # pixels per distinct event time
_LEFT = 70
_TOP = 30


def _partition_of(model: Model, ops: Sequence[Operation], cex: Counterexample) -> list[Operation]:
    for part in model.partition(ops):
        if any(op.id == cex.blocked.id for op in part):
            return part
    return [cex.blocked]


def render_html(
    title: str, model: Model, ops: Sequence[Operation], cex: Counterexample
) -> str:
    """Return the complete HTML page for one violation (``ops``: the whole paired history)."""
    part = _partition_of(model, ops, cex)
    times = sorted({op.call for op in part} | {int(op.ret) for op in part if not op.open})
    rank = {t: i for i, t in enumerate(times)}
    right = _LEFT + _STEP * (len(times) + 2)
    procs = sorted({op.process for op in part}, key=lambda p: (isinstance(p, str), str(p)))
    row = {p: i for i, p in enumerate(procs)}
    order = {op.id: i + 1 for i, op in enumerate(cex.prefix)}
    bad = {c.op.id for c in cex.candidates} | {cex.blocked.id}

    svg: list[str] = []
    for p in procs:
        y = _TOP + row[p] * _ROW
        svg.append(
            f'<text x="4" y="{y + _BAR - 3}" class="proc">p{html.escape(str(p))}</text>'
            f'<line x1="{_LEFT}" y1="{y + _BAR // 2}" x2="{right}" y2="{y + _BAR // 2}" '
            'class="lane"/>'
        )
    for op in part:
        y = _TOP + row[op.process] * _ROW
        x0 = _LEFT + _STEP * rank[op.call]
        x1 = right - 4 if op.open else _LEFT + _STEP * rank[int(op.ret)] + _STEP // 2
        cls = "bad" if op.id in bad else ("lin" if op.id in order else "other")
        if op.id == cex.blocked.id:
            cls += " blocked"
        if op.open:
            cls += " open"
        desc = model.describe_operation(op.input, op.output)
        ret = "inf (unknown outcome)" if op.open else str(int(op.ret))
        tip = f"#{op.id} p{op.process} {desc}\ncall {op.call}, return {ret}"
        if op.id in order:
            tip += f"\nlinearized #{order[op.id]} of the prefix"
        label = desc if op.id not in order else f"{order[op.id]}: {desc}"
        svg.append(
            f'<g class="{cls}"><title>{html.escape(tip)}</title>'
            f'<rect x="{x0}" y="{y}" width="{max(x1 - x0, 6)}" height="{_BAR}" rx="3"/>'
            f'<text x="{x0 + 3}" y="{y + _BAR - 4}">{html.escape(label)}</text></g>'
        )
    height = _TOP + len(procs) * _ROW + 10
    explanation = html.escape(cex.describe(model, tail=12))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
pre {{ background: #f4f4f4; padding: .6em; overflow-x: auto; }}
.timeline {{ overflow-x: auto; border: 1px solid #ccc; }}
svg text {{ font-size: 10px; font-family: monospace; pointer-events: none; }}
.proc {{ font-weight: bold; }}
.lane {{ stroke: #eee; }}
.lin rect {{ fill: #b7e4b0; stroke: #4a8f3f; }}
.bad rect {{ fill: #f4a6a6; stroke: #b22222; }}
.other rect {{ fill: #ddd; stroke: #999; }}
.blocked rect {{ stroke-width: 3; }}
.open rect {{ stroke-dasharray: 4 3; }}
</style></head><body>
<h1>{html.escape(title)}: not linearizable</h1>
<p>Partition {cex.partition} ({len(part)} operations). Green: longest linearizable prefix,
numbered in order. Red: cannot be linearized next (thick outline: must take effect before it
returns). Dashed: unknown outcome, open to the end. Hover a bar for exact times.</p>
<pre>{explanation}</pre>
<div class="timeline"><svg xmlns="http://www.w3.org/2000/svg" width="{right + 10}"
height="{height}">{"".join(svg)}</svg></div>
</body></html>
"""


def write_report(
    directory: Path, source: str, model: Model, ops: Sequence[Operation], cex: Counterexample
) -> Path:
    """Write ``<directory>/<source file name>.html`` (directory created) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(source).name) or "history"
    path = directory / f"{name}.html"
    path.write_text(render_html(Path(source).name, model, ops, cex), encoding="utf-8")
    return path
