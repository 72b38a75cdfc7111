"""Collapsed stacks (py-spy `--format raw`) -> top-N tables and a self-contained SVG flame graph.

A collapsed-stack file has one line per distinct stack: frames from the root outwards joined by
`;`, a space, and the number of samples that ended in that stack. py-spy writes frames as
`function (file:line)`. `parse` reads such a file; `top_own` ranks frames by the samples in
which they were the innermost frame (own time), `top_total` by the samples that contain them
anywhere (inclusive time, a frame counted once per stack even when recursive); `svg` draws the
stacks as a flame graph (root at the bottom, width proportional to samples, a tooltip per box).
"""

from __future__ import annotations

import html
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

Stack = tuple[tuple[str, ...], int]


def parse(text: str) -> list[Stack]:
    """The (frames, samples) pairs of a collapsed-stack text; malformed lines are skipped."""
    out: list[Stack] = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        out.append((tuple(stack.split(";")), int(count)))
    return out


def total(stacks: Iterable[Stack]) -> int:
    return sum(n for _, n in stacks)


def top_own(stacks: Iterable[Stack], n: int = 20) -> list[tuple[str, int]]:
    """The `n` frames with most own samples (innermost frame of the stack)."""
    c: Counter[str] = Counter()
    for frames, count in stacks:
        if frames:
            c[frames[-1]] += count
    return c.most_common(n)


def top_total(stacks: Iterable[Stack], n: int = 20) -> list[tuple[str, int]]:
    """The `n` frames present in most samples (inclusive time)."""
    c: Counter[str] = Counter()
    for frames, count in stacks:
        for f in set(frames):
            c[f] += count
    return c.most_common(n)


def table(title: str, rows: list[tuple[str, int]], samples: int) -> str:
    lines = [title, f"{'samples':>8} {'%':>6}  frame"]
    for frame, count in rows:
        pct = 100.0 * count / samples if samples else 0.0
        lines.append(f"{count:8d} {pct:6.2f}  {frame}")
    return "\n".join(lines) + "\n"


@dataclass
class _Node:
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Iterable[Stack]) -> _Node:
    root = _Node()
    for frames, count in stacks:
        node = root
        node.count += count
        for f in frames:
            node = node.children.setdefault(f, _Node())
            node.count += count
    return root


WIDTH = 1200
ROW = 16
PAD = 10
MIN_PX = 0.3
"""Boxes narrower than this many pixels are not drawn (their samples still widen the parent)."""
CHAR_PX = 6.6
"""Approximate width of one character of the 11px monospace label font."""


def _color(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 120},{(h >> 16) % 55})"


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def svg(stacks: list[Stack], title: str) -> str:
    """A flame graph of `stacks` as a standalone SVG document (no script)."""
    root = _tree(stacks)
    samples = root.count
    depth = _depth(root)
    height = (depth + 1) * ROW + 3 * PAD + 20
    scale = (WIDTH - 2 * PAD) / samples if samples else 0.0
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">'),
        '<rect width="100%" height="100%" fill="#f8f8f0"/>',
        (f'<text x="{PAD}" y="{PAD + 12}" font-size="14">{html.escape(title)} '
        f"({samples} samples)</text>"),
    ]

    def draw(name: str, node: _Node, x: float, level: int) -> None:
        w = node.count * scale
        if w < MIN_PX:
            return
        y = height - PAD - (level + 1) * ROW
        pct = 100.0 * node.count / samples
        label = html.escape(name)
        parts.append(
            f'<g><title>{label} ({node.count} samples, {pct:.2f}%)</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{ROW - 1}" '
            f'fill="{_color(name)}"/>'
        )
        chars = int((w - 4) / CHAR_PX)
        if chars >= 3:
            text = name if len(name) <= chars else name[: chars - 2] + ".."
            parts.append(f'<text x="{x + 2:.2f}" y="{y + ROW - 4}">{html.escape(text)}</text>')
        parts.append("</g>")
        cx = x
        for cname, child in sorted(node.children.items()):
            draw(cname, child, cx, level + 1)
            cx += child.count * scale

    if samples:
        draw("all", root, PAD, 0)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(stacks: list[Stack], title: str, path: Path) -> None:
    path.write_text(svg(stacks, title))
