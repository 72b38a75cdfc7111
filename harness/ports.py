"""Free loopback port allocation that does not collide across pytest-xdist workers.

Each xdist worker (`PYTEST_XDIST_WORKER=gwN`) owns its own slice of a high port range, so two
workers never hand out the same port; within a slice a port is only handed out after a probe bind
on 127.0.0.1 succeeds, so ports in use by anything else are skipped. The range 10000-32000 sits
below Linux's default ephemeral range (32768-60999), so outgoing connections do not take our ports
between the probe and the server's bind; the `make up` ports are never handed out.
"""

from __future__ import annotations

import os
import socket
import threading

RANGE_START = 10000
RANGE_END = 32000
SLICE = 2000
# Ports used by `make up` (etcd's Procfile layout); never hand these out.
RESERVED = frozenset({2379, 2380, 22379, 22380, 32379, 32380})

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


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free at probe time and not handed out before."""
    lo, hi = _slice_bounds()
    with _lock:
        # Start at a pid-dependent offset so two unrelated runs on one machine rarely race.
        start = _cursor.get(lo, lo + (os.getpid() * 7) % SLICE)
        for i in range(SLICE):
            port = lo + (start - lo + i) % SLICE
            if port in RESERVED or port in _handed_out:
                continue
            if _probe(port):
                _handed_out.add(port)
                _cursor[lo] = lo + (port - lo + 1) % SLICE
                return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def release(port: int) -> None:
    """Allow `port` to be handed out again (the process that used it has exited)."""
    with _lock:
        _handed_out.discard(port)
