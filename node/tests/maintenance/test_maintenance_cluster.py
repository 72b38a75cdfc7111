"""Maintenance on a real 3-member petcd cluster (harness.local), driven by etcdctl 3.5.1 and
`petcd snapshot restore`: alarms survive restarts, defrag really shrinks LevelDB, Hash agrees
across members, /health reports a lost leader, restore refuses damaged files.

The cross-implementation checks live in `conformance/test_maintenance.py`; these need process
control or petcd's own file format.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.etcdctl import Etcdctl
from harness.local import LocalCluster
from tests.support.clusters import running
from tests.support.timeouts import CLUSTER_UP, CONVERGE

BIG = "v" * 100_000


@pytest.fixture
def quota_cluster() -> Iterator[LocalCluster]:
    with running("petcd", extra_args=("--quota-backend-bytes=2000000",)) as c:
        yield c


def _status(ctl: Etcdctl) -> list[dict[str, object]]:
    out: list[dict[str, object]] = ctl("endpoint", "status", "-w", "json").check().json()
    return out


def _db_sizes(ctl: Etcdctl) -> list[int]:
    return [int(s["Status"]["dbSize"]) for s in _status(ctl)]  # type: ignore[index]


def _fill(ctl: Etcdctl) -> None:
    for _ in range(200):
        if ctl("put", "big", BIG).rc != 0:
            return
    raise AssertionError("no NOSPACE after 200 puts")


def _health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_alarm_survives_full_restart_and_defrag_shrinks(quota_cluster: LocalCluster) -> None:
    c = quota_cluster
    one = c.ctl(c.members[:1])
    _fill(one)
    before = one("alarm", "list").check().stdout
    assert before.endswith("alarm:NOSPACE \n")
    for m in c.members:
        c.stop_member(m)
    for m in c.members:
        c.start_member(m)
    c.leader(timeout=CLUSTER_UP)  # `endpoint health` fails while an alarm is raised
    for m in c.members:
        assert c.ctl([m])("alarm", "list").check().stdout == before

    rev = int(_status(one)[0]["Status"]["header"]["revision"])  # type: ignore[index]
    one("compaction", str(rev)).check()
    full = _db_sizes(c.ctl())
    for m in c.members:
        c.ctl([m])("defrag").check()
    shrunk = _db_sizes(c.ctl())
    # 20+ revisions of a 100 kB value compacted down to one: the files must shrink with them.
    assert all(after < before_ / 4 for after, before_ in zip(shrunk, full, strict=True)), (
        full, shrunk)
    one("alarm", "disarm").check()
    one("put", "after", "ok").check()


def test_hash_equal_on_all_members(cluster: LocalCluster) -> None:
    ctl = cluster.ctl()
    for i in range(10):
        ctl("put", f"h{i}", str(i)).check()
    deadline = time.monotonic() + CONVERGE
    while True:
        applied = {s["Status"]["raftAppliedIndex"] for s in _status(ctl)}  # type: ignore[index]
        if len(applied) == 1:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    hashes = set()
    for m in cluster.members:
        _, _, body = _post(m.client_url, "/v3/maintenance/hash")
        hashes.add(json.loads(body)["hash"])
    assert len(hashes) == 1


def _post(url: str, path: str, doc: str = "{}") -> tuple[int, str, bytes]:
    req = urllib.request.Request(url + path, data=doc.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=20) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def test_health_without_leader(cluster: LocalCluster) -> None:
    c = cluster
    assert _health(c.members[0].client_url) == (200, '{"health":"true","reason":""}')
    for m in c.members[1:]:
        c.kill(m)
    deadline = time.monotonic() + CONVERGE
    while True:
        got = _health(c.members[0].client_url)
        if got == (503, '{"health":"false","reason":"RAFT NO LEADER"}\n'):
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.1)
    st = _status(c.ctl(c.members[:1]))[0]["Status"]
    assert st["errors"] == ["etcdserver: no leader"]  # type: ignore[index]


def test_restore_refuses_damaged_snapshots(cluster: LocalCluster, tmp_path: Path) -> None:
    one = cluster.ctl(cluster.members[:1])
    one("put", "k", "v").check()
    snap = tmp_path / "s.db"
    one("snapshot", "save", str(snap)).check()
    petcd = str(cluster.impl.server)

    def restore(path: Path, data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [petcd, "snapshot", "restore", str(path), f"--data-dir={data_dir}", *extra],
            capture_output=True, text=True, timeout=60, check=False,
        )

    raw = snap.read_bytes()
    flipped = tmp_path / "flipped.db"
    flipped.write_bytes(raw[:100] + bytes([raw[100] ^ 1]) + raw[101:])
    r = restore(flipped, tmp_path / "d1")
    assert r.returncode == 1 and "snapshot file corrupted" in r.stderr
    cut = tmp_path / "cut.db"
    cut.write_bytes(raw[:-32])
    r = restore(cut, tmp_path / "d2")
    assert (r.returncode, r.stderr) == (
        1, "Error: snapshot missing hash but --skip-hash-check=false\n")
    r = restore(cut, tmp_path / "d3", "--skip-hash-check")
    assert r.returncode == 0, r.stderr
    r = restore(snap, tmp_path / "d4", "--name=x", "--initial-cluster=y=http://127.0.0.1:1")
    assert r.returncode == 1 and "Error: " in r.stderr
    r = subprocess.run([petcd, "snapshot", "restore"], capture_output=True, text=True,
                       timeout=60, check=False)
    assert (r.returncode, r.stderr) == (
        128, "Error: snapshot restore requires exactly one argument\n")
