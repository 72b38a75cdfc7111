"""gRPC channels to the current leader's client URL, for requests etcd forwards to the leader.

etcd forwards some requests from followers to the leader over its peer HTTP API (lease
renewals and TTL queries, learner promotion). petcd forwards them over the leader's client
gRPC endpoint instead; the effect is the same: the leader answers with its own state.

An ``https://`` leader URL is dialed over TLS by ``tls`` (:class:`petcd.tlsutil.GrpcClientTLS`,
the member's client-side TLS: ``--trusted-ca-file`` verifies the leader, ``--cert-file`` or
``--client-cert-file`` is presented). With ``--auto-tls`` the leader's certificate must be
pinned first: ``channel()`` starts that in the background and answers NO_LEADER meanwhile
(``await prepare(leader_id)`` avoids it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine
from typing import Any

import grpc

from petcd import errors
from petcd.server.membership import Membership
from petcd.tlsutil import GrpcClientTLS, NotPinnedError


class LeaderChannels:
    """One cached channel per leader; closed when the leader changes."""

    def __init__(self, membership: Membership) -> None:
        self._membership = membership
        self.tls = GrpcClientTLS()
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
            url = m.client_urls[0]
            try:
                self._channel = self.tls.channel(url)
            except NotPinnedError:
                self._spawn(self._pin(url))
                raise errors.NO_LEADER from None
            self._leader = leader_id
            if old is not None:
                # Closing waits for calls still in flight on it; nobody needs to wait for that.
                self._spawn(old.close())
        return self._channel

    async def prepare(self, leader_id: int) -> None:
        """Pin an auto-TLS leader's certificate so ``channel()`` can dial it (else no-op)."""
        m = self._membership.members.get(leader_id)
        if m is not None and m.client_urls:
            await self._pin(m.client_urls[0])

    async def _pin(self, url: str) -> None:
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, ValueError):
            await self.tls.prepare(url)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
