"""Seeded randomized simulation: safety and liveness over >= 1000 seeds (3 and 5 nodes)."""

from __future__ import annotations

import pytest
from petcd.raft.log import RaftLog
from petcd.raft.raft import Raft
from petcd.raft.types import Message
from raft_sim import Sim, SimParams, run_seed

SEEDS = 1000
CHUNK = 50


@pytest.mark.parametrize("chunk", range(SEEDS // CHUNK))
def test_sim_seeds(chunk: int) -> None:
    commits = leaders = crashes = 0
    for seed in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        try:
            sim = run_seed(seed)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}: {exc}") from exc
        commits += len(sim.term_at)
        leaders += len(sim.leaders)
        crashes += sim.stats["crashes"]
    # The runs must actually exercise the protocol, not pass vacuously.
    assert commits > CHUNK * 10
    assert leaders > CHUNK
    assert crashes > CHUNK


def test_sim_is_deterministic() -> None:
    a, b = run_seed(7), run_seed(7)
    assert a.hard_states() == b.hard_states()
    assert a.hash_at == b.hash_at
    assert a.stats == b.stats


def test_sim_exercises_snapshots_and_reads() -> None:
    sent = served = 0
    for seed in range(40):
        sim = run_seed(seed)
        sent += sim.stats["snapshots_sent"]
        served += sim.reads_served
    assert sent > 0
    assert served > 0


def _first_failure(seeds: range) -> str | None:
    for seed in seeds:
        try:
            run_seed(seed)
        except AssertionError as exc:
            return str(exc)
    return None


def test_double_voting_breaks_election_safety(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that grants every vote request (votes twice per term) must be caught."""

    def always(self: Raft, m: Message) -> bool:
        return True

    monkeypatch.setattr(Raft, "can_vote", always)
    err = _first_failure(range(200))
    assert err is not None and "election safety" in err, err


def test_ignoring_log_freshness_breaks_leader_completeness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Granting votes to candidates with stale logs must be caught by a safety check."""

    def always(self: RaftLog, lasti: int, term: int) -> bool:
        return True

    monkeypatch.setattr(RaftLog, "is_up_to_date", always)
    err = _first_failure(range(200))
    assert err is not None
    assert any(
        k in err for k in ("leader completeness", "state-machine safety", "log matching")
    ), err


def test_liveness_check_fires_when_network_never_heals() -> None:
    """The liveness assertion is real: if the network keeps dropping everything, it fires."""
    sim = Sim(1, SimParams(n=3, fault_ticks=10, liveness_ticks=60))

    def drop_all(m: Message) -> None:
        sim.stats["dropped"] += 1

    sim._send = drop_all  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="liveness"):
        sim.run()
