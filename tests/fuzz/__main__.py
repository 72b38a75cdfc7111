"""The long fuzzer run: ``python -m tests.fuzz --minutes 30`` (``make fuzz FUZZ_MINUTES=30``).

Rounds of ``--round`` Hypothesis examples (not shrunk unless ``--shrink``; the divergent
sequence is saved as it is), each round with the next seed, until the time is up
(a round never starts after it; each example's requests have deadlines). A progress line per
round; divergences are saved as regression cases (shrunk) and counted; at the end a summary
(sequences, requests, divergences, resets, load average) and exit status 1 if any diverged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzz import regress
from tests.fuzz.model import Op, sequence
from tests.fuzz.pair import Divergence, Pair


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--round", type=int, default=25, help="examples per Hypothesis round")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shrink", action="store_true",
                    help="shrink divergent examples (slow: every attempt may reset the pair)")
    args = ap.parse_args(argv)
    pair = Pair()
    pair.start()
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    phases = (Phase.generate, Phase.shrink) if args.shrink else (Phase.generate,)
    rounds = failed_rounds = 0
    last = t0
    try:
        while time.monotonic() < end:
            s = args.seed + rounds
            rounds += 1

            @seed(s)
            @settings(max_examples=args.round, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck), phases=phases)
            @given(ops=sequence)
            def one(ops: list[Op]) -> None:
                if time.monotonic() >= end:
                    return  # time is up: the rest of the round is skipped
                nonlocal last
                if time.monotonic() - last >= 30:
                    last = time.monotonic()
                    st = pair.stats
                    print(f"[fuzz] {last - t0:7.0f}s sequences {st.sequences} requests "
                          f"{st.requests} divergences {st.divergences}", flush=True)
                try:
                    pair.run(ops)
                except Divergence as d:
                    regress.save(ops, str(d), f"long-s{s}")  # noqa: B023 -- called within this iteration
                    raise

            try:
                one()
                verdict = "ok"
            except Exception as d:  # noqa: BLE001 -- Divergence, or Hypothesis's groups of them
                failed_rounds += 1
                verdict = "DIVERGED: " + str(d).splitlines()[0][:200]
            st = pair.stats
            print(f"[fuzz] {time.monotonic() - t0:7.0f}s round {rounds} seed {s}: {verdict} | "
                  f"sequences {st.sequences} requests {st.requests} divergences "
                  f"{st.divergences} resets {st.resets}", flush=True)
    finally:
        pair.close()
    st = pair.stats
    print(f"[fuzz] SUMMARY: {args.minutes:g} min, rounds {rounds}, sequences {st.sequences}, "
          f"requests {st.requests}, divergent examples {st.divergences} (incl. shrinking), "
          f"rounds with a divergence {failed_rounds}, cluster resets {st.resets}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for text in st.first:
        print("[fuzz] divergence:", text.replace("\n", "\n    "), flush=True)
    return 1 if failed_rounds else 0


if __name__ == "__main__":
    sys.exit(main())
