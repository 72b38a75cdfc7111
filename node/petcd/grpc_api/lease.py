"""gRPC Lease service (etcd's `v3rpc/lease.go`): a thin adapter over `server.leases`.

- LeaseGrant / LeaseRevoke: through Raft; errors carry etcd's strings.
- LeaseTimeToLive: a missing lease is a response with TTL -1, not an error.
- LeaseKeepAlive: one response per request, in order; the header is filled BEFORE the renew
  (so its revision is never past a revocation the renew raced with); a missing lease answers
  TTL 0; any other error ends the stream with that error.
- Calls carrying the `FORWARDED_KEY` metadata come from another member and are answered only
  by this member's lessor (see `petcd.server.lease_forward`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc
from petcd.grpc_api.services import _call
from petcd.server.etcdserver import EtcdServer
from petcd.server.lease_forward import FORWARDED_KEY
from petcd.server.lease_ops import LeaseOps


def _forwarded(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    return any(k == FORWARDED_KEY for k, _ in (context.invocation_metadata() or ()))


class LeaseService(pb_grpc.LeaseServicer):
    def __init__(self, server: EtcdServer, ops: LeaseOps) -> None:
        self.s = server
        self.ops = ops

    async def LeaseGrant(
        self, request: pb.LeaseGrantRequest, context: Any
    ) -> pb.LeaseGrantResponse:
        return await _call(context, self.ops.grant(request))

    async def LeaseRevoke(
        self, request: pb.LeaseRevokeRequest, context: Any
    ) -> pb.LeaseRevokeResponse:
        return await _call(context, self.ops.revoke(request))

    async def LeaseTimeToLive(
        self, request: pb.LeaseTimeToLiveRequest, context: Any
    ) -> pb.LeaseTimeToLiveResponse:
        return await _call(context, self.ops.time_to_live(request, _forwarded(context)))

    async def LeaseLeases(
        self, request: pb.LeaseLeasesRequest, context: Any
    ) -> pb.LeaseLeasesResponse:
        return self.ops.leases()

    async def LeaseKeepAlive(
        self, request_iterator: AsyncIterator[pb.LeaseKeepAliveRequest], context: Any
    ) -> AsyncIterator[pb.LeaseKeepAliveResponse]:
        forwarded = _forwarded(context)
        async for req in request_iterator:
            resp = self.s.header(pb.LeaseKeepAliveResponse(ID=req.ID))
            try:
                resp.TTL = await self.ops.renew(req.ID, forwarded)
            except errors.EtcdError as err:
                await context.abort(err.code, err.message)
            yield resp


def register(gs: grpc.aio.Server, server: EtcdServer) -> None:
    """Serve Lease if the lessor is installed (`server.leases`)."""
    ops = server.leases
    if ops is not None:
        pb_grpc.add_LeaseServicer_to_server(LeaseService(server, ops), gs)
