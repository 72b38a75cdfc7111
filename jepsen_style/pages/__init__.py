"""Static HTML pages of Jepsen-style runs: one per run directory, one matrix per results directory.

Contract:

* :func:`write_run_page` writes ``<run dir>/index.html`` from what the run directory already
  holds (``verdict.json``, ``nemesis.json``, the plots, ``logs/``, the checker's violation
  report); :func:`write_matrix` writes ``<results dir>/index.html``, the latest run of every
  (backend · bootstrap, target) × (workload, nemesis) cell, coloured by verdict, each cell linking
  its run's page (written first if missing);
* :func:`publish_run` is the runner's end-of-run hook (the run's page, then its results
  directory's matrix); ``python -m jepsen_style index`` rebuilds every page of a results directory;
* the pages are self-contained: no scripts, no network resources, only relative links to files
  that exist when the page is written; each file is replaced atomically, so a reader (or a run
  finishing at the same time) never sees half a page.
"""

from __future__ import annotations

from pathlib import Path

from jepsen_style.pages.matrix import write_matrix
from jepsen_style.pages.run_page import write_run_page

__all__ = ["publish_run", "rebuild", "write_matrix", "write_run_page"]


def publish_run(run_dir: Path) -> tuple[Path, Path]:
    """The run's page, then the matrix of the directory holding it; returns both paths."""
    page = write_run_page(run_dir)
    return page, write_matrix(run_dir.parent)


def rebuild(results_dir: Path) -> tuple[list[Path], list[Path], Path]:
    """Rewrite every run page under ``results_dir`` and its matrix; returns (pages, run
    directories skipped because their verdict.json is unreadable, matrix)."""
    from jepsen_style.pages.common import load_run, run_dirs

    pages, skipped = [], []
    for d in run_dirs(results_dir):
        if load_run(d) is None:
            skipped.append(d)
        else:
            pages.append(write_run_page(d))
    return pages, skipped, write_matrix(results_dir, refresh_pages=False)
