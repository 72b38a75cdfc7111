"""Lease and lock RPCs the lease and lock workloads share, on an :class:`EtcdClient`'s channel.

* :func:`keepalive_once` renews a lease with one request on a fresh ``LeaseKeepAlive`` stream
  (etcd renews, answers, then sees the half-close) and returns the TTL etcd answered: 0 means
  the lease was not found (expired or revoked);
* :class:`KeepAlive` renews a lease every ``ttl / 3`` seconds in a background task until
  :meth:`KeepAlive.stop`; each renewal is bounded by its own deadline and failures are counted,
  never raised (the holder is not told: that is the point of the lock workload);
* :func:`lock` / :func:`unlock` are ``v3lockpb.Lock``'s Lock and Unlock with an explicit deadline.

Errors surface as :class:`~jepsen_style.client.ClientError` (``definite`` as in the client).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import grpc.aio
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.v3lockpb import v3lock_pb2 as lpb
from petcd.api.v3lockpb import v3lock_pb2_grpc as lpb_grpc

from jepsen_style.client import ClientError, EtcdClient


async def _rpc(client: EtcdClient, method: Any, request: Any, timeout: float) -> Any:
    # EtcdClient._call maps grpc errors to ClientError with etcd's definite/unknown split.
    return await client._call(method, request, timeout)


async def keepalive_once(client: EtcdClient, lease_id: int, timeout: float) -> int:
    """Renew ``lease_id`` once; the TTL answered (0: lease not found)."""
    call = client.lease_stub.LeaseKeepAlive(iter([pb.LeaseKeepAliveRequest(ID=lease_id)]),
                                            timeout=timeout)
    try:
        async for resp in call:
            return int(resp.TTL)
    except grpc.aio.AioRpcError as exc:
        raise ClientError(exc.code().name, exc.details() or "", False) from None
    finally:
        call.cancel()
    raise ClientError("UNAVAILABLE", "keep-alive stream closed without an answer", False)


async def lock(client: EtcdClient, name: bytes, lease_id: int, timeout: float) -> bytes:
    """Lock ``name`` under ``lease_id`` (waits for the lock); returns the owner key."""
    stub = lpb_grpc.LockStub(client.channel)  # type: ignore[no-untyped-call]
    resp = await _rpc(client, stub.Lock, lpb.LockRequest(name=name, lease=lease_id), timeout)
    return bytes(resp.key)


async def unlock(client: EtcdClient, key: bytes, timeout: float) -> None:
    stub = lpb_grpc.LockStub(client.channel)  # type: ignore[no-untyped-call]
    await _rpc(client, stub.Unlock, lpb.UnlockRequest(key=key), timeout)


async def get(client: EtcdClient, key: bytes, timeout: float) -> pb.RangeResponse:
    """A linearizable Range of one key with an explicit deadline."""
    resp: pb.RangeResponse = await _rpc(client, client.kv.Range, pb.RangeRequest(key=key),
                                        timeout)
    return resp


async def put(client: EtcdClient, key: bytes, value: bytes, timeout: float,
              lease_id: int = 0) -> int:
    resp = await _rpc(client, client.kv.Put, pb.PutRequest(key=key, value=value, lease=lease_id),
                      timeout)
    return int(resp.header.revision)


class KeepAlive:
    """Background renewal of one lease (see the module docstring)."""

    def __init__(self, client: EtcdClient, lease_id: int, ttl: int) -> None:
        self.client = client
        self.lease_id = lease_id
        self.interval = max(0.2, ttl / 3)
        self.renewed = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                ttl = await keepalive_once(self.client, self.lease_id, self.interval)
            except ClientError:
                self.failed += 1
            except grpc.aio.UsageError:
                return  # the slot closed the channel (its process was retired): session over
            else:
                if ttl <= 0:
                    self.failed += 1
                    return  # gone for good: nothing left to renew
                self.renewed += 1
            await asyncio.sleep(self.interval)

    def cancel(self) -> None:
        """Stop renewing without waiting for the task to finish."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
