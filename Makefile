# petcd testbed. `make up` / `make test` are the two entry points; see README.md.
SHELL := /bin/bash
IMPL ?= petcd
PY   := .venv/bin/python
# pytest-xdist: one worker per CPU; conformance tests are grouped per target (one cluster each).
XDIST ?= -n auto --dist loadgroup
PYTEST_ARGS ?=
LINT_PATHS = $(wildcard node/petcd harness conformance jepsen_style)

.PHONY: setup up down status test lint bench

setup:
	@scripts/setup.sh

up: setup
	@$(PY) -m harness up --impl $(IMPL)

down:
	@if [ -x $(PY) ]; then $(PY) -m harness down; else echo "no .venv; nothing to stop"; fi

status:
	@$(PY) -m harness status

# Two phases: everything but `slow` under xdist, then the `slow` tests (check perf) alone so
# their timing is not disturbed. The first non-zero pytest exit code is kept in .run/pytest.rc
# so .ci/run can tell "no tests collected" (5) apart; phase 2 having no slow tests is fine.
test: setup
	@mkdir -p .run
	@set -o pipefail; rc=0; \
	  .venv/bin/pytest $(XDIST) -m "not slow" $(PYTEST_ARGS) 2>&1 | tee .run/pytest.log || rc=$$?; \
	  rc2=0; .venv/bin/pytest -m slow $(PYTEST_ARGS) 2>&1 | tee -a .run/pytest.log || rc2=$$?; \
	  if [ $$rc2 -eq 5 ]; then rc2=0; fi; \
	  if [ $$rc -eq 0 ]; then rc=$$rc2; fi; \
	  echo $$rc > .run/pytest.rc; exit $$rc

lint: setup
	.venv/bin/ruff check $(LINT_PATHS)
	MYPYPATH=node .venv/bin/mypy --strict $(LINT_PATHS)

bench: setup
	@$(PY) -m harness.bench
