"""Free loopback port allocation that does not collide across pytest-xdist workers.

Each xdist worker (`PYTEST_XDIST_WORKER=gwN`) owns its own slice of a high port range, so two
workers never hand out the same port; within a slice a port is only handed out after a probe bind
on 127.0.0.1 succeeds, so ports in use by anything else are skipped. The range 10000-32000 sits
below Linux's default ephemeral range (32768-60999), so outgoing connections do not take our ports
between the probe and the server's bind; the `make up` ports are never handed out.

A port is also *claimed* across processes before it is handed out: an exclusive-create file
`<CLAIM_DIR>/<port>` holding the owner's pid (a claim whose pid is gone is taken over). Between
handing a port out and binding it (a Docker cluster allocates all its ports, then starts its
containers) the probe cannot see another process's choice; the claim can, so parallel runs
outside pytest-xdist (`make matrix --jobs N`) never pick the same port. `release` drops it.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

RANGE_START = 10000
RANGE_END = 32000
SLICE = 2000
# Ports used by `make up` (etcd's Procfile layout); never hand these out.
RESERVED = frozenset({2379, 2380, 22379, 22380, 32379, 32380})
PID_STRIDE = 61  # see free_port
CLAIM_DIR = Path(tempfile.gettempdir()) / f"petcd-ports-{os.getuid()}"

_lock = threading.Lock()
_handed_out: set[int] = set()
_cursor: dict[int, int] = {}


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        return int(worker[2:])
    return -1  # the main process / no xdist: the slice after all worker slices


def _slice_bounds() -> tuple[int, int]:
    slots = (RANGE_END - RANGE_START) // SLICE
    idx = _worker_index()
    slot = (slots - 1) if idx < 0 else idx % (slots - 1)
    lo = RANGE_START + slot * SLICE
    return lo, lo + SLICE


def _probe(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(port: int) -> bool:
    """Claim `port` for this process across processes (see the module docstring)."""
    CLAIM_DIR.mkdir(parents=True, exist_ok=True)
    path = CLAIM_DIR / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                text = path.read_text().strip()
            except OSError:
                continue  # released meanwhile: try again
            if not text.isdigit():
                return False  # being written by its owner right now
            owner = int(text)
            if owner == os.getpid() or _pid_alive(owner):
                return False
            path.unlink(missing_ok=True)  # its owner is gone: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free at probe time and not handed out before."""
    lo, hi = _slice_bounds()
    with _lock:
        # Start at a pid-dependent offset so two unrelated runs on one machine rarely race:
        # processes spawned one after another (pids 1-32 apart, e.g. `make matrix --jobs 3`)
        # start at least 48 ports apart, room for a 5-member proxied cluster's 11 ports.
        start = _cursor.get(lo, lo + (os.getpid() * PID_STRIDE) % SLICE)
        for i in range(SLICE):
            port = lo + (start - lo + i) % SLICE
            if port in RESERVED or port in _handed_out:
                continue
            if _probe(port) and _claim(port):
                _handed_out.add(port)
                _cursor[lo] = lo + (port - lo + 1) % SLICE
                return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def release(port: int) -> None:
    """Allow `port` to be handed out again (the process that used it has exited)."""
    with _lock:
        if port in _handed_out:
            (CLAIM_DIR / str(port)).unlink(missing_ok=True)
        _handed_out.discard(port)
