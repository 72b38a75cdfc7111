from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from petcd.mvcc.kvstore import KVStore
from petcd.server.watch_hub import WatchHub
from petcd.storage.backend import Backend


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KVStore]:
    be = Backend(tmp_path / "db")
    yield KVStore(be)
    be.close()


@pytest.fixture
def hub(store: KVStore) -> WatchHub:
    return WatchHub(store)
