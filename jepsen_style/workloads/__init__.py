"""Workloads: what the client processes do during a run, and how the result is checked.

A :class:`Workload` turns a slot's turn into one :class:`Op` (``next_op``), executes it through
an :class:`~jepsen_style.client.EtcdClient` (``apply``), decides how an error completes
(``on_error``: ``fail`` only when the operation certainly did not take effect, else ``info``)
and checks the recorded history afterwards (``check``). ``next_op`` is synchronous and draws
only from the slot's seeded rng; ``apply`` must finish within the client's deadline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value


@dataclass(frozen=True, slots=True)
class Op:
    f: str
    key: str | None
    value: Value


@dataclass(frozen=True, slots=True)
class Context:
    """What a slot may know when choosing an operation."""

    member: str
    isolated: frozenset[str] = frozenset()
    key_index: int = 0


@dataclass
class WorkloadOptions:
    prefix: str = "/jepsen"
    serializable_reads: bool = False
    isolated_reads: bool = False
    check_timeout: float = 120.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    """``valid``: True, False (violation) or None (unknown); ``details`` go to verdict.json."""

    valid: bool | None
    details: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


class Workload(ABC):
    name: str = ""
    op_deadline: float = 0.0
    """Seconds an operation may legitimately take when longer than ``--request-timeout`` (the
    lock workload's critical section outlasts a pause); the runner's outer bound follows it."""

    def __init__(self, opts: WorkloadOptions) -> None:
        self.opts = opts

    async def setup(self, clients: list[EtcdClient]) -> None:
        """Runs once before the generator starts (one client per member)."""

    async def teardown(self, clients: list[EtcdClient]) -> None:
        """Runs once after the last operation completed and the cluster was healed."""

    def nemesis_targets(self) -> list[str]:
        """Members a targeted nemesis should hit now (the ``pause-holder`` nemesis asks)."""
        return []

    @abstractmethod
    def next_op(self, slot: Slot, ctx: Context) -> Op | None: ...

    @abstractmethod
    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]: ...

    def on_error(self, op: Op, err: ClientError) -> str:
        return "fail" if err.definite else "info"

    @abstractmethod
    def check(self, events: list[Event], run_dir: Path) -> Verdict: ...


def get_workload(name: str, opts: WorkloadOptions) -> Workload:
    """A workload by name; ValueError lists the known ones."""
    if name == "register":
        from jepsen_style.workloads.register import RegisterWorkload

        return RegisterWorkload(opts)
    if name == "watch":
        from jepsen_style.workloads.watch import WatchWorkload

        return WatchWorkload(opts)
    if name == "set":
        from jepsen_style.workloads.set import SetWorkload

        return SetWorkload(opts)
    if name == "append":
        from jepsen_style.workloads.append import AppendWorkload

        return AppendWorkload(opts)
    if name == "lease":
        from jepsen_style.workloads.lease import LeaseWorkload

        return LeaseWorkload(opts)
    if name == "lock":
        from jepsen_style.workloads.lock import LockWorkload

        return LockWorkload(opts)
    raise ValueError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")


WORKLOADS = ("register", "watch", "set", "append", "lease", "lock")
