"""Leases through etcdctl 3.5: grant one, and parse `lease timetolive` output."""

from __future__ import annotations

import re

from harness.etcdctl import Etcdctl

GRANTED = re.compile(r"^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)$")
"""`etcdctl lease grant`: (hex ID, granted TTL)."""

TIME_TO_LIVE = re.compile(
    r"^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\), remaining\((\d+)s\)"
    r"(?:, attached keys\(\[(.*)\]\))?$"
)
"""`etcdctl lease timetolive [--keys]`: (hex ID, granted TTL, remaining TTL, attached keys)."""


def grant(ctl: Etcdctl, ttl: int, *, expect_ttl: int | None = None) -> str:
    """Grant a lease of `ttl` seconds; return its ID in hex as etcdctl prints it (what
    `--lease=` and `lease revoke` take). With `expect_ttl`, assert the TTL the server granted."""
    out = ctl("lease", "grant", str(ttl)).check().stdout.rstrip("\n")
    m = GRANTED.match(out)
    if m is None:
        raise AssertionError(f"unexpected `lease grant` output: {out!r}")
    if expect_ttl is not None and int(m.group(2)) != expect_ttl:
        raise AssertionError(f"granted TTL {m.group(2)}s, want {expect_ttl}s: {out!r}")
    return m.group(1)


def grant_id(ctl: Etcdctl, ttl: int) -> int:
    """`grant`, the ID as a number (what the lock and election APIs take)."""
    return int(grant(ctl, ttl), 16)
