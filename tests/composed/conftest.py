"""Markers of the composed testbed's end-to-end tests (see test_composed.py)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "composed: end-to-end run on the composed Docker testbed "
                                       "(tests/composed; its own `make test` phase)")
    config.addinivalue_line("markers", "composed_ci: the composed cells `make test` runs")
