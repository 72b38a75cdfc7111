"""Fixtures shared by the node tests: real petcd clusters on loopback, always torn down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.local import LocalCluster
from tests.support.clusters import running


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """A fresh, healthy 3-member petcd cluster."""
    with running("petcd", size=3) as c:
        yield c


@pytest.fixture
def member() -> Iterator[LocalCluster]:
    """A fresh, healthy one-member petcd cluster."""
    with running("petcd", size=1) as c:
        yield c
