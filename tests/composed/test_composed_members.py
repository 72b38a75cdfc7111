"""The composed testbed's member-level nemeses end to end: membership replace and 5-member bridge.

- `test_membership_replace`: a register run with `--nemesis membership` on Docker: each window
  replaces one member in place (member remove, its container and data volume deleted, member
  add under the same name and peer URL, a fresh container joining as an existing member;
  `harness.docker_replace`) -> VALID, every window records member, old id and new id (they
  differ) and heals with the new id a caught-up voter;
- `test_bridge_five_members`: a register run on 5 proxied members (`--members 5`, node4/node5 of
  the compose profile "five") with `--nemesis bridge` -> VALID, each window 2 | bridge | 2 (the
  8 directed links between the halves disabled), every heal audited clean over 25 proxies.

Marker `composed` only (not `composed_ci`: `make test` does not run them; `make matrix` and
`pytest -m composed tests/composed` do). Without a Docker engine every cell skips.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from jepsen_style.runner import RunResult
from tests.composed.cells import TARGETS, composed_run

MEMBERSHIP_BOOTSTRAPS = ("static", "discovery", "dns")
BRIDGE_BOOTSTRAPS = ("static", "discovery")  # dns: its SRV records name 3 members
PROXIES_5 = 5 * 4 + 5  # directed peer links and client links of 5 members


pytestmark = pytest.mark.composed


def _run(tmp_path: Path, bootstrap: str, target: str, **kw: Any) -> RunResult:
    return composed_run(tmp_path, bootstrap, target, **kw)


def _cells(bootstraps: tuple[str, ...]) -> list[Any]:
    return [pytest.param(b, t, id=f"{b}-{t}") for b in bootstraps for t in TARGETS]


@pytest.mark.parametrize(("bootstrap", "target"), _cells(MEMBERSHIP_BOOTSTRAPS))
def test_membership_replace(tmp_path: Path, bootstrap: str, target: str) -> None:
    res = _run(tmp_path, bootstrap, target, workload="register", nemeses=("membership",))
    assert res.valid is True, res.summary + f" errors={res.verdict['errors']}"
    windows = [f for f in res.verdict["faults"] if f["nemesis"] == "membership"]
    assert windows and all("error" not in f for f in windows), res.verdict["faults"]
    for f in windows:
        (rec,) = f["applied"]
        assert rec["action"] == "replace" and rec["member"] == f["members"][0], rec
        assert re.fullmatch(r"[0-9a-f]+", rec["old_id"]) and rec["old_id"] != rec["new_id"], rec
        assert rec["initial_cluster_state"] == "existing", rec
        (caught,) = f["healed"]["caught_up"]
        assert caught["id"] == rec["new_id"] and caught["voter"] is True, f["healed"]
        assert caught["revision"] >= caught["leader_revision"], caught
    assert res.verdict["stats"]["ok_by_nemesis"]["membership"] > 0, res.verdict["stats"]


@pytest.mark.parametrize(("bootstrap", "target"), _cells(BRIDGE_BOOTSTRAPS))
def test_bridge_five_members(tmp_path: Path, bootstrap: str, target: str) -> None:
    res = _run(tmp_path, bootstrap, target, workload="register", nemeses=("bridge",), members=5)
    assert res.valid is True, res.summary + f" errors={res.verdict['errors']}"
    windows = [f for f in res.verdict["faults"] if f["nemesis"] == "bridge"]
    assert windows and all("error" not in f for f in windows), res.verdict["faults"]
    for f in windows:
        halves = re.fullmatch(r"bridge (\w+): ([\w,]+) \| ([\w,]+)", f["detail"])
        assert halves is not None, f["detail"]
        a, b = halves.group(2).split(","), halves.group(3).split(",")
        assert len(a) == len(b) == 2 and halves.group(1) not in (*a, *b), f["detail"]
        cut = {x["proxy"] for x in f["applied"] if x["action"] == "disable"}
        assert cut == {f"{s}_to_{d}" for s, d in [*((x, y) for x in a for y in b),
                                                   *((y, x) for x in a for y in b)]}, cut
        assert f["healed"]["clean"] is True and f["healed"]["proxies"] == PROXIES_5, f
    assert res.verdict["final_heal"]["bridge"]["proxies"] == PROXIES_5
