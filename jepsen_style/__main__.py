"""Command line: ``python -m jepsen_style <subcommand> ...``.

``check`` decides linearizability of recorded histories and prints one JSON line per file on
stdout, in the order given::

    {"file": PATH, "linearizable": true|false|null, "seconds": S}

(plus ``"reason"`` when null, ``"error"`` when the file could not be checked, and
``"counterexample"`` with ``--counterexample``). A summary (wall time, slowest file, counts)
goes to stderr. Exit status: 1 if any history is not linearizable, else 2 if any verdict is
unknown or any file could not be read, else 0. (A definite violation outranks an incomplete
check, as in Jepsen's merging of validity.)

``run`` is one run under faults (:mod:`jepsen_style.runner`); ``index`` rebuilds the HTML
pages of a results directory (:mod:`jepsen_style.pages`).

Formats: ``jepsen-log`` (``jepsen.util`` log lines, default model ``etcd``), ``edn`` (one EDN
operation map per line) and ``jsonl`` (:mod:`jepsen_style.history`), the latter two with default
model ``register``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jepsen_style.checker.linearizability import DEFAULT_MAX_STATES, CheckResult, check
from jepsen_style.history import Event, HistoryError, Operation, pair, read_jsonl
from jepsen_style.jepsen_log import read_edn, read_log
from jepsen_style.models import MODELS, Model, get_model

FORMATS = ("jepsen-log", "edn", "jsonl")
DEFAULT_MODEL = {"jepsen-log": "etcd", "edn": "register", "jsonl": "register"}


def read_history(path: str, fmt: str) -> list[Event]:
    """Read the events of one file in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "jepsen-log":
        return read_log(path)
    if fmt == "edn":
        return read_edn(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    raise ValueError(f"unknown format {fmt!r}")


@dataclass(frozen=True, slots=True)
class FileVerdict:
    """Outcome of checking one file (``result`` None when ``error`` is set)."""

    file: str
    seconds: float
    result: CheckResult | None = None
    error: str = ""
    ops: tuple[Operation, ...] = ()

    @property
    def linearizable(self) -> bool | None:
        return None if self.result is None else self.result.linearizable

    def to_json(self, model: Model, with_counterexample: bool) -> str:
        out: dict[str, object] = {
            "file": self.file,
            "linearizable": self.linearizable,
            "seconds": round(self.seconds, 4),
        }
        if self.error:
            out["error"] = self.error
        elif self.result is not None and self.result.linearizable is None:
            out["reason"] = self.result.reason
        cex = None if self.result is None else self.result.counterexample
        if with_counterexample and cex is not None:
            out["counterexample"] = cex.to_json(model)
        return json.dumps(out)


@dataclass(frozen=True, slots=True)
class _Task:
    path: str
    fmt: str
    model_name: str
    timeout: float | None
    max_states: int
    workers: int
    keep_ops: bool


def check_file(task: _Task) -> FileVerdict:
    """Read, pair and check one file; never raises for bad input (reported as ``error``)."""
    start = time.monotonic()
    model = get_model(task.model_name)
    try:
        ops = pair(read_history(task.path, task.fmt), model.keep_failed)
        result = check(
            model, ops, timeout=task.timeout, max_states=task.max_states, workers=task.workers
        )
    except (OSError, UnicodeDecodeError, HistoryError, ValueError) as exc:
        return FileVerdict(task.path, time.monotonic() - start, error=str(exc))
    keep = tuple(ops) if task.keep_ops and result.linearizable is False else ()
    return FileVerdict(task.path, time.monotonic() - start, result, ops=keep)


def _check_files(tasks: list[_Task], workers: int) -> list[FileVerdict]:
    if len(tasks) == 1 or workers <= 1:
        return [check_file(t) for t in tasks]
    # Many files: one file per worker at a time, largest first for balance; each file's own
    # partitions are then searched in-process (workers=1), which avoids nested pools.
    def size(t: _Task) -> int:
        try:
            return os.path.getsize(t.path)
        except OSError:
            return 0

    order = sorted(range(len(tasks)), key=lambda i: -size(tasks[i]))
    verdicts: dict[int, FileVerdict] = {}
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.imap(check_file, [tasks[i] for i in order])
        for i, v in zip(order, results, strict=True):
            verdicts[i] = v
    return [verdicts[i] for i in range(len(tasks))]


def cmd_check(args: argparse.Namespace) -> int:
    """The ``check`` subcommand; returns the exit status."""
    model_name: str = args.model or DEFAULT_MODEL[args.format]
    model = get_model(model_name)
    workers = max(1, args.workers)
    per_file_workers = workers if len(args.files) == 1 else 1
    tasks = [
        _Task(f, args.format, model_name, args.timeout, args.max_states, per_file_workers,
              args.report_dir is not None)
        for f in args.files
    ]
    wall = time.monotonic()
    verdicts = _check_files(tasks, workers)
    wall = time.monotonic() - wall
    for v in verdicts:
        print(v.to_json(model, args.counterexample), flush=True)
    if args.report_dir is not None:
        from jepsen_style.report import write_report

        for v in verdicts:
            if v.result is not None and v.result.counterexample is not None:
                path = write_report(Path(args.report_dir), v.file, model, v.ops,
                                    v.result.counterexample)
                print(f"report: {path}", file=sys.stderr)
    counts = {"true": 0, "false": 0, "null": 0}
    for v in verdicts:
        counts[json.dumps(v.linearizable)] += 1
    slowest = max(verdicts, key=lambda v: v.seconds, default=None)
    print(
        f"checked {len(verdicts)} file(s) in {wall:.3f} s wall: "
        f"{counts['true']} linearizable, {counts['false']} not, {counts['null']} unknown/error"
        + (f"; slowest {slowest.file} {slowest.seconds:.3f} s" if slowest else ""),
        file=sys.stderr,
    )
    if counts["false"]:
        return 1
    return 2 if counts["null"] else 0


def cmd_run(args: argparse.Namespace) -> int:
    """The ``run`` subcommand: one run (see :mod:`jepsen_style.runner`); prints the summary
    line on stdout. Exit 0 valid, 1 violation, 2 unknown or the run broke."""
    # Imported here: the runner loads petcd's generated etcdserverpb stubs (grpc), which the
    # checker-only subcommand must not need.
    from jepsen_style.linknemeses import check_members, check_supported
    from jepsen_style.runner import RunOptions, run, schedule_defaults

    nemeses = tuple(n for n in args.nemesis.split(",") if n) if args.nemesis else ()
    try:  # before any cluster starts or load runs: one line, exit 2
        check_supported(nemeses, args.backend)
        if args.backend == "local" and args.bootstrap != "static":
            raise ValueError(f"--bootstrap {args.bootstrap} needs --backend docker (the local "
                             "backend boots static clusters only)")
        check_members(args.backend, args.bootstrap, args.members)
    except ValueError as exc:
        print(f"jepsen_style run: error: {exc}", file=sys.stderr)
        return 2
    sched = schedule_defaults(args.backend, args.time_limit)
    opts = RunOptions(
        target=args.target, backend=args.backend, bootstrap=args.bootstrap,
        members=args.members,
        workload=args.workload, nemeses=nemeses,
        time_limit=args.time_limit, seed=args.seed, concurrency=args.concurrency,
        rate=args.rate, keys_active=args.keys, ops_per_key=args.ops_per_key,
        request_timeout=args.request_timeout, serializable_reads=args.serializable_reads,
        isolated_reads=args.isolated_reads,
        quiet_start=sched[0] if args.quiet_start is None else args.quiet_start,
        fault_seconds=sched[1] if args.fault_seconds is None else args.fault_seconds,
        quiet_seconds=sched[2] if args.quiet_seconds is None else args.quiet_seconds,
        final_quiet=sched[3] if args.final_quiet is None else args.final_quiet,
        latency_ms=args.latency_ms, latency_jitter=args.latency_jitter,
        check_timeout=args.check_timeout,
        results_dir=Path(args.results_dir), run_id=args.run_id or "",
        progress=not args.quiet,
    )
    result = run(opts)
    print(result.summary, flush=True)
    if result.valid is False and result.verdict.get("report"):
        print(f"report: {result.verdict['report']}", file=sys.stderr)
    print(f"results: {result.run_dir}", file=sys.stderr)
    if result.valid is True:
        ok_rate = float(result.verdict["stats"]["ok_per_s_before_faults"])
        if ok_rate < args.min_ok_rate:
            print(f"ok/s before faults {ok_rate:.0f} < --min-ok-rate {args.min_ok_rate:g}",
                  file=sys.stderr)
            return 2
        return 0
    return 1 if result.valid is False else 2


def add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``run`` subcommand's arguments."""
    from harness.impls import IMPL_NAMES, target_name
    from jepsen_style.nemesis import NEMESES
    from jepsen_style.workloads import WORKLOADS

    run = sub.add_parser("run", help="run a workload against a cluster under faults, then check")
    run.add_argument("--target", type=target_name, default="petcd",
                     help=f"{', '.join(IMPL_NAMES)} or image:NAME[:TAG] (docker backend)")
    run.add_argument("--backend", choices=("local", "docker"), default="local")
    run.add_argument("--bootstrap", choices=("static", "discovery", "dns"), default="static",
                     help="how the docker members find each other (compose/README.md)")
    run.add_argument("--members", type=int, default=3,
                     help="cluster size (5 for bridge partitions, 2 | bridge | 2; "
                          "docker: 3 or 5)")
    run.add_argument("--workload", choices=WORKLOADS, default="register")
    run.add_argument("--nemesis", default="",
                     help=f"comma-separated, taking turns: {', '.join(NEMESES)} (default none)")
    run.add_argument("--time-limit", type=float, default=60.0, help="seconds of load")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--concurrency", type=int, default=30, help="client slots (processes)")
    run.add_argument("--rate", type=float, default=0.0,
                     help="target operations per second over all slots (0 = unthrottled)")
    run.add_argument("--keys", type=int, default=3, help="keys live at a time")
    run.add_argument("--ops-per-key", type=int, default=200,
                     help="operations per key before rotating to new keys")
    run.add_argument("--request-timeout", type=float, default=2.0,
                     help="per-request deadline, seconds")
    run.add_argument("--serializable-reads", action="store_true",
                     help="register reads are serializable (local to the member)")
    run.add_argument("--isolated-reads", action="store_true",
                     help="while a partition isolates members, slots on isolated members "
                          "only read and the rest only write (the stale-read control)")
    run.add_argument("--quiet-start", type=float, default=None,
                     help="seconds before the first fault (default 10; docker runs under "
                          "60 s: 5)")
    run.add_argument("--fault-seconds", type=float, default=None,
                     help="default 6 (docker runs under 60 s: 5)")
    run.add_argument("--quiet-seconds", type=float, default=None,
                     help="default 6 (docker runs under 60 s: 4)")
    run.add_argument("--final-quiet", type=float, default=None,
                     help="no fault starts this close to the end (default 8; docker runs "
                          "under 60 s: 6)")
    run.add_argument("--latency-ms", type=float, default=100.0,
                     help="delay of latency, slow-member, slow-leader, client-latency")
    run.add_argument("--latency-jitter", type=float, default=50.0, help="± this, ms")
    run.add_argument("--check-timeout", type=float, default=120.0)
    run.add_argument("--min-ok-rate", type=float, default=0.0,
                     help="exit 2 if a valid run had fewer ok ops/s before the first fault")
    run.add_argument("--results-dir", default=str(Path(__file__).resolve().parent.parent
                                                   / "results"))
    run.add_argument("--run-id", default=None)
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=cmd_run)


