"""``<run dir>/index.html``: one run on one page.

Sections, in order: the verdict (a badge with id ``verdict``), what ran, the load's numbers, the
fault timeline (an SVG strip, one lane per nemesis, plus a table of every window with what was
applied: ``detail`` and any further keys a nemesis records, such as Toxiproxy toxics with their
attributes and direction), the throughput and latency plots (the PNGs of
:mod:`jepsen_style.plots`, fault windows already shaded), the checker's result and, for a
violation, its counterexample (the linearizability checker's HTML timeline of
:mod:`jepsen_style.report` embedded, its explanation, or the anomaly checkers' first anomalies),
and links to every file of the run (member logs under ``logs/``). Only files that exist are
linked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jepsen_style.pages.common import (
    RunInfo,
    esc,
    fmt_num,
    href,
    load_run,
    page,
    write_atomic,
)
from jepsen_style.plots import FAULT_COLORS

FAULT_KEYS = ("nemesis", "detail", "members", "isolated", "start", "end", "error")
"""The keys every fault window has (:meth:`jepsen_style.nemesis.Fault.to_json`); any other key
is what the nemesis applied and is shown as such."""
SHOWN_ELSEWHERE = ("counterexample", "anomalies", "explanation")
ANOMALY_SAMPLES = 3
FOLD_ROWS = 4
MAX_TEXT = 6000

_LANE = 22
_LEFT = 130
_WIDTH = 900


def _kv(rows: list[tuple[str, str]], ident: str = "") -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table id="{ident}">{body}</table>' if ident else f"<table>{body}</table>"


def _compact(value: Any, limit: int = 300) -> str:
    """Short text of a value: ``k=v`` pairs for a mapping, JSON otherwise, cut at ``limit``."""
    if isinstance(value, dict):
        text = ", ".join(f"{k}={_compact(v, limit)}" for k, v in value.items())
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _applied(fault: dict[str, Any]) -> str:
    """What the nemesis recorded beyond the common keys, as HTML (nested tables for lists of
    records, e.g. one row per toxic)."""
    out = []
    for key, value in fault.items():
        if key in FAULT_KEYS:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            cols: list[str] = []
            for rec in value:
                cols.extend(c for c in rec if c not in cols)
            head = "".join(f"<th>{esc(c)}</th>" for c in cols)
            rows = "".join(
                "<tr>" + "".join(f"<td>{esc(_compact(rec[c])) if c in rec else ''}</td>"
                                 for c in cols) + "</tr>" for rec in value)
            table = f'<table class="applied"><tr>{head}</tr>{rows}</table>'
            if len(value) > FOLD_ROWS:  # many links: folded (a native <details>, no script)
                out.append(f"<details><summary>{esc(key)}: {len(value)} entries</summary>"
                           f"{table}</details>")
            else:
                out.append(f"<div>{esc(key)}:{table}</div>")
        else:
            out.append(f"<div>{esc(key)}: {esc(_compact(value))}</div>")
    return "".join(out)


def load_faults(info: RunInfo) -> list[dict[str, Any]]:
    """The fault windows: ``nemesis.json``, else the copy in ``verdict.json``."""
    try:
        faults = json.loads((info.dir / "nemesis.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        faults = info.doc.get("faults") or []
    return [f for f in faults if isinstance(f, dict)] if isinstance(faults, list) else []


def _tick_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 12:
            return float(step)
    return span / 10


def _timeline_svg(faults: list[dict[str, Any]], time_limit: float) -> str:
    """One lane per nemesis (in order of first use), one bar per window; hover shows the
    detail (SVG ``<title>``, no script)."""
    lanes: list[str] = []
    for f in faults:
        name = str(f.get("nemesis", "fault"))
        if name not in lanes:
            lanes.append(name)
    ends = [float(f["end"]) for f in faults if isinstance(f.get("end"), int | float)]
    span = max([time_limit, 1.0, *ends])
    scale = (_WIDTH - _LEFT - 10) / span
    top = 8
    height = top + _LANE * len(lanes) + 28
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
              'role="img" aria-label="fault timeline">')]
    for i, name in enumerate(lanes):
        y = top + i * _LANE
        parts.append(f'<text x="4" y="{y + 15}">{esc(name)}</text>'
                     f'<rect x="{_LEFT}" y="{y + 2}" width="{span * scale:.1f}" height="16" '
                     'fill="#f4f4f4"/>')
    for n, f in enumerate(faults, 1):
        start = f.get("start")
        if not isinstance(start, int | float):
            continue
        raw_end = f.get("end")
        end = float(raw_end) if isinstance(raw_end, int | float) else span
        name = str(f.get("nemesis", "fault"))
        y = top + lanes.index(name) * _LANE
        x, w = _LEFT + start * scale, max((end - start) * scale, 3.0)
        color = "#7f8c8d" if f.get("error") else FAULT_COLORS.get(name, "#999999")
        tip = f"#{n} {name}: {f.get('detail', '')} [{start:g} s, {end:g} s]"
        if f.get("error"):
            tip += f" error: {f['error']}"
        label = f'<text x="{x + 3:.1f}" y="{y + 15}" fill="#fff">{n}</text>' if w > 14 else ""
        parts.append(f'<g><title>{esc(tip)}</title><rect x="{x:.1f}" y="{y + 2}" '
                     f'width="{w:.1f}" height="16" fill="{color}" rx="2"/>{label}</g>')
    axis_y = top + _LANE * len(lanes) + 4
    parts.append(f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_LEFT + span * scale:.1f}" '
                 f'y2="{axis_y}" stroke="#888"/>')
    step = _tick_step(span)
    t = 0.0
    while t <= span + 1e-9:
        x = _LEFT + t * scale
        parts.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" '
                     f'stroke="#888"/><text x="{x - 4:.1f}" y="{axis_y + 16}">{t:g}</text>')
        t += step
    parts.append(f'<text x="4" y="{axis_y + 16}">seconds</text></svg>')
    return "".join(parts)


def _faults_section(info: RunInfo, faults: list[dict[str, Any]]) -> str:
    if not faults:
        return ('<h2 id="faults">Faults</h2><p>No fault window (nemesis: '
                f"{esc(info.nemesis)}).</p>")
    limit = info.doc.get("time_limit")
    svg = _timeline_svg(faults, float(limit) if isinstance(limit, int | float) else 0.0)
    rows = []
    for n, f in enumerate(faults, 1):
        start, end = f.get("start"), f.get("end")
        dur = end - start if isinstance(start, int | float) and isinstance(end, int | float) \
            else None
        err = f'<div class="violation">error: {esc(f["error"])}</div>' if f.get("error") else ""
        rows.append(
            f"<tr><td>{n}</td><td>{esc(f.get('nemesis'))}</td>"
            f'<td class="num">{fmt_num(start, 1)}</td><td class="num">{fmt_num(end, 1)}</td>'
            f'<td class="num">{fmt_num(dur, 1)}</td>'
            f"<td>{esc(f.get('detail'))}{_applied(f)}{err}</td>"
            f"<td>{esc(', '.join(map(str, f.get('members') or [])) or None)}</td>"
            f"<td>{esc(', '.join(map(str, f.get('isolated') or [])) or None)}</td></tr>")
    windows = f"{len(faults)} window" + ("" if len(faults) == 1 else "s")
    return (f'<h2 id="faults">Faults ({windows})</h2>{svg}'
            '<table id="fault-table"><tr><th>#</th><th>nemesis</th><th>start s</th>'
            "<th>end s</th><th>length s</th><th>what was applied</th><th>members</th>"
            f"<th>isolated</th></tr>{''.join(rows)}</table>")


def _plots_section(info: RunInfo) -> str:
    imgs = [f'<p><img class="plot" src="{href(name)}" alt="{name[:-4]} over time, fault '
            'windows shaded"></p>'
            for name in ("throughput.png", "latency.png") if (info.dir / name).is_file()]
    return '<h2 id="plots">Throughput and latency</h2>' + (
        "".join(imgs) or "<p>No plots were written (see the run's errors).</p>")


def _counterexample_section(info: RunInfo) -> str:
    details = info.doc.get("verdict")
    details = details if isinstance(details, dict) else {}
    parts = []
    report = info.doc.get("report")
    if isinstance(report, str) and report and (info.dir / Path(report).name).is_file():
        name = href(Path(report).name)
        parts.append(f'<p><a href="{name}">The failing history as a timeline</a> (the '
                     'checker\'s report, embedded below).</p>'
                     f'<iframe class="cex" src="{name}" title="counterexample timeline">'
                     "</iframe>")
    if details.get("explanation") and not parts:  # the embedded report shows it already
        parts.append(f"<pre>{esc(_compact(details['explanation'], MAX_TEXT))}</pre>")
    counts = details.get("anomaly_counts")
    if isinstance(counts, dict) and counts:
        rows = "".join(f'<tr><td>{esc(k)}</td><td class="num">{esc(v)}</td></tr>'
                       for k, v in counts.items())
        parts.append(f"<table><tr><th>anomaly</th><th>count</th></tr>{rows}</table>")
        anomalies = details.get("anomalies")
        if isinstance(anomalies, dict) and anomalies:
            sample = {k: v[:ANOMALY_SAMPLES] if isinstance(v, list) else v
                      for k, v in anomalies.items()}
            text = json.dumps(sample, indent=1, default=str)
            if len(text) > MAX_TEXT:
                text = text[:MAX_TEXT] + "\n… (cut; the rest is in verdict.json)"
            parts.append(f"<p>First {ANOMALY_SAMPLES} of each:</p><pre>{esc(text)}</pre>")
    if not parts and info.word != "VIOLATION":
        return ""
    if not parts:
        parts.append("<p>The checker gave no counterexample; see verdict.json.</p>")
    return '<h2 id="counterexample">Counterexample</h2>' + "".join(parts)


def _checker_section(info: RunInfo) -> str:
    details = info.doc.get("verdict")
    if not isinstance(details, dict) or not details:
        return ""
    rows = [(k, esc(_compact(v))) for k, v in details.items() if k not in SHOWN_ELSEWHERE]
    return f'<h2 id="checker">Checker</h2>{_kv(rows, "checker-table")}'


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} kB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MB"


def _files_section(info: RunInfo) -> str:
    items = []
    logs = info.dir / "logs"
    member_logs = sorted(p for p in logs.iterdir() if p.is_file()) if logs.is_dir() else []
    for p in member_logs:
        items.append(f'<li><a href="{href("logs", p.name)}">logs/{esc(p.name)}</a> '
                     f'<span class="muted">{_size(p.stat().st_size)}</span></li>')
    for p in sorted(info.dir.iterdir()):
        if p.is_file() and p.name != "index.html" and not p.name.startswith("."):
            items.append(f'<li><a href="{href(p.name)}">{esc(p.name)}</a> '
                         f'<span class="muted">{_size(p.stat().st_size)}</span></li>')
    note = "" if member_logs else "<p>No member logs kept in this directory.</p>"
    return f'<h2 id="files">Files</h2>{note}<ul id="file-list">{"".join(items)}</ul>'


def render_run_page(info: RunInfo, matrix_link: bool = True) -> str:
    """The HTML of ``info``'s page; ``matrix_link``: link ``../index.html`` (the matrix)."""
    doc, word = info.doc, info.word
    cls = {"VALID": "valid", "VIOLATION": "violation"}.get(word, "unknown")
    lat = info.stat("latency_ok_s")
    lat = lat if isinstance(lat, dict) else {}
    back = '<p><a href="../index.html">All runs (the matrix)</a></p>' if matrix_link else ""
    control = ('<p class="muted">The stale-read control: serializable reads on isolated '
               "members; a VIOLATION is the expected result.</p>") if info.control else ""
    errors = doc.get("errors") or []
    err_html = ("<h2>Errors</h2><ul>" + "".join(f"<li>{esc(e)}</li>" for e in errors)
                + "</ul>") if errors else ""
    summary = ""
    if (info.dir / "summary.txt").is_file():
        summary = f'<p class="muted">{esc((info.dir / "summary.txt").read_text().strip())}</p>'
    ran = _kv([
        ("target", esc(info.target)), ("backend", esc(info.backend)),
        ("bootstrap", esc(info.bootstrap)), ("workload", esc(info.workload)),
        ("nemesis", esc(info.nemesis)), ("seed", esc(doc.get("seed"))),
        ("time limit s", fmt_num(doc.get("time_limit"), 1)),
        ("concurrency", esc(doc.get("concurrency"))), ("members", esc(doc.get("members"))),
        ("recovered after the final heal", esc(doc.get("recovered"))),
        ("finished (UTC)", esc(doc.get("finished"))),
        ("check s", fmt_num(doc.get("check_seconds"), 2)),
    ], "run-table")
    load = _kv([
        ("operations", esc(info.stat("ops"))), ("ok", esc(info.stat("ok"))),
        ("fail", esc(info.stat("fail"))), ("info (unknown outcome)", esc(info.stat("info"))),
        ("ok/s overall", fmt_num(info.stat("ok_per_s"))),
        ("ok/s before faults", fmt_num(info.stat("ok_per_s_before_faults"))),
        ("ok/s during faults", fmt_num(info.stat("ok_per_s_during_faults"))),
        ("first fault at s", fmt_num(info.stat("first_fault_s"), 1)),
        ("ok latency p50 / p99 / max ms", " / ".join(
            fmt_num(lat[q] * 1000, 1) if isinstance(lat.get(q), int | float) else "-"
            for q in ("p50", "p99", "max"))),
        ("processes", esc(info.stat("processes"))),
    ], "load-table")
    body = (f"{back}<h1>{esc(info.run_id)} "
            f'<span id="verdict" class="badge {cls}">{word}</span></h1>{control}{summary}'
            f'{err_html}<div class="pair"><div><h2>Run</h2>{ran}</div>'
            f"<div><h2>Load</h2>{load}</div></div>"
            f"{_faults_section(info, load_faults(info))}{_plots_section(info)}"
            f"{_counterexample_section(info)}{_checker_section(info)}{_files_section(info)}")
    return page(f"{info.run_id}: {word}", body)


def write_run_page(run_dir: Path, matrix_link: bool = True) -> Path:
    """Write ``run_dir/index.html``; raises FileNotFoundError without a readable verdict."""
    info = load_run(run_dir)
    if info is None:
        raise FileNotFoundError(f"{run_dir}: no readable verdict.json")
    return write_atomic(run_dir / "index.html", render_run_page(info, matrix_link))
