"""A local-process cluster whose peer links can be cut and slowed (see :mod:`.linkproxy`).

:class:`ProxiedLocalCluster` is :class:`harness.local.LocalCluster` with one change to the command
line: a member still *advertises* ``Member.peer_url`` (its identity, the same for every member),
but *listens* on a private port behind the link proxy, which owns the advertised port. Client
URLs are untouched: clients reach every member directly, also during a partition (Jepsen's
model: the nemesis cuts links between members, not between clients and members).

Contract: ``start()`` starts the proxy before any member and ``stop()`` stops it after all
members; ``learn_ids()`` must run once the cluster is healthy (it maps member ids, which only
the running cluster knows, to names) before ``partition()`` can cut identified links.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness import ports
from harness.cluster import ClusterError, Member
from harness.impls import Impl
from harness.local import LocalCluster

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTROL_TIMEOUT = 10.0


class LinkProxyProcess:
    """The ``python -m harness.linkproxy`` child and its line protocol (thread-safe)."""

    def __init__(self, log_path: Path) -> None:
        self._log = open(log_path, "ab")  # noqa: SIM115 -- lives as long as the child
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.linkproxy"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            cwd=REPO_ROOT, start_new_session=True,
        )
        self._lock = threading.Lock()

    def call(self, **msg: Any) -> dict[str, Any]:
        """Send one command and return its reply; raise ClusterError on failure."""
        with self._lock:
            if self._proc.poll() is not None or self._proc.stdin is None or self._proc.stdout is None:
                raise ClusterError(f"link proxy exited (rc={self._proc.returncode})")
            self._proc.stdin.write((json.dumps(msg) + "\n").encode())
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise ClusterError("link proxy closed its control pipe")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise ClusterError(f"link proxy refused {msg}: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=CONTROL_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=CONTROL_TIMEOUT)
        self._log.close()


class ProxiedLocalCluster(LocalCluster):
    """LocalCluster with a link proxy in front of every member's peer port."""

    def __init__(self, impl: Impl | str, **kw: Any) -> None:
        super().__init__(impl, **kw)
        self.listen_peer: dict[str, int] = {}
        for m in self.members:
            p = ports.free_port()
            self._ports.append(p)
            self.listen_peer[m.name] = p
        self.proxy: LinkProxyProcess | None = None

    def command(self, member: Member, once_args: tuple[str, ...] = ()) -> list[str]:
        cmd = super().command(member, once_args)
        port = self.listen_peer.get(member.name)
        if port is None:  # a member this class did not plan (joined later): unproxied
            return cmd
        return [f"--listen-peer-urls=http://127.0.0.1:{port}"
                if a.startswith("--listen-peer-urls=") else a for a in cmd]

    def start(self) -> None:
        if self.proxy is None:
            self.proxy = LinkProxyProcess(self.root / "linkproxy.log")
            for m in self.members:
                adv = urlsplit(m.peer_url).port
                self.proxy.call(op="listen", name=m.name, port=adv,
                                upstream=self.listen_peer[m.name])
        super().start()

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.proxy is not None:
                self.proxy.close()
                self.proxy = None

    def _proxy(self) -> LinkProxyProcess:
        if self.proxy is None:
            raise ClusterError("link proxy not started")
        return self.proxy

    def learn_ids(self) -> dict[str, str]:
        """Map member ids (hex) to names from ``member list``; tell the proxy. Returns the map."""
        res = self.ctl(command_timeout="3s", timeout=10.0)("member", "list", "-w", "json")
        if res.rc != 0:
            raise ClusterError(f"member list failed: {res}")
        ids: dict[str, str] = {}
        for m in res.json().get("members", []):
            peer_urls = m.get("peerURLs") or []
            for mine in self.members:
                if mine.peer_url in peer_urls:
                    ids[format(int(m["ID"]), "x")] = mine.name
        if len(ids) != len(self.members):
            raise ClusterError(f"could not map every member id to a name: {ids}")
        self._proxy().call(op="ids", ids=ids)
        return ids

    def partition(self, groups: Sequence[Iterable[Member]]) -> None:
        """Cut every pair of members that are in different groups; the members named in no
        group form one more group together (``partition([[m]])`` isolates ``m``)."""
        where: dict[str, int] = {}
        for i, g in enumerate(groups):
            for m in g:
                where[m.name] = i
        for m in self.members:
            where.setdefault(m.name, len(groups))
        names = [m.name for m in self.members]
        pairs = [[a, b] for i, a in enumerate(names) for b in names[i + 1:]
                 if where[a] != where[b]]
        self._proxy().call(op="cut", pairs=pairs)

    def cut(self, pairs: Sequence[Sequence[str]]) -> None:
        """Cut exactly these member pairs (by name), e.g. a bridge; replaces any current cut."""
        self._proxy().call(op="cut", pairs=[list(p) for p in pairs])

    def latency(self, ms: float, jitter: float = 0.0) -> None:
        self._proxy().call(op="latency", ms=ms, jitter=jitter)

    def heal(self) -> None:
        self._proxy().call(op="heal")

    def proxy_stats(self) -> dict[str, Any]:
        return self._proxy().call(op="stats")
