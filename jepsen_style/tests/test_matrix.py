"""The matrix driver (jepsen_style.matrix): its cells, schedule and table, without containers.

Cells that cannot boot are skipped with their reason and a nemesis the Docker backend refuses
ends its run before any container starts; both go through the real CLI processes.
"""

from __future__ import annotations

import json
from pathlib import Path

from jepsen_style import matrix
from jepsen_style.linknemeses import UNSUPPORTED
from jepsen_style.nemesis import NEMESES


def test_groups_cover_every_nemesis_docker_runs() -> None:
    grouped = {n for g in matrix.NEMESIS_GROUPS for n in g.split(",")}
    docker_refuses = set(UNSUPPORTED["docker"])
    # pause-holder and admin are workload-specific (lock, membership admin) and not faults of
    # links or processes; everything else the docker backend can do is in some group.
    expected = set(NEMESES) - docker_refuses - {"pause-holder", "admin"}
    assert expected <= grouped, expected - grouped
    assert not grouped & docker_refuses


def test_every_nemesis_of_a_group_fits_one_window() -> None:
    for g in matrix.NEMESIS_GROUPS:
        cell = matrix.Cell("static", "petcd", "register", g)
        n = len(cell.nemeses)
        assert cell.load_seconds() >= (matrix.QUIET_START + n * (
            matrix.FAULT_SECONDS + matrix.QUIET_SECONDS) + matrix.FINAL_QUIET)


def test_cells_that_cannot_boot_are_skipped_with_the_reason(tmp_path: Path) -> None:
    rc = matrix.main(["--bootstraps", "dns", "--targets", "etcd-3.4", "--workloads", "register",
                      "--results-dir", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "matrix-latest.json").read_text())
    assert len(rows) == len(matrix.NEMESIS_GROUPS)
    assert {r["verdict"] for r in rows} == {"skip"}
    assert all("SRV" in r["why"] for r in rows)
    table = (tmp_path / "matrix-latest.md").read_text().splitlines()
    assert table[0] == "| bootstrap | workload | group | etcd-3.4 |"
    assert [line.split(" | ")[-1] for line in table[2:5]] == ["skip |"] * 3


def test_a_refused_nemesis_is_an_unknown_row_with_the_reason(tmp_path: Path) -> None:
    cell = matrix.Cell("static", "petcd", "register", "kill,disk-full")
    row = matrix.run_cell(cell, "refused", 0, tmp_path)
    assert row["verdict"] == "UNKNOWN"
    assert "disk-full" in row["errors"][0] and "docker backend" in row["errors"][0]
    assert not (tmp_path / "refused" / "verdict.json").exists()
