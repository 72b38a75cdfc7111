"""Backend on a real LevelDB: buckets, atomic batches, snapshots, reopen, failpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from petcd.storage import buckets, failpoints
from petcd.storage.backend import Backend, SnapshotFormatError


@pytest.fixture
def be(tmp_path: Path) -> Iterator[Backend]:
    b = Backend(tmp_path / "db")
    yield b
    b.close()


def test_buckets_are_isolated(be: Backend) -> None:
    be.put(buckets.AUTH, b"x", b"auth")
    be.put(buckets.AUTH_USERS, b"x", b"users")
    be.put(buckets.AUTH_ROLES, b"", b"empty-key")
    assert be.get(buckets.AUTH, b"x") == b"auth"
    assert be.get(buckets.AUTH_USERS, b"x") == b"users"
    assert list(be.iterate(buckets.AUTH)) == [(b"x", b"auth")]
    assert list(be.iterate(buckets.AUTH_ROLES)) == [(b"", b"empty-key")]
    assert be.get(buckets.META, b"x") is None


def test_bucket_ids_and_names_unique() -> None:
    assert len(buckets.BY_ID) == len(buckets.ALL)
    assert len(buckets.BY_NAME) == len(buckets.ALL)


def test_iterate_range_and_reverse(be: Backend) -> None:
    with be.batch() as b:
        for k in (b"a", b"b", b"c", b"d"):
            b.put(buckets.TEST, k, k.upper())
    assert [k for k, _ in be.iterate(buckets.TEST, b"b", b"d")] == [b"b", b"c"]
    assert [k for k, _ in be.iterate(buckets.TEST, b"b")] == [b"b", b"c", b"d"]
    assert [k for k, _ in be.iterate(buckets.TEST, reverse=True)] == [b"d", b"c", b"b", b"a"]
    assert list(be.iterate_keys(buckets.TEST, b"c")) == [b"c", b"d"]


def test_batch_dropped_on_exception(be: Backend) -> None:
    with pytest.raises(RuntimeError), be.batch() as b:
        b.put(buckets.TEST, b"k", b"v")
        raise RuntimeError("boom")
    assert be.get(buckets.TEST, b"k") is None


def test_batch_ops_apply_in_order(be: Backend) -> None:
    b = be.batch()
    b.put(buckets.TEST, b"k", b"1")
    b.delete(buckets.TEST, b"k")
    b.put(buckets.TEST, b"j", b"2")
    assert len(b) == 3
    be.write(b, sync=True)
    assert be.get(buckets.TEST, b"k") is None
    assert be.get(buckets.TEST, b"j") == b"2"


def test_reopen_keeps_data(tmp_path: Path) -> None:
    b = Backend(tmp_path / "db")
    b.put(buckets.META, b"k", b"v", sync=True)
    b.close()
    b = Backend(tmp_path / "db")
    assert b.get(buckets.META, b"k") == b"v"
    assert b.size_bytes() > 0
    b.compact_range()
    assert b.get(buckets.META, b"k") == b"v"
    b.close()


def test_snapshot_roundtrip_replaces_state_keeps_raft(tmp_path: Path) -> None:
    src = Backend(tmp_path / "src")
    dst = Backend(tmp_path / "dst")
    try:
        src.put(buckets.KEY, b"\x00" * 17, b"value")
        src.put(buckets.MEMBERS, b"m1", b"{}")
        src.put(buckets.RAFT_STATE, b"hardstate", b"src-raft")
        dst.put(buckets.LEASE, b"stale", b"x")
        dst.put(buckets.RAFT_STATE, b"hardstate", b"dst-raft")
        data = src.snapshot_bytes()
        # a write after the snapshot is not in it
        src.put(buckets.KEY, b"\x01" * 17, b"later")
        dst.restore_from_bytes(data)
        assert dst.get(buckets.KEY, b"\x00" * 17) == b"value"
        assert dst.get(buckets.KEY, b"\x01" * 17) is None
        assert dst.get(buckets.MEMBERS, b"m1") == b"{}"
        assert dst.get(buckets.LEASE, b"stale") is None
        assert dst.get(buckets.RAFT_STATE, b"hardstate") == b"dst-raft"
    finally:
        src.close()
        dst.close()


def test_restore_rejects_garbage_and_changes_nothing(be: Backend) -> None:
    be.put(buckets.TEST, b"k", b"v")
    good = be.snapshot_bytes()
    for bad in (b"", b"junk", good[:-1], good[:20] + b"X" + good[21:]):
        with pytest.raises(SnapshotFormatError):
            be.restore_from_bytes(bad)
    assert be.get(buckets.TEST, b"k") == b"v"


def test_failpoint_parse() -> None:
    assert failpoints.parse("beforeCommit=panic, afterCommit=error") == {
        "beforeCommit": "panic",
        "afterCommit": "error",
    }
    with pytest.raises(ValueError):
        failpoints.parse("beforeCommit=explode")
    with pytest.raises(ValueError):
        failpoints.parse("beforeCommit")


def test_failpoint_error_stops_write(be: Backend) -> None:
    failpoints.reload("beforeCommit=error")
    try:
        with pytest.raises(failpoints.FailpointError):
            be.put(buckets.TEST, b"k", b"v")
    finally:
        failpoints.reload("")
    assert be.get(buckets.TEST, b"k") is None


@pytest.mark.parametrize(("point", "persisted"), [("beforeCommit", False), ("afterCommit", True)])
def test_failpoint_panic_exits_process(tmp_path: Path, point: str, persisted: bool) -> None:
    db = tmp_path / "db"
    code = (
        "import os, sys\n"
        "from petcd.config import read_settings\n"
        "from petcd.storage import buckets, failpoints\n"
        "failpoints.reload(read_settings(os.environ).failpoints)\n"
        "from petcd.storage.backend import Backend\n"
        "b = Backend(sys.argv[1])\n"
        "with b.batch(sync=True) as w:\n"
        "    w.put(buckets.TEST, b'k', b'v')\n"
        "print('not reached')\n"
    )
    env = dict(os.environ, PETCD_FAILPOINTS=f"{point}=panic")
    p = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert f"panic: failpoint panic: {point}" in p.stderr
    assert "not reached" not in p.stdout
    b = Backend(db)
    try:
        assert (b.get(buckets.TEST, b"k") == b"v") is persisted
    finally:
        b.close()


def test_compaction_failpoint_leaves_resumable_state(tmp_path: Path) -> None:
    from petcd.mvcc.kvstore import KVStore

    db = tmp_path / "db"
    s = KVStore(Backend(db))
    for i in range(4):
        t = s.write()
        t.put(b"k", b"%d" % i)
        t.end()
    failpoints.reload("compactBeforeSetFinishedCompact=error")
    try:
        with pytest.raises(failpoints.FailpointError):
            s.compact(4)
    finally:
        failpoints.reload("")
    s.backend.close()
    s = KVStore(Backend(db))  # resumes the scheduled compaction
    assert s.compact_rev == 4
    assert [kv.value for kv in s.range(b"k", rev=4).kvs] == [b"2"]
    assert s.backend.get(buckets.META, buckets.META_FINISHED_COMPACT_REV) is not None
    s.backend.close()


def test_failpoint_behaviour_points() -> None:
    """`on` and `delay:<ms>` arm behaviour points without making `failpoint()` fire."""
    try:
        failpoints.reload("putDelay=delay:20,linearizableReadLocal=on")
        assert failpoints.delay_seconds(failpoints.PUT_DELAY) == pytest.approx(0.02)
        assert failpoints.is_on(failpoints.LINEARIZABLE_READ_LOCAL)
        failpoints.failpoint(failpoints.PUT_DELAY)  # no panic, no error
        assert not failpoints.is_on(failpoints.PUT_DELAY)
        with pytest.raises(ValueError):
            failpoints.parse("putDelay=delay:soon")
    finally:
        failpoints.reload("")
    assert failpoints.delay_seconds(failpoints.PUT_DELAY) == 0.0


def test_every_failpoint_name_sits_somewhere() -> None:
    """The one list and the call sites agree: each name's constant is used outside the list."""
    root = Path(failpoints.__file__).resolve().parents[1]
    source = "\n".join(p.read_text() for p in root.rglob("*.py")
                       if p.name != "failpoints.py" and "_pb2" not in p.name)
    consts = {v: k for k, v in vars(failpoints).items() if isinstance(v, str) and k.isupper()}
    unused = [n for n in failpoints.NAMES if f".{consts[n]}" not in source]
    assert not unused
