"""The differential fuzzer in `make test`: a short seeded run, and the saved regression cases.

Every example is a request sequence run on petcd and etcd 3.5.1 (`tests.fuzz.pair`); a
divergence fails the example, Hypothesis shrinks it, and the shrunk sequence is saved under
`regressions/` so it is replayed by `test_regression` from then on.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings

from tests.fuzz import regress
from tests.fuzz.model import Op, sequence
from tests.fuzz.pair import Divergence, Pair

SHORT_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "15"))


def check(pair: Pair, ops: list[Op]) -> None:
    """One example: run, and save the sequence as a regression case when it diverges."""
    try:
        pair.run(ops)
    except Divergence as d:
        regress.save(ops, str(d), f"short-s{SEED}")
        raise


@seed(SEED)
@settings(max_examples=SHORT_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), print_blob=True)
@given(ops=sequence)
def test_short_seeded_run(pair: Pair, ops: list[Op]) -> None:
    check(pair, ops)


CASES = regress.load()


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=name, marks=[pytest.mark.xfail(reason=c["xfail"], strict=False)]
                  if c.get("xfail") else []) for name, c in CASES] or
    [pytest.param(None, id="none", marks=pytest.mark.skip(reason="no saved cases"))])
def test_regression(pair: Pair, case: dict[str, Any]) -> None:
    pair.run(case["ops"])
