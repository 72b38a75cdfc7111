"""gRPC v3electionpb.Election service (etcd's `v3election/election.go`): a thin adapter
over `petcd.server.concurrency`.

Errors reach the client as status UNKNOWN with etcd's message (see `lock.call`); Proclaim and
Resign without a `leader` field fail with '"leader" field must be provided'. Observe streams
the leader and its changes until the client goes away, or ends normally when the underlying
watch ends (as etcd's). Every RPC checks the requests it makes as the caller's
(`lock.guard_as_caller`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from petcd import errors
from petcd.api.v3electionpb import v3election_pb2 as epb
from petcd.api.v3electionpb import v3election_pb2_grpc as epb_grpc
from petcd.grpc_api.lock import call, guard_as_caller
from petcd.server.concurrency import Concurrency, LeaderKey
from petcd.server.etcdserver import EtcdServer


def _claim(lk: epb.LeaderKey) -> LeaderKey:
    return LeaderKey(name=lk.name, key=lk.key, rev=lk.rev, lease=lk.lease)


class ElectionService(epb_grpc.ElectionServicer):
    def __init__(self, conc: Concurrency) -> None:
        self.c = conc

    async def Campaign(self, request: epb.CampaignRequest, context: Any) -> epb.CampaignResponse:
        guard_as_caller(self.c, context)
        hdr, claim = await call(
            context, self.c.campaign(request.name, request.lease, request.value)
        )
        leader = epb.LeaderKey(name=claim.name, key=claim.key, rev=claim.rev, lease=claim.lease)
        return epb.CampaignResponse(header=hdr, leader=leader)

    async def Proclaim(self, request: epb.ProclaimRequest, context: Any) -> epb.ProclaimResponse:
        guard_as_caller(self.c, context)
        if not request.HasField("leader"):
            await context.abort(grpc.StatusCode.UNKNOWN, errors.MISSING_LEADER_KEY.message)
        hdr = await call(context, self.c.proclaim(_claim(request.leader), request.value))
        return epb.ProclaimResponse(header=hdr)

    async def Resign(self, request: epb.ResignRequest, context: Any) -> epb.ResignResponse:
        guard_as_caller(self.c, context)
        if not request.HasField("leader"):
            await context.abort(grpc.StatusCode.UNKNOWN, errors.MISSING_LEADER_KEY.message)
        hdr = await call(context, self.c.resign(_claim(request.leader)))
        return epb.ResignResponse(header=hdr)

    async def Leader(self, request: epb.LeaderRequest, context: Any) -> epb.LeaderResponse:
        guard_as_caller(self.c, context)
        hdr, kv = await call(context, self.c.leader(request.name))
        return epb.LeaderResponse(header=hdr, kv=kv)

    async def Observe(
        self, request: epb.LeaderRequest, context: Any
    ) -> AsyncIterator[epb.LeaderResponse]:
        guard_as_caller(self.c, context)
        async with contextlib.aclosing(self.c.observe(request.name)) as changes:
            async for hdr, kv in changes:
                yield epb.LeaderResponse(header=hdr, kv=kv)


def register(gs: grpc.aio.Server, server: EtcdServer) -> None:
    epb_grpc.add_ElectionServicer_to_server(ElectionService(Concurrency(server)), gs)
