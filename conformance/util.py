"""Helpers shared by conformance tests: error extraction and output normalisation."""

from __future__ import annotations

import re
from typing import Any

from harness.etcdctl import Result
from tests.support.encoding import unb64

_HEX_ID = re.compile(r"\b[0-9a-f]{12,16}\b")
_TOOK = re.compile(r"took = [0-9.]+[a-zµ]+")


def error_line(res: Result) -> str:
    """The `Error: ...` line etcdctl printed (last one), or '' if none."""
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")]
    return lines[-1] if lines else ""


def kv_pairs(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, value) pairs of a `get -w json` document, decoded."""
    return [(unb64(kv["key"]), unb64(kv.get("value", ""))) for kv in doc.get("kvs", [])]


def normalize(text: str) -> str:
    """Strip what legitimately differs between clusters: member IDs and timings."""
    return _TOOK.sub("took = T", _HEX_ID.sub("<ID>", text))


def revision(res: Result) -> int:
    """header.revision of a `-w json` result."""
    rev: int = res.check().json()["header"]["revision"]
    return rev
