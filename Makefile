# petcd testbed. `make up` / `make test` are the two entry points; see README.md.
SHELL := /bin/bash
IMPL ?= petcd
PY   := .venv/bin/python
# pytest-xdist: one worker per CPU; conformance tests are grouped per target (one cluster each).
XDIST ?= -n auto --dist loadgroup
PYTEST_ARGS ?=
# Cluster tests on a loaded 2-core box can lose an election race; a test that fails three times
# in a row fails the run.
RERUNS ?= --reruns 2 --reruns-delay 2
LINT_PATHS = $(wildcard node/petcd node/tests harness conformance jepsen_style toxiproxy tests)
# Docker: `make up` uses containers when `docker version` succeeds, else local processes
# (BACKEND=docker|local forces one); TOXIPROXY=1 adds the Toxiproxy overlay (docker only).
BACKEND ?= auto
TOXIPROXY ?=
# Docker: how the members find each other: static (initial cluster) | discovery (v2 discovery
# service of DISCOVERY_IMPL) | dns (DNS SRV records served by dnsmasq). See compose/README.md.
BOOTSTRAP ?= static
DISCOVERY_IMPL ?= etcd-3.5
# Conformance files `make test` also runs on the Docker backend, and for which targets.
DOCKER_CONFORMANCE ?= conformance/test_kv.py conformance/test_watch.py conformance/test_txn.py \
	conformance/test_consistency.py conformance/test_faults.py conformance/test_revision.py
DOCKER_TARGETS ?= petcd,etcd-3.5
# The composed testbed's cells `make test` runs (tests/composed, marker composed_ci: static x
# {petcd, etcd-3.5}, discovery x petcd, dns x etcd-3.5: 12 runs of about 40 s, two at a time: 4.5 minutes measured);
# COMPOSED_MARK= skips the phase. `make matrix` runs the whole matrix.
COMPOSED_MARK ?= composed_ci
HAVE_DOCKER = docker version >/dev/null 2>&1

.PHONY: setup up down status test lint bench profile scale images gate baseline fuzz matrix matrix-index

setup:
	@scripts/setup.sh

up: setup
	@$(PY) -m harness --backend $(BACKEND) up --impl $(IMPL) --bootstrap $(BOOTSTRAP) \
	  --discovery-impl $(DISCOVERY_IMPL) $(if $(filter 1 yes true,$(TOXIPROXY)),--toxiproxy)

down:
	@if [ -x $(PY) ]; then $(PY) -m harness --backend $(BACKEND) down; \
	  else echo "no .venv; nothing to stop"; fi

status:
	@$(PY) -m harness --backend $(BACKEND) status

# Every container image (base, petcd, etcd 3.5.1/3.4.23, toxiproxy, dnsmasq), offline and cached.
images:
	@images/build.sh all

# Phases: everything but `slow` under xdist; with a Docker engine, DOCKER_CONFORMANCE on the
# docker backend (DOCKER_TARGETS); then the `slow` tests (check perf) alone so their timing is not
# disturbed. With a Docker engine the images are built first (cached; seconds when warm). The
# first non-zero pytest exit code is kept in .run/pytest.rc so .ci/run can tell "no tests
# collected" (5) apart; the slow phase having no tests is fine.
test: setup
	@mkdir -p .run
	@if $(HAVE_DOCKER); then images/build.sh all; \
	  else echo "no Docker engine: docker tests will skip"; fi
	@set -o pipefail; rc=0; \
	  .venv/bin/pytest $(XDIST) $(RERUNS) --durations=25 -m "not slow and not composed" $(PYTEST_ARGS) 2>&1 | tee .run/pytest.log || rc=$$?; \
	  rcd=0; if [ -n "$(strip $(DOCKER_CONFORMANCE))" ] && $(HAVE_DOCKER); then \
	    .venv/bin/pytest $(XDIST) $(RERUNS) --backend docker --targets $(DOCKER_TARGETS) -m "not slow" \
	      $(DOCKER_CONFORMANCE) 2>&1 | tee -a .run/pytest.log || rcd=$$?; fi; \
	  if [ -n "$(strip $(COMPOSED_MARK))" ] && [ $$rcd -eq 0 ] && $(HAVE_DOCKER); then \
	    .venv/bin/pytest $(XDIST) $(RERUNS) --durations=0 -m "$(COMPOSED_MARK)" tests/composed \
	      2>&1 | tee -a .run/pytest.log || rcd=$$?; fi; \
	  rc2=0; .venv/bin/pytest $(RERUNS) -m slow $(PYTEST_ARGS) 2>&1 | tee -a .run/pytest.log || rc2=$$?; \
	  if [ $$rc2 -eq 5 ]; then rc2=0; fi; \
	  if [ $$rc -eq 0 ]; then rc=$$rcd; fi; \
	  if [ $$rc -eq 0 ]; then rc=$$rc2; fi; \
	  echo $$rc > .run/pytest.rc; exit $$rc

