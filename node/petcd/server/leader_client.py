"""gRPC channels to the current leader's client URL, for requests etcd forwards to the leader.

etcd forwards some requests from followers to the leader over its peer HTTP API (lease
renewals and TTL queries, learner promotion). petcd forwards them over the leader's client
gRPC endpoint instead; the effect is the same: the leader answers with its own state.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import grpc

from petcd import errors
from petcd.server.membership import Membership


def _target(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 2379}"


class LeaderChannels:
    """One cached insecure channel per leader; closed when the leader changes."""

    def __init__(self, membership: Membership) -> None:
        self._membership = membership
        self._leader = 0
        self._channel: grpc.aio.Channel | None = None
        self._closing: set[asyncio.Future[None]] = set()

    def channel(self, leader_id: int) -> grpc.aio.Channel:
        """A channel to `leader_id`; raises NO_LEADER when there is none or it has no URL."""
        if leader_id == 0:
            raise errors.NO_LEADER
        if leader_id != self._leader or self._channel is None:
            m = self._membership.members.get(leader_id)
            if m is None or not m.client_urls:
                raise errors.NO_LEADER
            old = self._channel
            self._channel = grpc.aio.insecure_channel(_target(m.client_urls[0]))
            self._leader = leader_id
            if old is not None:
                # Closing waits for calls still in flight on it; nobody needs to wait for that.
                task = asyncio.ensure_future(old.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
