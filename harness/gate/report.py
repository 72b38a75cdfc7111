"""What a person reads: the stdout table, a markdown summary, JUnit XML, an HTML page and one
plot per ratio over the recorded gate runs (`results/gates/history.jsonl`, local) and the
committed baselines (`results/baseline/history.jsonl`)."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.gate.compare import Row

COLS = ("metric", "baseline", "now", "allowed", "status")


def _verdict_line(rows: list[Row], doc: dict[str, Any]) -> str:
    fails = [r for r in rows if r.status == "FAIL"]
    head = (f"GATE: {'FAIL' if fails else 'PASS'} target={doc['target']} "
            f"commit={doc['commit'][:10]} {len(rows)} figures, {len(fails)} failed, "
            f"{doc['seconds']:.0f}s, load {doc['load_start']} -> {doc['load_end']}"
            f"{' (LOADED)' if doc.get('loaded') else ''}")
    return head


def fail_lines(rows: list[Row]) -> list[str]:
    """One readable line per failed figure."""
    return [f"FAIL {r.metric}: baseline {r.baseline}, now {r.now}, allowed {r.allowed}"
            + (f" -- {r.note}" if r.note else "") for r in rows if r.status == "FAIL"]


def table(rows: list[Row], doc: dict[str, Any]) -> str:
    widths = [max(len(c), *(len(str(getattr(r, c))) for r in rows)) if rows else len(c)
              for c in COLS]
    widths[0] = min(widths[0], 72)
    def fmt(vals: list[str]) -> str:
        return "  ".join(v[:w].ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()
    out = [fmt(list(COLS)), fmt(["-" * w for w in widths])]
    out += [fmt([str(getattr(r, c)) for c in COLS]) for r in rows]
    out += ["", *fail_lines(rows), _verdict_line(rows, doc)]
    return "\n".join(out) + "\n"


def markdown(rows: list[Row], doc: dict[str, Any], base: dict[str, Any]) -> str:
    fails = [r for r in rows if r.status == "FAIL"]
    loaded = " **(loaded: absolute rates are skewed; ratios are compared)**"
    lines = [f"## Regression gate: {'FAIL' if fails else 'PASS'}", "",
             (f"target `{doc['target']}` at `{doc['commit'][:10]}` on {doc['machine']['host']} "
             f"({doc['machine']['cpus']} CPUs), {doc['seconds']:.0f}s; load average "
             f"{doc['load_start']} -> {doc['load_end']}"
             f"{loaded if doc.get('loaded') else ''}"),
             (f"baseline `{base.get('commit', '?')[:10]}` from {base.get('time', '?')} "
             f"(load {base.get('load_start', '?')} -> {base.get('load_end', '?')})"), ""]
    if fails:
        lines += ["**Failed:**", ""] + [f"- {line}" for line in fail_lines(rows)] + [""]
    lines += ["| " + " | ".join(COLS) + " | note |", "|" + "---|" * (len(COLS) + 1)]
    for r in rows:
        cells = [r.metric, r.baseline, r.now, r.allowed, f"**{r.status}**" if r.status == "FAIL"
                 else r.status, r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def junit(rows: list[Row], doc: dict[str, Any]) -> bytes:
    suite = ET.Element("testsuite", name="petcd-gate", tests=str(len(rows)),
                       failures=str(sum(r.status == "FAIL" for r in rows)),
                       skipped=str(sum(r.status == "SKIP" for r in rows)),
                       time=f"{doc['seconds']:.1f}")
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=f"gate.{r.part}", name=r.metric)
        if r.status == "FAIL":
            ET.SubElement(case, "failure", message=f"baseline {r.baseline}, now {r.now}, "
                          f"allowed {r.allowed}").text = r.note
        elif r.status == "SKIP":
            ET.SubElement(case, "skipped", message=r.note or "not run here")
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def read_history(*paths: Path) -> list[dict[str, Any]]:
    """History entries of all files, oldest first (unreadable lines are ignored)."""
    out: list[dict[str, Any]] = []
    for p in paths:
        if not p.is_file():
            continue
        for line in p.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return sorted(out, key=lambda e: str(e.get("time", "")))


def history_entry(doc: dict[str, Any], kind: str, status: str) -> dict[str, Any]:
    figs = doc.get("speed", {}).get("figures", {})
    return {"time": doc["time"], "commit": doc["commit"][:10], "kind": kind, "status": status,
            "target": doc["target"], "loaded": doc.get("loaded", False),
            "load_start": doc["load_start"],
            "figures": {k: v["value"] for k, v in figs.items()}}


def slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-").lower()


def plots(history: list[dict[str, Any]], rows: list[Row], out_dir: Path) -> list[str]:
    """One PNG per speed figure over the history; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allowed = {r.metric: r.allowed for r in rows if r.part == "speed"}
    names = sorted({k for e in history for k in e.get("figures", {})})
    written: list[str] = []
    for name in names:
        pts = [(i, e) for i, e in enumerate(history) if name in e.get("figures", {})]
        fig, ax = plt.subplots(figsize=(6, 2.6), dpi=80)
        for kind, marker, color in (("gate", "o", "tab:blue"), ("baseline", "s", "tab:green")):
            sel = [(i, e) for i, e in pts if e.get("kind") == kind]
            ax.plot([i for i, _ in sel], [e["figures"][name] for _, e in sel], marker,
                    color=color, label=kind, markersize=5)
            bad = [(i, e) for i, e in sel if e.get("status") == "FAIL"]
            ax.plot([i for i, _ in bad], [e["figures"][name] for _, e in bad], "x",
                    color="tab:red", markersize=8)
        ax.plot([i for i, _ in pts], [e["figures"][name] for _, e in pts], "-", color="0.7",
                linewidth=0.8, zorder=0)
        bound = allowed.get(name, "")
        if bound[:2] in (">=", "<="):
            ax.axhline(float(bound[3:]), linestyle="--", color="tab:red", linewidth=0.8,
                       label=f"allowed now {bound}")
        ticks = [i for i, _ in pts][-12:]
        ax.set_xticks(ticks, [history[i]["commit"][:7] for i in ticks], rotation=30, fontsize=7)
        ax.set_title(f"{name} (target / etcd-3.5)", fontsize=9)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fname = f"{slug(name)}.png"
        fig.savefig(out_dir / fname)
        plt.close(fig)
        written.append(fname)
    return written


