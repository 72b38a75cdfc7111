"""Link faults of a proxied Docker cluster, applied through Toxiproxy and recorded.

`LinkFaults(cluster)` drives the proxies of `compose/docker-compose.toxiproxy.yml` (one per
directed peer link, `nodeS_to_nodeD`, and one per client port, `client_to_nodeD`; see
`harness.toxiproxy_links`) for the Jepsen-style nemeses. Every change it makes is recorded as an
`Applied` entry (proxy, action, toxic name and type, stream, attributes, direction);
`take_applied()` hands the entries made since the last call to the fault window that made them.

What one toxic touches: proxy `nodeS_to_nodeD` carries the TCP connections S opens to D. Its
`upstream` stream is what S sends on them, its `downstream` what D sends back. etcd's rafthttp
sends a message S -> D either on a connection S opened (pipeline POST: upstream of S_to_D) or on
one D opened (D's stream GET to S: downstream of D_to_S). So every byte S sends to D crosses
exactly one of those two streams, and:

- "every message S -> D" is `upstream` of `S_to_D` plus `downstream` of `D_to_S`
  (`direction_streams`); `one_way(S, D)` black-holes exactly those, so D -> S still flows;
- a toxic on both streams of every peer link delays each message once, not twice.

Contract:
- `partition(groups)` disables the proxies between members of different groups (both directed
  links of each pair: listeners close, live connections drop), as
  `harness.localnet.ProxiedLocalCluster.partition` does for local processes; `cut(pairs)`
  cuts exactly the given pairs; `latency(ms, jitter)` puts latency on every peer link
  (`latency(0, 0)` removes the latency this object added).
- `heal()` is the audited heal: it removes every toxic of every proxy on the server and enables
  every proxy, then reads the server back and raises `ClusterError` if any proxy is still
  disabled or still has a toxic; it returns the audit (`{"proxies": n, "toxics_removed": k,
  "enabled": m, "clean": True}`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.cluster import ClusterError, Member
from harness.toxiproxy_links import Link, LinkError, Stream, client_link_name, link_name

if TYPE_CHECKING:
    from harness.docker_backend import DockerCluster

BOTH: tuple[str, str] = ("upstream", "downstream")


@dataclass(frozen=True, slots=True)
class Applied:
    """One change on one proxy: `action` "toxic" (a toxic added) or "disable"."""

    proxy: str
    action: str
    direction: str
    toxic: str = ""
    type: str = ""
    stream: str = ""
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", {})}


def _name(m: Member | str) -> str:
    return m if isinstance(m, str) else m.name


def direction_streams(src: str, dst: str) -> list[tuple[str, str]]:
    """The (proxy, stream) pairs that carry every byte `src` sends to `dst` (module docstring)."""
    return [(link_name(src, dst), "upstream"), (link_name(dst, src), "downstream")]


class LinkFaults:
    """Toxiproxy faults on one proxied `DockerCluster` (see the module docstring)."""

    def __init__(self, cluster: DockerCluster) -> None:
        if cluster.links is None:
            raise ClusterError(f"{cluster.project} is not proxied: link faults need the "
                               "Toxiproxy overlay (DockerCluster(..., proxied=True))")
        self.cluster = cluster
        self.links = cluster.links
        self._applied: list[Applied] = []
        self._seq = itertools.count(1)
        self._latency: list[tuple[str, str]] = []  # (proxy, toxic) latency() added

    # ---- records -------------------------------------------------------------------------------

    def take_applied(self) -> list[dict[str, Any]]:
        """The changes made since the last call, as JSON objects (and forget them)."""
        out = [a.to_json() for a in self._applied]
        self._applied.clear()
        return out

    def _link(self, proxy: str) -> Link:
        return Link(self.links, proxy)

    def _toxic(self, proxy: str, direction: str, kind: str, stream: str,
               **attributes: int) -> str:
        s: Stream = "upstream" if stream == "upstream" else "downstream"
        base = f"{kind}-{next(self._seq)}"
        try:
            (made,) = self._link(proxy).add_toxic(kind, s, name=base, **attributes)
        except LinkError as exc:
            raise ClusterError(str(exc)) from exc
        self._applied.append(Applied(proxy, "toxic", direction, made, kind, stream,
                                     dict(attributes)))
        return made

    def _disable(self, proxy: str, direction: str) -> None:
        try:
            self._link(proxy).cut()
        except LinkError as exc:
            raise ClusterError(str(exc)) from exc
        self._applied.append(Applied(proxy, "disable", direction))

    # ---- which links ---------------------------------------------------------------------------

    def _names(self) -> list[str]:
        return [m.name for m in self.cluster.members]

    def peer_pairs(self, member: Member | str | None = None) -> list[tuple[str, str]]:
        """Every directed peer link (src, dst), or only those from and to `member`."""
        names = self._names()
        pairs = [(s, d) for s in names for d in names if s != d]
        if member is None:
            return pairs
        n = _name(member)
        return [(s, d) for s, d in pairs if n in (s, d)]

    def _on_links(self, pairs: Iterable[tuple[str, str]], kind: str,
                  **attributes: int) -> list[tuple[str, str]]:
        """A `kind` toxic on both streams of each directed link; (proxy, toxic) of each."""
        made = []
        for s, d in pairs:
            proxy = link_name(s, d)
            for stream in BOTH:
                made.append((proxy, self._toxic(proxy, f"{s}<->{d}", kind, stream,
                                                **attributes)))
        return made

    # ---- faults --------------------------------------------------------------------------------

    def latency(self, ms: float, jitter: float = 0.0) -> None:
        """`ms` ± `jitter` on every peer link; (0, 0) removes the latency added here."""
        if ms <= 0 and jitter <= 0:
            for proxy, toxic in self._latency:
                # Already gone (a heal ran): nothing to undo.
                with contextlib.suppress(Exception):
                    self._link(proxy).remove_toxic(toxic)
            self._latency.clear()
            return
        self._latency += self._on_links(self.peer_pairs(), "latency", latency=int(ms),
                                        jitter=int(jitter))

    def slow_member(self, member: Member | str, ms: float, jitter: float = 0.0) -> None:
        """`ms` ± `jitter` on every peer link from and to `member` (in and out)."""
        self._on_links(self.peer_pairs(member), "latency", latency=int(ms), jitter=int(jitter))

    def bandwidth(self, kb_per_s: int) -> None:
        """Limit every peer link to `kb_per_s` KB/s in each direction."""
        self._on_links(self.peer_pairs(), "bandwidth", rate=int(kb_per_s))

    def blackhole(self, member: Member | str) -> None:
        """Toxiproxy `timeout` 0 on every link from and to `member`: connections stay open and
        every byte is dropped (an isolation the members see only as silence)."""
        self._on_links(self.peer_pairs(member), "timeout", timeout=0)

    def reset_peer(self, member: Member | str, after_ms: int = 500) -> None:
        """Reset (TCP RST) every connection from and to `member` `after_ms` after it opens."""
        self._on_links(self.peer_pairs(member), "reset_peer", timeout=int(after_ms))

    def one_way(self, src: Member | str, dst: Member | str) -> None:
        """Drop every byte `src` sends to `dst` (timeout 0 on the streams of
        `direction_streams`); what `dst` sends to `src` still flows."""
        s, d = _name(src), _name(dst)
        for proxy, stream in direction_streams(s, d):
            self._toxic(proxy, f"{s}->{d}", "timeout", stream, timeout=0)

    def client_latency(self, ms: float, jitter: float = 0.0) -> None:
        """`ms` ± `jitter` on every client proxy (host -> member), both streams."""
        for n in self._names():
            proxy = client_link_name(n)
            for stream in BOTH:
                self._toxic(proxy, f"client<->{n}", "latency", stream, latency=int(ms),
                            jitter=int(jitter))

    def cut(self, pairs: Sequence[Sequence[str]]) -> None:
        """Disable both directed links of each member pair."""
        for a, b in pairs:
            self._disable(link_name(a, b), f"{a}->{b}")
            self._disable(link_name(b, a), f"{b}->{a}")

    def partition(self, groups: Sequence[Iterable[Member]]) -> None:
        """Cut every pair of members in different groups; members in no group form one more
        group (`partition([[m]])` isolates m), as the local link proxy's `partition`."""
        where: dict[str, int] = {}
        for i, g in enumerate(groups):
            for m in g:
                where[m.name] = i
        names = self._names()
        for n in names:
            where.setdefault(n, len(groups))
        self.cut([[a, b] for i, a in enumerate(names) for b in names[i + 1:]
                  if where[a] != where[b]])

    # ---- heal ----------------------------------------------------------------------------------

    def heal(self) -> dict[str, Any]:
        """Remove every toxic and enable every proxy, then check (see the module docstring)."""
        removed = enabled = 0
        with self.links.api() as server:
            proxies = server.proxies()
            for proxy in proxies.values():
                for toxic in list(proxy.toxics()):
                    proxy.destroy_toxic(toxic)
                    removed += 1
                if not proxy.enabled:
                    proxy.enable()
                    enabled += 1
        self._latency.clear()
        dirty: list[str] = []
        with self.links.api() as server:
            after = server.proxies()
            for name, proxy in sorted(after.items()):
                if not proxy.enabled:
                    dirty.append(f"{name} disabled")
                left = sorted(proxy.toxics())
                if left:
                    dirty.append(f"{name} toxics {left}")
        if dirty:
            raise ClusterError(f"heal left Toxiproxy unclean: {'; '.join(dirty)}")
        return {"proxies": len(after), "toxics_removed": removed, "enabled": enabled,
                "clean": True}
