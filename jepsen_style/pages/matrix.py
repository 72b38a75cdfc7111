"""``<results dir>/index.html``: the matrix of the latest runs, then every run.

Columns are (backend · bootstrap, target), targets petcd, etcd-3.5, etcd-3.4 first so petcd
stands beside real etcd; rows are (workload, nemesis), where the workload label carries what
changes a run's meaning (serializable reads, isolated reads, cluster size). A cell holds the
latest run of its combination (latest: the ``finished`` time in verdict.json, else the file's
modification time, then the run id), coloured by verdict (VALID / VIOLATION / UNKNOWN), with
ok/s before and during faults ("-" when the run did not record it), linking the run's page.
Each cell is a ``<td class="cell ...">`` with ``data-target``, ``data-backend``,
``data-bootstrap``, ``data-workload``, ``data-nemesis`` and ``data-run`` attributes. Below the
matrix, every run, newest first.
"""

from __future__ import annotations

from pathlib import Path

from jepsen_style.pages.common import (
    BOOTSTRAP_ORDER,
    CLASSES,
    TARGET_ORDER,
    RunInfo,
    esc,
    fmt_num,
    href,
    load_run,
    page,
    rank,
    run_dirs,
    write_atomic,
)
from jepsen_style.pages.run_page import write_run_page

Column = tuple[str, str, str]  # backend, bootstrap, target
Row = tuple[str, str]  # workload label, nemesis


def _column(info: RunInfo) -> Column:
    return (info.backend, info.bootstrap, info.target)


def _row(info: RunInfo) -> Row:
    return (info.workload, info.nemesis)


def _column_key(col: Column) -> tuple[str, tuple[int, str], tuple[int, str]]:
    return (col[0], rank(col[1], BOOTSTRAP_ORDER), rank(col[2], TARGET_ORDER))


def latest(runs: list[RunInfo]) -> dict[tuple[Column, Row], RunInfo]:
    """The latest run of each (column, row) combination."""
    cells: dict[tuple[Column, Row], RunInfo] = {}
    for info in sorted(runs, key=RunInfo.order_key):
        cells[(_column(info), _row(info))] = info
    return cells


def _rates(info: RunInfo) -> str:
    return (f"before {fmt_num(info.stat('ok_per_s_before_faults'))} · "
            f"during {fmt_num(info.stat('ok_per_s_during_faults'))} ok/s")


def _cell(info: RunInfo | None, col: Column, row: Row) -> str:
    if info is None:
        return '<td class="cell empty">·</td>'
    attrs = (f'data-backend="{esc(col[0])}" data-bootstrap="{esc(col[1])}" '
             f'data-target="{esc(col[2])}" data-workload="{esc(row[0])}" '
             f'data-nemesis="{esc(row[1])}" data-run="{esc(info.run_id)}"')
    return (f'<td class="cell {CLASSES[info.word]}" {attrs}>'
            f'<a href="{href(info.dir.name, "index.html")}" title="{esc(info.run_id)}">'
            f'{info.word}</a><div class="rates">{_rates(info)}</div></td>')


def render_matrix(runs: list[RunInfo], title: str = "Jepsen-style runs") -> str:
    """The matrix page of ``runs`` (links relative to the directory holding the runs)."""
    cells = latest(runs)
    cols = sorted({c for c, _ in cells}, key=_column_key)
    rows = sorted({r for _, r in cells})
    groups: list[tuple[tuple[str, str], int]] = []
    for c in cols:
        if groups and groups[-1][0] == c[:2]:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((c[:2], 1))
    head1 = "".join(f'<th colspan="{n}">{esc(b)}'
                    + (f" · bootstrap {esc(s)}" if s != "-" else "") + "</th>"
                    for (b, s), n in groups)
    head2 = "".join(f"<th>{esc(c[2])}</th>" for c in cols)
    body = []
    for r in rows:
        control = any(cells[(c, r)].control for c in cols if (c, r) in cells)
        note = ' <span class="muted">(control: VIOLATION expected)</span>' if control else ""
        body.append(f"<tr><th>{esc(r[0])}{note}</th><th>{esc(r[1])}</th>"
                    + "".join(_cell(cells.get((c, r)), c, r) for c in cols) + "</tr>")
    counts = {w: sum(1 for i in cells.values() if i.word == w) for w in CLASSES}
    legend = " ".join(f'<span class="badge {CLASSES[w]}">{w} {n}</span>'
                      for w, n in counts.items())
    matrix = (f'<table id="matrix"><tr><th rowspan="2">workload</th><th rowspan="2">nemesis'
              f"</th>{head1}</tr><tr>{head2}</tr>{''.join(body)}</table>") if cells else (
        "<p>No runs yet.</p>")
    every = []
    for info in sorted(runs, key=RunInfo.order_key, reverse=True):
        every.append(
            f'<tr><td><a href="{href(info.dir.name, "index.html")}">{esc(info.run_id)}</a></td>'
            f'<td class="{CLASSES[info.word]}">{info.word}</td><td>{esc(info.target)}</td>'
            f"<td>{esc(info.backend)}</td><td>{esc(info.bootstrap)}</td>"
            f"<td>{esc(info.workload)}</td><td>{esc(info.nemesis)}</td>"
            f'<td class="num">{fmt_num(info.stat("ok_per_s_before_faults"))}</td>'
            f'<td class="num">{fmt_num(info.stat("ok_per_s_during_faults"))}</td>'
            f"<td>{esc(info.finished or None)}</td></tr>")
    runs_table = ('<table id="runs"><tr><th>run</th><th>verdict</th><th>target</th>'
                  "<th>backend</th><th>bootstrap</th><th>workload</th><th>nemesis</th>"
                  "<th>ok/s before faults</th><th>ok/s during faults</th><th>finished (UTC)</th>"
                  f"</tr>{''.join(every)}</table>")
    html = (f"<h1>{esc(title)}</h1><p>The latest run of each combination ({len(cells)} cells, "
            f"{len(runs)} runs). {legend}</p>{matrix}"
            f"<h2>Every run, newest first</h2>{runs_table}")
    return page(title, html)


def write_matrix(results_dir: Path, refresh_pages: bool = True) -> Path:
    """Write ``results_dir/index.html`` over the run directories directly under it. With
    ``refresh_pages``, first write the page of every run that has none (so each link resolves);
    a run whose page cannot be written is left out of the matrix."""
    runs = []
    for d in run_dirs(results_dir):
        info = load_run(d)
        if info is None:
            continue
        if not (d / "index.html").is_file():
            if not refresh_pages:
                continue
            try:
                write_run_page(d)
            except OSError:
                continue
        runs.append(info)
    results_dir.mkdir(parents=True, exist_ok=True)
    return write_atomic(results_dir / "index.html", render_matrix(runs))
