"""Asking the leader about a lease: renewals and TimeToLive of a follower go to the leader,
which alone knows when a lease expires.

etcd forwards these over its peer HTTP API (`leasehttp`); petcd forwards over the leader's
client gRPC API (its advertised client URL from the membership), marking the call with the
`FORWARDED_KEY` metadata. A member answers a marked call only from its own lessor — never
forwarding it again — and refuses with "etcdserver: not leader" when it is not the leader,
so a forwarder whose idea of the leader is stale retries instead of looping.

Contract: `renew` and `time_to_live` make ONE attempt at the member given and raise
`ForwardError` for anything retryable (connection trouble, not leader, timeout); the caller
owns the retry loop and its deadline. Channels are cached per URL and closed by `close()`.
An `https://` URL is dialed over TLS by `tls` (`petcd.tlsutil.GrpcClientTLS`: the member's
client-side TLS, pinning an auto-TLS leader's certificate on first use).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import grpc

from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc
from petcd.tlsutil import GrpcClientTLS

FORWARDED_KEY = "petcd-lease-forwarded"
"""gRPC metadata key marking a lease call one member forwarded to the leader."""

_METADATA = ((FORWARDED_KEY, "1"),)


class ForwardError(Exception):
    """The attempt failed in a way worth retrying (possibly at another leader)."""


def grpc_target(url: str) -> str:
    """`http(s)://host:port` -> `host:port` (unix endpoints are not supported)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port or 2379}"


class LeaderForwarder:
    """gRPC client of other members' Lease services, one channel per client URL."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.tls = GrpcClientTLS()

    async def _stub(self, url: str) -> pb_grpc.LeaseStub:
        ch = self._channels.get(url)
        if ch is None:
            try:
                await self.tls.prepare(url)
            except (OSError, TimeoutError, ssl.SSLError, ValueError) as err:
                raise ForwardError(f"pinning the certificate of {url}: {err}") from None
            ch = self.tls.channel(url)
            self._channels[url] = ch
        return pb_grpc.LeaseStub(ch)  # type: ignore[no-untyped-call]

    async def renew(self, url: str, lease_id: int, timeout: float) -> int:
        """The TTL the leader at `url` renewed `lease_id` to; 0 if it has no such lease."""
        call = (await self._stub(url)).LeaseKeepAlive(metadata=_METADATA, timeout=timeout)
        try:
            await call.write(pb.LeaseKeepAliveRequest(ID=lease_id))
            resp = await call.read()
            if resp is grpc.aio.EOF:
                raise ForwardError("leader closed the keepalive stream")
            ttl: int = resp.TTL
            return ttl
        except grpc.aio.AioRpcError as err:
            raise ForwardError(f"{err.code().name}: {err.details()}") from None
        finally:
            call.cancel()

    async def time_to_live(
        self, url: str, r: pb.LeaseTimeToLiveRequest, timeout: float
    ) -> pb.LeaseTimeToLiveResponse:
        """The leader's answer (TTL -1 if it has no such lease)."""
        try:
            stub = await self._stub(url)
            resp: pb.LeaseTimeToLiveResponse = await stub.LeaseTimeToLive(
                r, metadata=_METADATA, timeout=timeout
            )
        except grpc.aio.AioRpcError as err:
            raise ForwardError(f"{err.code().name}: {err.details()}") from None
        return resp

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        for ch in channels.values():
            await ch.close()