def index_html(rows: list[Row], doc: dict[str, Any], base: dict[str, Any],
               pngs: list[str]) -> str:
    fails = [r for r in rows if r.status == "FAIL"]
    word = "FAIL" if fails else "PASS"
    trs = "\n".join(
        "<tr class='{}'>{}</tr>".format(
            r.status.lower(),
            "".join(f"<td>{html.escape(str(v))}</td>" for v in
                    (r.metric, r.baseline, r.now, r.allowed, r.status, r.note)))
        for r in rows)
    imgs = "\n".join(f"<figure><img src='{p}' alt='{p}'></figure>" for p in pngs)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>gate {word} {html.escape(doc['commit'][:10])}</title><style>
body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:2px 6px}} tr.fail{{background:#fdd}} tr.new{{background:#eef}}
tr.skip{{color:#888}} figure{{display:inline-block;margin:4px}}</style></head><body>
<h1>Regression gate: {word}</h1>
<p>target <b>{html.escape(doc['target'])}</b> at {html.escape(doc['commit'][:10])},
{html.escape(doc['time'])}, {doc['seconds']:.0f}s on {html.escape(doc['machine']['host'])}
({doc['machine']['cpus']} CPUs); load average {html.escape(doc['load_start'])} &rarr;
{html.escape(doc['load_end'])}{' <b>(loaded)</b>' if doc.get('loaded') else ''}.
Baseline {html.escape(str(base.get('commit', '?'))[:10])} from {html.escape(str(base.get('time', '?')))}.
Files: <a href="gate.json">gate.json</a>, <a href="summary.md">summary.md</a>,
<a href="junit.xml">junit.xml</a>, <a href="bench.txt">bench.txt</a>.</p>
<table><tr><th>metric</th><th>baseline</th><th>now</th><th>allowed</th><th>status</th><th>note</th></tr>
{trs}</table><h2>Ratios over the recorded runs</h2>{imgs}</body></html>
"""
