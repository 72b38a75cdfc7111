"""Compaction and the revision range errors."""

from __future__ import annotations

from conformance.util import error_line, revision
from harness.etcdctl import Etcdctl

COMPACTED = "Error: etcdserver: mvcc: required revision has been compacted"
FUTURE = "Error: etcdserver: mvcc: required revision is a future revision"


def test_compaction_and_revision_errors(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    k = prefix + "k"
    r1 = revision(etcdctl("put", k, "v1", "-w", "json"))
    r2 = revision(etcdctl("put", k, "v2", "-w", "json"))
    r3 = revision(etcdctl("put", k, "v3", "-w", "json"))
    assert etcdctl("get", k, f"--rev={r1}", "--print-value-only").check().stdout == "v1\n"

    assert etcdctl("compaction", str(r2)).check().stdout == f"compacted revision {r2}\n"
    old = etcdctl("get", k, f"--rev={r1}")
    assert old.rc != 0 and error_line(old) == COMPACTED
    # The compaction revision itself stays readable.
    assert etcdctl("get", k, f"--rev={r2}", "--print-value-only").check().stdout == "v2\n"
    assert etcdctl("get", k, f"--rev={r3}", "--print-value-only").check().stdout == "v3\n"

    future = etcdctl("get", k, f"--rev={r3 + 1000}")
    assert future.rc != 0 and error_line(future) == FUTURE

    again = etcdctl("compaction", str(r1))
    assert again.rc != 0 and error_line(again) == COMPACTED
    ahead = etcdctl("compaction", str(r3 + 1000))
    assert ahead.rc != 0 and error_line(ahead) == FUTURE


def test_compaction_physical(target: str, etcdctl: Etcdctl, prefix: str) -> None:
    r1 = revision(etcdctl("put", prefix + "k", "v", "-w", "json"))
    res = etcdctl("compaction", str(r1), "--physical").check()
    assert res.stdout == f"compacted revision {r1}\n"
    assert etcdctl("get", prefix + "k", "--print-value-only").check().stdout == "v\n"
