"""One way to start a composed cell's run on Docker, shared by the tests of tests/composed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jepsen_style.runner import RunOptions, RunResult, run

TARGETS = ("petcd", "etcd-3.5", "etcd-3.4")
# Where a combination cannot boot, why (one line; the cell skips with it).
CANNOT_BOOT = {("dns", "etcd-3.4"): "etcd 3.4.23 ignores http _etcd-server SRV records "
                                   "(fixed in 3.5; compose/docker-compose.dns.yml)"}


def composed_run(tmp_path: Path, bootstrap: str, target: str, **kw: Any) -> RunResult:
    """A 26 s Jepsen-style run on the Docker backend (10 client slots, short fault windows),
    the images built first; skips a cell in CANNOT_BOOT. ``kw``: further RunOptions."""
    if (bootstrap, target) in CANNOT_BOOT:
        pytest.skip(CANNOT_BOOT[(bootstrap, target)])
    from harness.docker_backend import ensure_image

    for image in (target, "toxiproxy", *(["dnsmasq"] if bootstrap == "dns" else [])):
        ensure_image(image)
    opts = RunOptions(target=target, backend="docker", bootstrap=bootstrap, time_limit=26.0,
                      quiet_start=5.0, fault_seconds=5.0, quiet_seconds=4.0, final_quiet=4.0,
                      concurrency=10, results_dir=tmp_path, progress=False, **kw)
    return run(opts)
