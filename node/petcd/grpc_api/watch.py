"""gRPC adapter for etcdserverpb.Watch/Watch (etcd's `api/v3rpc/watch.go`).

One bidirectional stream = one `WatchStream` of the member's `WatchHub`. A receive task turns
requests into stream calls (create / cancel / progress); the handler coroutine sends what the
stream queues, converting each `WatchResponse` to the wire message (header via
`server.header`), fragmenting it if the watcher asked for `fragment` and it is larger than
the request limit, and runs the stream's progress-notify ticker.

As in etcd: a client that half-closes its side keeps receiving; a receive error ends the RPC;
unknown request kinds are ignored.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc

from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc
from petcd.api.mvccpb import kv_pb2 as mvccpb
from petcd.mvcc.kv import Event
from petcd.server.applier import to_pb_kv
from petcd.server.etcdserver import EtcdServer
from petcd.server.watch_hub import WatchStream, hub_of
from petcd.server.watcher import WatchResponse, WatchSpec
from petcd.storage import failpoints

FRAGMENT_OVERHEAD_BYTES = 512 * 1024
"""etcd fragments above --max-request-bytes plus its gRPC overhead allowance (512 KiB)."""

_NOPUT = pb.WatchCreateRequest.NOPUT
_NODELETE = pb.WatchCreateRequest.NODELETE


def spec_from_pb(r: pb.WatchCreateRequest) -> WatchSpec:
    return WatchSpec(
        key=r.key,
        range_end=r.range_end,
        start_revision=r.start_revision,
        watch_id=r.watch_id,
        prev_kv=r.prev_kv,
        progress_notify=r.progress_notify,
        fragment=r.fragment,
        no_put=_NOPUT in r.filters,
        no_delete=_NODELETE in r.filters,
    )


def event_pb(e: Event) -> mvccpb.Event:
    if e.prev_kv is None:
        return mvccpb.Event(type=int(e.type), kv=to_pb_kv(e.kv))  # type: ignore[arg-type]
    return mvccpb.Event(
        type=int(e.type),  # type: ignore[arg-type]
        kv=to_pb_kv(e.kv),
        prev_kv=to_pb_kv(e.prev_kv),
    )


def _varint_len(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def fragments(msg: pb.WatchResponse, max_bytes: int) -> list[pb.WatchResponse]:
    """etcd's sendFragments: `msg` whole if it is under `max_bytes` or has < 2 events, else
    consecutive pieces each under `max_bytes` (at least one event each), `fragment` set on all
    but the last."""
    if len(msg.events) < 2 or msg.ByteSize() < max_bytes:
        return [msg]
    base = pb.WatchResponse()
    base.CopyFrom(msg)
    del base.events[:]
    base.fragment = True
    base_size = base.ByteSize()
    out: list[pb.WatchResponse] = []
    events = list(msg.events)
    i = 0
    while i < len(events):
        cur = pb.WatchResponse()
        cur.CopyFrom(base)
        size = base_size
        n = 0
        while i < len(events):
            es = events[i].ByteSize()
            es += 1 + _varint_len(es)
            if n >= 1 and size + es >= max_bytes:
                break
            cur.events.append(events[i])
            size += es
            n += 1
            i += 1
        if i == len(events):
            cur.fragment = False
        out.append(cur)
    return out


class WatchService(pb_grpc.WatchServicer):
    def __init__(self, server: EtcdServer) -> None:
        self.s = server
        self.hub = hub_of(server)
        self.max_bytes = server.max_request_bytes + FRAGMENT_OVERHEAD_BYTES

    async def Watch(self, request_iterator: AsyncIterator[pb.WatchRequest], context: Any) -> None:
        stream = self.hub.new_stream()
        recv = asyncio.create_task(self._recv(stream, request_iterator), name="watch-recv")
        try:
            await self._send_loop(stream, context)
        finally:
            stream.close()
            recv.cancel()

    async def _recv(self, stream: WatchStream, requests: AsyncIterator[pb.WatchRequest]) -> None:
        try:
            async for req in requests:
                await stream.wait_room()
                kind = req.WhichOneof("request_union")
                if kind == "create_request":
                    stream.create(spec_from_pb(req.create_request))
                elif kind == "cancel_request":
                    stream.cancel(req.cancel_request.watch_id)
                elif kind == "progress_request":
                    stream.request_progress()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken receive side ends the RPC, as in etcd
            stream.close()

    def _interval(self) -> float:
        base = self.hub.progress_interval
        return base + random.uniform(0, base / 10)

    async def _send_loop(self, stream: WatchStream, context: Any) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self._interval()
        while True:
            resp = await stream.get(max(next_tick - loop.time(), 0.0))
            if resp is not None:
                if d := failpoints.check(failpoints.BEFORE_SEND_WATCH_RESPONSE):
                    await asyncio.sleep(d)  # this stream only, as etcd's sendLoop goroutine
                for msg in self._to_pb(resp):
                    await context.write(msg)
            elif stream.closed:
                return
            if loop.time() >= next_tick:
                stream.progress_tick()
                next_tick = loop.time() + self._interval()

    def _to_pb(self, r: WatchResponse) -> list[pb.WatchResponse]:
        msg = pb.WatchResponse(
            watch_id=r.watch_id,
            created=r.created,
            canceled=r.canceled,
            compact_revision=r.compact_revision,
            cancel_reason=r.cancel_reason,
        )
        self.s.header(msg, r.revision)
        if r.events:
            msg.events.extend([event_pb(e) for e in r.events])
            if r.fragment_ok:
                return fragments(msg, self.max_bytes)
        return [msg]


def register(gs: grpc.aio.Server, server: EtcdServer) -> None:
    pb_grpc.add_WatchServicer_to_server(WatchService(server), gs)