# Test directories whose modules import helper modules beside them (pytest puts each test
# directory on sys.path): mypy checks each on its own with that directory on its path, as their
# conftest.py files would otherwise be one top-level module `conftest` several times over.
SIBLING_TEST_DIRS = node/tests/lease node/tests/mvcc node/tests/raft node/tests/discovery node/tests/watch \
	toxiproxy/tests
SIBLING_EXCLUDE = ^($(subst $() ,|,$(strip $(SIBLING_TEST_DIRS))))/

lint: setup
	.venv/bin/ruff check $(LINT_PATHS)
	MYPYPATH=node .venv/bin/mypy --strict --exclude '$(SIBLING_EXCLUDE)' $(LINT_PATHS)
	@for d in $(SIBLING_TEST_DIRS); do \
	  echo "MYPYPATH=node:$$d .venv/bin/mypy --strict $$d"; \
	  MYPYPATH=node:$$d .venv/bin/mypy --strict $$d || exit 1; done

bench: setup
	@$(PY) -m harness.bench

# One bench cell (PROFILE_ARGS, default put @64) with py-spy on the leader and a follower:
# flame graphs and top-20 tables under results/profiles/<time>/ (harness/profile.py).
PROFILE_ARGS ?=
profile: setup
	@$(PY) -m harness.profile $(PROFILE_ARGS)

# Scale curves, petcd beside etcd 3.5.1 interleaved, as the store grows (harness/scale.py):
# tables and PNG plots under results/scale/<time>/. SCALE_ARGS e.g. --max-keys 100000
# --budget-minutes 12 (see python -m harness.scale --help).
SCALE_ARGS ?=
scale: setup
	@$(PY) -m harness.scale $(SCALE_ARGS)

# Regression gate (harness/gate): conformance subset, Jepsen-style matrix and interleaved speed
# ratios vs etcd 3.5.1, compared with results/baseline/gate.json. GATE_TARGET picks the
# implementation under test (default petcd); GATE_ARGS passes more options.
GATE_TARGET ?= petcd
GATE_ARGS ?=
gate: setup
	@$(PY) -m harness gate --target $(GATE_TARGET) $(GATE_ARGS)

# Refresh the committed baseline deliberately (about 6-8 minutes; commit the result).
baseline: setup
	@$(PY) -m harness gate --record-baseline --target $(GATE_TARGET) $(GATE_ARGS)

# The differential fuzzer's long run (tests/fuzz): petcd vs etcd 3.5.1 for FUZZ_MINUTES, a
# progress line per round, a summary; shrunk divergences land in tests/fuzz/regressions/.
FUZZ_MINUTES ?= 30
fuzz: setup
	@$(PY) -m tests.fuzz --minutes $(FUZZ_MINUTES)

# The HTML pages of results/ (jepsen_style.pages): every run directory's index.html and the
# matrix results/index.html of the latest runs. Each run rewrites both at its end; this rebuilds
# them (after a checkout, or after runs of an older runner). RESULTS_DIR picks another directory.
RESULTS_DIR ?= results
matrix-index: setup
	@$(PY) -m jepsen_style index --results-dir $(RESULTS_DIR)

# The whole composed matrix (jepsen_style/matrix.py): bootstraps x targets x workloads x nemesis
# groups on Docker (3 groups that together hold every nemesis the docker backend runs), one run
# each, four runs at a time, a progress line per run with the time left, a summary table
# (results/matrix-latest.json). 144 runs by default: 41 minutes measured on this 2-core machine;
# narrow it with MATRIX_ARGS, e.g. MATRIX_ARGS="--bootstraps static --workloads register --jobs 2".
MATRIX_ARGS ?=
matrix: setup
	@rc=0; $(PY) -m jepsen_style.matrix $(MATRIX_ARGS) || rc=$$?; \
	  $(MAKE) --no-print-directory matrix-index; exit $$rc
