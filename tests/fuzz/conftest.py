"""The fuzzer's session fixture: one petcd and one etcd 3.5.1 single-member cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.pair import Pair


@pytest.fixture(scope="session")
def pair() -> Iterator[Pair]:
    p = Pair()
    try:
        p.start()
        yield p
    finally:
        p.close()
