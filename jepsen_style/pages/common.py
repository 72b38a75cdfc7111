"""What both pages share: a run's verdict as read from its directory, labels, style, writing.

A run directory is a directory holding ``verdict.json`` (written by :mod:`jepsen_style.runner`).
Fields the runner of an older or newer version may not write (``bootstrap``,
``stats.ok_per_s_during_faults``, ``finished``, ``members``) read as absent and show as "-".
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

WORDS = {True: "VALID", False: "VIOLATION", None: "UNKNOWN"}
CLASSES = {"VALID": "valid", "VIOLATION": "violation", "UNKNOWN": "unknown"}
BOOTSTRAP_ORDER = ("static", "discovery", "dns")
TARGET_ORDER = ("petcd", "etcd-3.5", "etcd-3.4")

CSS = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; max-height: 30em; }
.badge { display: inline-block; padding: .15em .6em; border-radius: .3em; font-weight: bold; }
.valid { background: #c8ecc4; } .violation { background: #f6b3b3; }
.unknown { background: #f3df9c; } .empty { background: #fafafa; color: #aaa; }
td.cell { text-align: center; min-width: 7em; }
td.cell a { font-weight: bold; color: #222; }
.rates { font-size: .8em; color: #444; }
.muted { color: #777; font-size: .9em; }
img.plot { max-width: 100%; border: 1px solid #ddd; }
iframe.cex { width: 100%; height: 32em; border: 1px solid #ccc; }
.pair { display: flex; flex-wrap: wrap; gap: 0 3em; }
svg text { font-size: 11px; font-family: sans-serif; }
"""


def esc(value: object) -> str:
    """HTML-escaped text of ``value`` ("-" for None)."""
    return "-" if value is None else html.escape(str(value))


def href(*parts: str) -> str:
    """A relative URL from path components (each percent-encoded, "/"-joined)."""
    return "/".join(quote(p) for p in parts)


def fmt_num(value: Any, digits: int = 0) -> str:
    """A number with ``digits`` decimals, or "-" when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}f}"


def page(title: str, body: str) -> str:
    """A complete HTML document (no scripts, no external resources)."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def write_atomic(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (temporary file in the same directory)."""
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run directory's verdict.json, with the labels the pages use."""

    dir: Path
    doc: dict[str, Any]
    mtime: float

    @property
    def run_id(self) -> str:
        return str(self.doc.get("run") or self.dir.name)

    @property
    def word(self) -> str:
        valid = self.doc.get("valid")
        return WORDS.get(valid if isinstance(valid, bool) else None, "UNKNOWN")

    @property
    def target(self) -> str:
        return str(self.doc.get("target") or "-")

    @property
    def backend(self) -> str:
        return str(self.doc.get("backend") or "-")

    @property
    def bootstrap(self) -> str:
        return str(self.doc.get("bootstrap") or "-")

    @property
    def nemesis(self) -> str:
        nem = self.doc.get("nemesis") or []
        names = ",".join(str(n) for n in nem) if isinstance(nem, list) else str(nem)
        return names or "none"

    @property
    def control(self) -> bool:
        """The stale-read control: a violation is what a correct cluster is expected to give."""
        return bool(self.doc.get("serializable_reads")) and bool(self.doc.get("isolated_reads"))

    @property
    def workload(self) -> str:
        """The workload with what changes its meaning: read mode, isolation, cluster size."""
        name = str(self.doc.get("workload") or "-")
        extra = []
        if self.doc.get("serializable_reads"):
            extra.append("serializable")
        if self.doc.get("isolated_reads"):
            extra.append("isolated reads")
        members = self.doc.get("members")
        if isinstance(members, int) and members != 3:
            extra.append(f"{members} members")
        return f"{name} ({', '.join(extra)})" if extra else name

    def stat(self, name: str) -> Any:
        stats = self.doc.get("stats")
        return stats.get(name) if isinstance(stats, dict) else None

    @property
    def finished(self) -> str:
        return str(self.doc.get("finished") or "")

    def order_key(self) -> tuple[str, float, str]:
        """Newest last: the recorded finish time (UTC ISO), else the file time, then the id."""
        return (self.finished, self.mtime, self.run_id)


def load_run(run_dir: Path) -> RunInfo | None:
    """The run in ``run_dir``, or None when it has no readable verdict.json."""
    path = run_dir / "verdict.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return None
    return RunInfo(run_dir, doc, mtime) if isinstance(doc, dict) else None


def run_dirs(results_dir: Path) -> list[Path]:
    """The run directories directly under ``results_dir``, by name."""
    if not results_dir.is_dir():
        return []
    return sorted(d for d in results_dir.iterdir() if (d / "verdict.json").is_file())


def rank(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: the values of ``order`` first, in that order, then the rest by name."""
    return (order.index(value), "") if value in order else (len(order), value)
