"""Fixtures shared by the node tests: real petcd clusters on loopback, always torn down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.local import LocalCluster

UP_TIMEOUT = 60.0


def _running(size: int) -> Iterator[LocalCluster]:
    c = LocalCluster("petcd", size=size)
    try:
        c.start()
        c.wait_healthy(timeout=UP_TIMEOUT)
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A fresh, healthy 3-member petcd cluster."""
    yield from _running(3)


@pytest.fixture
def member() -> Iterator[LocalCluster]:
    """A fresh, healthy one-member petcd cluster."""
    yield from _running(1)
