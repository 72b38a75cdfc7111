"""Healthy Docker clusters for fixtures: made on demand, all removed at the end and checked for
leftover containers, networks and volumes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from harness.docker_backend import DockerCluster, engine_available, ensure_image
from tests.support.timeouts import DOCKER_UP

_NO_ENGINE = engine_available()
needs_engine = pytest.mark.skipif(_NO_ENGINE is not None, reason=f"no Docker engine: {_NO_ENGINE}")
"""Mark for tests that need a Docker engine: they skip, saying why, only where none answers."""


@contextmanager
def docker_clusters() -> Iterator[Callable[..., DockerCluster]]:
    """Yield `make(impl, images=(), **kw)`: a started, healthy `DockerCluster(impl, **kw)`,
    after making sure the images of `impl` and of `images` exist (built if missing). On exit
    every cluster made is stopped, also one that failed to start, and must leave nothing."""
    made: list[DockerCluster] = []

    def make(impl: str, images: Sequence[str] = (), **kw: Any) -> DockerCluster:
        for image in (impl, *images):
            ensure_image(image)
        c = DockerCluster(impl, **kw)
        made.append(c)
        c.start()
        c.wait_healthy(timeout=DOCKER_UP)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()
        left = {c.project: c.leftovers() for c in made if c.leftovers()}
        assert not left, f"Docker resources left behind: {left}"
