"""Polling with a bounded deadline: how tests wait for a condition (never a fixed sleep).

Every helper checks its condition first and then after each interval until `timeout` seconds
have passed, and fails with AssertionError("timed out after Ns waiting for <what>") so a failure
names what never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.1
"""Default pause between polls (sync): short next to any timeout, long enough that a predicate
which runs etcdctl does not flood a loaded machine with processes."""

ASYNC_INTERVAL = 0.01
"""Default pause between polls in an event loop: predicates there only read memory."""


def _timed_out(timeout: float, what: str) -> AssertionError:
    return AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def wait_until(
    predicate: Callable[[], object], timeout: float, what: str, *, interval: float = INTERVAL
) -> None:
    """Return once `predicate()` is truthy; raise AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)


def wait_for(
    fn: Callable[[], T | None], timeout: float, what: str, *, interval: float = INTERVAL
) -> T:
    """Return the first result of `fn()` that is not None; raise AssertionError after `timeout`
    seconds of Nones."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got is not None:
            return got
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what)
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], object], timeout: float, what: str, *,
    interval: float = ASYNC_INTERVAL, on_miss: Callable[[], object] | None = None,
) -> None:
    """`wait_until` inside a running event loop: yields to it between polls (so the tasks that
    make `predicate` true can run) and measures the deadline on the loop's clock. `on_miss`, if
    given, runs after every poll that found `predicate` false (e.g. send again over a link that
    may need a redial before anything arrives)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise _timed_out(timeout, what)
        if on_miss is not None:
            on_miss()
        await asyncio.sleep(interval)
