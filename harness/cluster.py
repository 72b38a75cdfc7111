"""Backend-neutral cluster interface used by the conformance suite, the CLI and the bench.

A `Cluster` is a fixed set of named members of one implementation. Backends (local processes,
containers) only implement process control; health and leadership are observed through the
client API with the real etcdctl, the same way for every backend.

Invariants:
- `members` keeps its order; member names are unique within a cluster.
- `endpoints` lists the client URLs of all members, including stopped ones.
- `wait_healthy` and `leader` never sleep blindly: they poll a condition until a deadline and
  raise `ClusterError` (with what they last saw) when it passes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from harness.etcdctl import Etcdctl, Result
from harness.impls import Impl, etcdctl_35

POLL_INTERVAL = 0.1


class ClusterError(RuntimeError):
    """The cluster did not reach the expected state, or a member process misbehaved."""


@dataclass(frozen=True, slots=True)
class Member:
    """One member's identity and URLs (stable across restarts)."""

    name: str
    client_url: str
    peer_url: str


class Cluster(ABC):
    """A set of members of one implementation, with fault handles."""

    impl: Impl
    members: list[Member]
    ctl_args: tuple[str, ...] = ()
    """etcdctl flags every harness etcdctl call carries (TLS: --cacert/--cert/--key)."""

    # ---- process control (backend-specific) -------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Start every member (as a new cluster, or resuming existing data) and return at once."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every member and release its resources; safe to call twice and after failures."""

    @abstractmethod
    def kill(self, member: Member) -> None:
        """SIGKILL the member (its whole process group); returns once it is gone."""

    @abstractmethod
    def pause(self, member: Member) -> None:
        """SIGSTOP the member; it keeps its sockets but stops responding."""

    @abstractmethod
    def resume(self, member: Member) -> None:
        """SIGCONT a paused member."""

    @abstractmethod
    def start_member(self, member: Member) -> None:
        """Start a stopped or killed member again on its existing data."""

    @abstractmethod
    def stop_member(self, member: Member) -> None:
        """Gracefully stop one member (SIGTERM, then SIGKILL after a grace period)."""

    @abstractmethod
    def is_running(self, member: Member) -> bool:
        """True if the member's process exists (paused counts as running)."""

    @abstractmethod
    def plan_member(self, name: str) -> Member:
        """Allocate URLs for a member that is not part of the cluster yet (for `member add`)."""

    @abstractmethod
    def join(self, member: Member, initial_cluster: str) -> None:
        """Start a planned member with `--initial-cluster-state existing` and the given
        `--initial-cluster` (as printed by `etcdctl member add`), and track it as a member."""

    @abstractmethod
    def forget(self, member: Member) -> None:
        """Stop a member and drop it from `members` (after `member remove`)."""

    # ---- observation (shared) ----------------------------------------------------------------

    def restart(self, member: Member) -> None:
        """Stop the member (if running) and start it again on its data."""
        if self.is_running(member):
            self.stop_member(member)
        self.start_member(member)

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name:
                return m
        raise KeyError(name)

    def ctl(self, members: Sequence[Member] | None = None, **kw: Any) -> Etcdctl:
        """An etcdctl 3.5.1 bound to `members` (default: all)."""
        ms = self.members if members is None else members
        kw.setdefault("global_args", self.ctl_args)
        return Etcdctl([m.client_url for m in ms], binary=kw.pop("binary", etcdctl_35()), **kw)

    def status(self, member: Member) -> dict[str, Any] | None:
        """`endpoint status -w json` of one member, or None if it does not answer."""
        res = self.ctl([member], command_timeout="1s", timeout=5.0)("endpoint", "status", "-w", "json")
        if res.rc != 0:
            return None
        data = res.json()
        if not data:
            return None
        st: dict[str, Any] = data[0]["Status"]
        return st

    def _check_alive(self) -> None:
        """Hook for backends: raise `ClusterError` if a member died on its own."""

    def wait_healthy(self, timeout: float = 30.0, members: Sequence[Member] | None = None) -> None:
        """Wait until every member in `members` (default: all running ones) answers
        `endpoint health` and they all agree on one leader."""
        deadline = time.monotonic() + timeout
        last: Result | str = "not polled"
        while True:
            self._check_alive()
            ms = [m for m in self.members if self.is_running(m)] if members is None else list(members)
            health = self.ctl(ms, command_timeout="2s", timeout=10.0)("endpoint", "health")
            if health.ok:
                leaders = set()
                for m in ms:
                    st = self.status(m)
                    # etcdctl's JSON leaves out a zero leader (no leader known).
                    leaders.add(None if st is None else st.get("leader", 0))
                if len(leaders) == 1 and None not in leaders and 0 not in leaders:
                    return
                last = f"leaders seen: {leaders}"
            else:
                last = health
            if time.monotonic() >= deadline:
                raise ClusterError(f"{self.impl.name} cluster not healthy after {timeout}s: {last}")
            time.sleep(POLL_INTERVAL)

    def leader(self, timeout: float = 15.0, among: Sequence[Member] | None = None) -> Member:
        """The member that the responding members agree is leader (waits for agreement)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while True:
            ms = [m for m in self.members if self.is_running(m)] if among is None else list(among)
            ids: dict[int, Member] = {}
            leaders: set[int] = set()
            for m in ms:
                st = self.status(m)
                seen[m.name] = st
                if st is None:
                    continue
                ids[int(st["header"]["member_id"])] = m
                leaders.add(int(st.get("leader", 0)))
            if len(leaders) == 1:
                (lid,) = leaders
                if lid != 0 and lid in ids:
                    return ids[lid]
            if time.monotonic() >= deadline:
                raise ClusterError(f"no agreed leader after {timeout}s: {seen}")
            time.sleep(POLL_INTERVAL)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
