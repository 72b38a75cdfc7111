"""The composed testbed's end-to-end tests (see test_composed.py): markers and the skip without
a Docker engine (cells.py starts the runs)."""

from __future__ import annotations

import pytest

from harness.docker_control import engine_available


@pytest.fixture(autouse=True)
def _engine() -> None:
    why = engine_available()
    if why is not None:
        pytest.skip(f"no Docker engine ({why}): the composed testbed needs one")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "composed: end-to-end run on the composed Docker testbed "
                                       "(tests/composed; its own `make test` phase)")
    config.addinivalue_line("markers", "composed_ci: the composed cells `make test` runs")
