"""Applying a single (non-joint) membership change to a ProgressTracker.

Only one change takes effect at a time, which keeps any two successive configurations' majorities
overlapping. New peers start in probe state at `last_index` and are considered recently active so
that check-quorum does not immediately depose the leader that added them.
"""

from __future__ import annotations

from .progress import Progress
from .tracker import ProgressTracker
from .types import NONE, ConfChange, ConfChangeType, ConfState


class ConfChangeError(ValueError):
    """The change cannot be applied to the current configuration."""


def _init_progress(trk: ProgressTracker, id_: int, last_index: int, learner: bool) -> None:
    pr = Progress(0, max(last_index, 1), trk.max_inflight, learner)
    pr.recent_active = True
    trk.progress[id_] = pr


def apply_change(trk: ProgressTracker, cc: ConfChange, last_index: int) -> None:
    """Mutate `trk` by one change. Raises ConfChangeError if it would remove the last voter."""
    nid = cc.node_id
    if nid == NONE:
        return  # a no-op change, as etcd allows
    t = cc.type
    if t == ConfChangeType.ConfChangeAddNode:
        pr = trk.progress.get(nid)
        if pr is None:
            _init_progress(trk, nid, last_index, False)
        else:
            pr.is_learner = False
        trk.learners.discard(nid)
        trk.voters.add(nid)
    elif t == ConfChangeType.ConfChangeAddLearnerNode:
        pr = trk.progress.get(nid)
        if pr is None:
            _init_progress(trk, nid, last_index, True)
        else:
            pr.is_learner = True
        if nid in trk.voters and len(trk.voters) == 1:
            raise ConfChangeError("removed all voters")
        trk.voters.discard(nid)
        trk.learners.add(nid)
    elif t == ConfChangeType.ConfChangeRemoveNode:
        if nid in trk.voters and len(trk.voters) == 1:
            raise ConfChangeError("removed all voters")
        trk.voters.discard(nid)
        trk.learners.discard(nid)
        trk.progress.pop(nid, None)
    elif t == ConfChangeType.ConfChangeUpdateNode:
        pass
    else:  # pragma: no cover - enum is closed
        raise ConfChangeError(f"unknown conf change type {t}")


def restore(trk: ProgressTracker, cs: ConfState, last_index: int) -> None:
    """Reset `trk` to exactly the membership in `cs` (after a snapshot or at boot)."""
    trk.voters = set()
    trk.learners = set()
    trk.progress = {}
    trk.votes = {}
    if set(cs.voters) & set(cs.learners):
        raise ConfChangeError(f"voters and learners overlap in {cs}")
    for v in cs.voters:
        _init_progress(trk, v, last_index, False)
        trk.voters.add(v)
    for lid in cs.learners:
        _init_progress(trk, lid, last_index, True)
        trk.learners.add(lid)
