"""Automatic compaction (--auto-compaction-mode / --auto-compaction-retention), as etcd 3.5.

Runs only while this member is the leader (paused otherwise) and compacts through Raft like a
client's Compact, so every member compacts at the same revision.

- periodic, retention P (a Go duration; a bare number means hours): every P/10 (at most 6
  minutes) it samples the store revision, keeping the samples of the last P. Once P has passed
  since the last success (afterwards, min(P, 1h)) it compacts at the oldest sample: the
  revision the store had P ago.
- revision, retention N: every 5 minutes, if the revision is now R, it compacts at R - N
  (skipping non-positive targets and a target it already compacted).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.goflag import ValueParseError, parse_duration

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

HOUR = 3600.0
RETRY_DIVISOR = 10


def parse_retention(mode: str, retention: str) -> float:
    """Seconds (periodic) or revisions (revision) to retain; 0 disables auto compaction.

    Raises ValueError with etcd's wording for a value the mode cannot use.
    """
    if mode == "revision":
        try:
            return float(int(retention))
        except ValueError:
            raise ValueError(errors.COMPACTION_RETENTION.format(retention=retention)) from None
    try:
        return float(int(retention)) * HOUR
    except ValueError:
        pass
    try:
        return parse_duration(retention)
    except ValueParseError:
        raise ValueError(errors.COMPACTION_RETENTION.format(retention=retention)) from None


class Compactor:
    """One auto-compaction loop; `run()` is the task body (see the module docstring)."""

    def __init__(
        self,
        server: EtcdServer,
        mode: str,
        retention: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.s = server
        self.mode = mode
        self.retention = retention
        self.clock = clock or asyncio.get_event_loop_policy().get_event_loop().time

    async def _compact(self, rev: int) -> bool:
        """True when the store is now compacted at `rev` or later."""
        try:
            await self.s.compact(pb.CompactionRequest(revision=rev))
        except errors.EtcdError as err:
            if err is errors.COMPACTED:
                return True
            self.s.log.warning(
                f"failed auto {self.mode} compaction", revision=rev, error=err.message
            )
            return False
        self.s.log.info(f"completed auto {self.mode} compaction", revision=rev)
        return True

    async def run(self) -> None:
        if self.mode == "revision":
            await self._run_revision()
        else:
            await self._run_periodic()

    async def _run_periodic(self) -> None:
        period = self.retention
        compact_interval = min(period, HOUR)
        retry = compact_interval / RETRY_DIVISOR
        revs: deque[int] = deque(maxlen=int(period / retry) + 1)
        last_success = self.clock()
        base = period
        while True:
            revs.append(self.s.store.rev)
            await asyncio.sleep(retry)
            if not self.s.is_leader or self.clock() - last_success < base:
                continue
            base = compact_interval
            if await self._compact(revs[0]):
                last_success = self.clock()

    async def _run_revision(self) -> None:
        prev = 0
        while True:
            # etcd: 5 minutes; PETCD_REVISION_COMPACTION_INTERVAL (config.Settings) for tests.
            await asyncio.sleep(self.s.settings.revision_compaction_interval)
            if not self.s.is_leader:
                continue
            rev = self.s.store.rev - int(self.retention)
            if rev <= 0 or rev == prev:
                continue
            if await self._compact(rev):
                prev = rev


def install(server: EtcdServer) -> None:
    """Start auto compaction when the server was configured for it."""
    mode = server.options.auto_compaction_mode
    retention = server.options.auto_compaction_retention
    value = parse_retention(mode, retention) if retention else 0.0
    if value <= 0:
        return
    compactor = Compactor(server, mode, value)
    server.add_task("auto-compaction", compactor.run)
