"""pytest fixtures and options for suites that run against real clusters.

Load it from a conftest with `from harness.pytest_plugin import *  # noqa: F403`.

Options: `--targets petcd,etcd-3.5,etcd-3.4` (default: all three) selects the implementations;
`image:NAME[:TAG]` adds any etcd-compatible server image (ETCD_* variables) as a target on
`--backend docker` (e.g. `--targets image:petcd/etcd:3.5.1`; it is held to etcd 3.5's
behaviour, and skipped with the reason on the local backend). Every test that takes the `target` argument runs once per target. The petcd parametrization
carries the `petcd` marker (so `-m "not petcd"` also works) and is never skipped: if petcd cannot
start, its tests error with the member's log tail.

`--backend local|docker` (default local) selects where members run: local processes
(`harness.local.LocalCluster`) or containers of the compose topology
(`harness.docker_backend.DockerCluster`, images built with images/build.sh when missing). On
docker, tests skip only when no Docker engine answers, or when they ask `cluster_factory` for a
local-only feature (server flags in `extra_args`, TLS schemes, `ctl_args`, a data root): the
containers are configured by the compose file's `ETCD_*` variables, which do not take flags.

Fixtures:
- `target`: implementation name (session-scoped parametrization, so tests group per target).
- `cluster`: a healthy 3-member cluster of the target, shared by a whole session/worker.
- `backend`: "local" or "docker" (from `--backend`), for tests whose expectations differ.
- `fresh_cluster`: a new healthy 3-member cluster for one test (membership changes, faults,
  fresh-revision checks); always torn down.
- `cluster_factory(size=3)`: make more clusters of the target for one test.
- `etcdctl`: etcdctl 3.5.1 bound to the cluster's endpoints; `etcdctl_native`: the etcdctl of
  the target's own version (3.4.23 for etcd-3.4).
- `aetcd`: runs `async def fn(client)` with an `aetcd.Client` connected to the cluster.
- `prefix`: a key prefix unique to the test, so tests can share one cluster.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from harness.cluster import Cluster
from harness.etcdctl import Etcdctl
from harness.impls import IMPL_NAMES, etcdctl_35, get_impl, image_of
from harness.local import LocalCluster

T = TypeVar("T")
CLUSTER_UP_TIMEOUT = 60.0
DOCKER_UP_TIMEOUT = 90.0
BACKENDS = ("local", "docker")
# cluster_factory keywords the docker backend honours; any other one is a local-only feature.
DOCKER_KWARGS = frozenset({"heartbeat_ms", "election_ms"})


def pytest_addoption(parser: pytest.Parser) -> None:
    try:
        parser.addoption(
            "--targets",
            default=",".join(IMPL_NAMES),
            help=f"comma-separated implementations to test (default {','.join(IMPL_NAMES)})",
        )
    except ValueError:  # another conftest loaded this plugin already
        pass
    try:
        parser.addoption(
            "--backend",
            choices=BACKENDS,
            default="local",
            help="where cluster members run: local processes (default) or docker containers",
        )
    except ValueError:
        pass


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running test (e.g. etcdctl check perf)")
    config.addinivalue_line("markers", "petcd: the petcd parametrization of a target test")
    for name in _targets(config):
        get_impl(name)  # fail early on a typo


def _targets(config: pytest.Config) -> list[str]:
    raw = str(config.getoption("--targets"))
    names = [t.strip() for t in raw.split(",") if t.strip()]
    if not names:
        raise pytest.UsageError("--targets is empty")
    for n in names:
        try:
            is_image = image_of(n) is not None
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        if n not in IMPL_NAMES and not is_image:
            raise pytest.UsageError(f"unknown target {n!r}; choose from {', '.join(IMPL_NAMES)} "
                                    f"or image:NAME[:TAG]")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    params = [
        pytest.param(n, id=n, marks=[pytest.mark.petcd] if n == "petcd" else [])
        for n in _targets(metafunc.config)
    ]
    metafunc.parametrize("target", params, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under `--dist loadgroup` every test of one target lands on the same xdist worker, so each
    # worker starts one shared cluster per target instead of one per target per worker.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "target" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(f"target-{callspec.params['target']}"))


def _backend(config: pytest.Config) -> str:
    return str(config.getoption("--backend", default="local"))


def _new_cluster(config: pytest.Config, target: str, size: int, **kw: Any) -> Cluster:
    """An unstarted cluster of `target` on the session's backend (skips what it cannot run)."""
    if _backend(config) == "local":
        if image_of(target) is not None:
            pytest.skip(f"{target}: an image target runs on --backend docker only")
        return LocalCluster(target, size=size, **kw)
    from harness import docker_backend  # only docker runs need it

    reason = docker_backend.engine_available()
    if reason is not None:
        pytest.skip(f"--backend docker: no Docker engine: {reason}")
    local_only = sorted(set(kw) - DOCKER_KWARGS)
    if local_only:
        pytest.skip(f"needs {', '.join(local_only)}: local backend only (docker members are "
                    f"configured by compose/docker-compose.yml's ETCD_* variables)")
    docker_backend.ensure_image(target)
    return docker_backend.DockerCluster(target, size=size, **kw)


def _healthy(cluster: Cluster) -> Cluster:
    timeout = CLUSTER_UP_TIMEOUT if isinstance(cluster, LocalCluster) else DOCKER_UP_TIMEOUT
    try:
        cluster.start()
        cluster.wait_healthy(timeout=timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def cluster(target: str, pytestconfig: pytest.Config) -> Iterator[Cluster]:
    c = _healthy(_new_cluster(pytestconfig, target, 3))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster_factory(target: str, pytestconfig: pytest.Config) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []

    def make(size: int = 3, **kw: Any) -> Cluster:
        c = _new_cluster(pytestconfig, target, size, **kw)
        made.append(c)
        return _healthy(c)

    try:
        yield make
    finally:
        for c in made:
            c.stop()


@pytest.fixture
def fresh_cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    return cluster_factory(3)


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    return _backend(pytestconfig)


@pytest.fixture
def etcdctl(cluster: Cluster) -> Etcdctl:
    return Etcdctl(cluster.endpoints, binary=etcdctl_35())


@pytest.fixture
def etcdctl_native(cluster: Cluster) -> Etcdctl:
    return Etcdctl(cluster.endpoints, binary=cluster.impl.etcdctl)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return f"/t/{name}/{uuid.uuid4().hex[:8]}/"


class AetcdRunner:
    """Runs coroutines against one member with a fresh `aetcd.Client` (own event loop each)."""

    def __init__(self, client_url: str, timeout: int = 10) -> None:
        parts = urlsplit(client_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 2379
        self.timeout = timeout

    def run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        import aetcd

        async def main() -> T:
            async with aetcd.Client(self.host, self.port, timeout=self.timeout) as client:
                return await fn(client)

        return asyncio.run(main())


@pytest.fixture
def aetcd(cluster: Cluster) -> AetcdRunner:
    return AetcdRunner(cluster.members[0].client_url)


__all__ = [
    "AetcdRunner",
    "aetcd",
    "backend",
    "cluster",
    "cluster_factory",
    "etcdctl",
    "etcdctl_native",
    "fresh_cluster",
    "prefix",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
]
