"""--discovery against a real discovery service (petcd, and etcd 3.5 with --enable-v2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bootstrap_helpers import Proc, get, new_procs, put, wait_members
from petcd import ids

from harness.local import LocalCluster


@pytest.fixture(params=["petcd", "etcd-3.5"])
def service(request: pytest.FixtureRequest) -> Iterator[str]:
    c = LocalCluster(str(request.param), size=1, extra_args=("--enable-v2",))
    try:
        c.start()
        c.wait_healthy(timeout=60)
        yield c.members[0].client_url
    finally:
        c.stop()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    made: list[Proc] = []
    yield made
    for p in made:
        p.stop()


def test_three_members_form_a_cluster(service: str, tmp_path: Path, procs: list[Proc]) -> None:
    durl = f"{service}/v2/keys/discovery/tok3"
    assert put(service, "/v2/keys/discovery/tok3/_config/size", "3") == 201
    procs += new_procs(tmp_path, ["d1", "d2", "d3"])
    for p in procs:
        p.start(tmp_path, f"--discovery={durl}")
    members = wait_members(procs[0].client_url, 3)
    assert sorted(str(m["name"]) for m in members) == ["d1", "d2", "d3"]
    want = ids.initial_member_ids({p.name: [p.peer_url] for p in procs}, durl)
    assert sorted(int(str(m["ID"])) for m in members) == sorted(want.values())
    status, body = get(service, "/v2/keys/discovery/tok3?sorted=true")
    assert status == 200
    regs = {n["key"].rsplit("/", 1)[1]: n["value"] for n in json.loads(body)["node"]["nodes"]}
    assert regs == {f"{want[p.name]:x}": f"{p.name}={p.peer_url}" for p in procs}


def _failure(service: str, tmp_path: Path, procs: list[Proc], token: str, *flags: str) -> str:
    p = new_procs(tmp_path, [f"x{len(procs)}"])[0]
    procs.append(p)
    p.start(tmp_path, f"--discovery={service}/v2/keys/{token}", *flags)
    assert p.wait_exit(60) == 1
    return p.log.read_text()


def test_size_key_not_found(service: str, tmp_path: Path, procs: list[Proc]) -> None:
    log = _failure(service, tmp_path, procs, "nosize")
    assert "failed to join discovery cluster (discovery: size key not found)" in log
    assert "discovery failed" in log


def test_cluster_is_full(service: str, tmp_path: Path, procs: list[Proc]) -> None:
    assert put(service, "/v2/keys/full/_config/size", "1") == 201
    assert put(service, "/v2/keys/full/1234", "other=http://127.0.0.1:1") == 201
    log = _failure(service, tmp_path, procs, "full", "--discovery-fallback=exit")
    assert "failed to join discovery cluster (discovery: cluster is full)" in log


def test_duplicate_id(service: str, tmp_path: Path, procs: list[Proc]) -> None:
    assert put(service, "/v2/keys/dup/_config/size", "1") == 201
    p = new_procs(tmp_path, ["again"])[0]
    procs.append(p)
    durl = f"{service}/v2/keys/dup"
    mid = ids.initial_member_ids({p.name: [p.peer_url]}, durl)[p.name]
    assert put(service, f"/v2/keys/dup/{mid:x}", f"{p.name}={p.peer_url}") == 201
    p.start(tmp_path, f"--discovery={durl}")
    assert p.wait_exit(60) == 1
    log = p.log.read_text()
    assert "failed to join discovery cluster (discovery: found duplicate id)" in log
    assert "member has been registered with discovery service" in log


def test_duplicate_name(service: str, tmp_path: Path, procs: list[Proc]) -> None:
    assert put(service, "/v2/keys/dupname/_config/size", "2") == 201
    assert put(service, "/v2/keys/dupname/1234", "same=http://127.0.0.1:1") == 201
    p = new_procs(tmp_path, ["same"])[0]
    procs.append(p)
    p.start(tmp_path, f"--discovery={service}/v2/keys/dupname")
    assert p.wait_exit(60) == 1
    assert "discovery: found duplicate name" in p.log.read_text()
