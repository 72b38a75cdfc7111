"""The regression gate: `python -m harness gate` (`make gate`), `make baseline`.

One fixed, seeded, bounded run measures three things on one machine and compares each figure
with the committed baseline (`results/baseline/gate.json`):

- conformance (`conformance.py`): pass/fail per test per target from pytest's JUnit XML, over a
  fixed subset of the conformance suite, for the target under test, etcd-3.5 and etcd-3.4;
- correctness (`correctness.py`): a small Jepsen-style matrix (`jepsen_style run`, seed 7) on
  the local and the Docker backend with its verdicts, plus negative controls that must stay
  VIOLATION;
- speed (`speed.py`): target/etcd-3.5 throughput and CPU-per-request ratios from the
  interleaved bench (`harness.bench.run_bench`), each cell repeated, plus the peak RSS ratio.

`spec.py` holds every fixed choice (files, cells, seeds, margins); `compare.py` the rules;
`report.py` what a person reads (stdout table, markdown, JUnit XML, HTML page, plots over the
history); `cli.py` the command line.
"""