def cmd_index(args: argparse.Namespace) -> int:
    """The ``index`` subcommand: rewrite every run's ``index.html`` under the results directory
    and its matrix ``index.html`` (:mod:`jepsen_style.pages`); prints the matrix's path."""
    from jepsen_style.pages import rebuild, write_matrix

    results = Path(args.results_dir)
    if not results.is_dir():
        print(f"{results}: not a directory", file=sys.stderr)
        return 2
    if args.matrix_only:
        matrix = write_matrix(results)
        print(f"matrix: {matrix}", file=sys.stderr)
    else:
        pages, skipped, matrix = rebuild(results)
        for d in skipped:
            print(f"{d}: unreadable verdict.json, left out", file=sys.stderr)
        print(f"{len(pages)} run page(s); matrix: {matrix}", file=sys.stderr)
    print(matrix)
    return 0


def add_index_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``index`` subcommand's arguments."""
    idx = sub.add_parser("index", help="rebuild the run pages and the matrix of a results dir")
    idx.add_argument("--results-dir", default=str(Path(__file__).resolve().parent.parent
                                                   / "results"))
    idx.add_argument("--matrix-only", action="store_true",
                     help="only the matrix (and pages of runs that have none)")
    idx.set_defaults(func=cmd_index)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand sets ``func`` (Namespace -> exit status)."""
    parser = argparse.ArgumentParser(
        prog="python -m jepsen_style", description="Jepsen-style verification for petcd"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chk = sub.add_parser("check", help="check recorded histories for linearizability")
    chk.add_argument("files", nargs="+", metavar="FILE")
    chk.add_argument("--format", choices=FORMATS, default="jsonl", help="history file format")
    chk.add_argument(
        "--model", choices=sorted(MODELS), default=None,
        help="sequential model (default: etcd for jepsen-log, register otherwise)",
    )
    chk.add_argument("--timeout", type=float, default=60.0,
                     help="seconds per file before the verdict is unknown (default 60)")
    chk.add_argument("--max-states", type=int, default=DEFAULT_MAX_STATES,
                     help="cached search configurations per partition before giving up")
    chk.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                     help="worker processes (files, or partitions of a single file)")
    chk.add_argument("--counterexample", action="store_true",
                     help="include the counterexample in the JSON line of a violation")
    chk.add_argument("--report-dir", default=None,
                     help="write an HTML timeline of each violation into this directory")
    chk.set_defaults(func=cmd_check)

    add_run_parser(sub)
    add_index_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
