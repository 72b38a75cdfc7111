"""The lease workload: grant, attach keys, keep alive, read, revoke or abandon.

Each slot runs leases one after another (``LEASE_TTL`` seconds each). For one lease:

* ``grant`` -- LeaseGrant; ok value ``[id, ttl]`` (etcd may raise the TTL to its minimum);
* ``put``   -- one or two keys ``l<slot>-<n>`` with the lease (value: the lease id); a definite
  rejection (lease not found) is ``fail``, other errors ``info``;
* then ``OPS_PER_LEASE`` operations drawn from: ``renew`` (one LeaseKeepAlive request; ok value
  ``[id, ttl]``, ttl 0 when etcd answers "not found"), ``read`` of one of this lease's keys or of
  one of the slot's recent keys of earlier leases (ok value: the key's lease id, or null);
* finally ``revoke`` (half the leases) or nothing: the lease is *abandoned* and must expire.

Renewals are operations of the slot itself, so a renewal's acknowledgement in the history is
exactly what the checker (:mod:`jepsen_style.checker.lease`) may rely on. ``teardown`` waits until
every lease must have expired (TTL plus election slack, polling), then records the keys still
present: all of them are violations (``never-expired``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petcd.api.etcdserverpb import rpc_pb2 as pb

from jepsen_style.checker.lease import check
from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value
from jepsen_style.workloads import Context, Op, Verdict, Workload, WorkloadOptions
from jepsen_style.workloads.leasing import keepalive_once, put

LEASE_TTL = 3
OPS_PER_LEASE = (10, 60)
RECENT_KEYS = 6
FINAL_SLACK = 12.0
FINAL_POLL = 0.5
CLOCK_SLACK = 0.25
ERROR_PAUSE = 0.1


@dataclass
class _SlotState:
    lease: int = 0
    keys: list[str] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)
    to_put: int = 0
    left: int = 0
    end: str = ""
    counter: int = 0


class LeaseWorkload(Workload):
    name = "lease"

    def __init__(self, opts: WorkloadOptions) -> None:
        super().__init__(opts)
        self.state: dict[int, _SlotState] = {}
        self.final: set[str] | None = None

    def _prefix(self) -> bytes:
        return f"{self.opts.prefix}/l/".encode()

    def next_op(self, slot: Slot, ctx: Context) -> Op | None:
        st = self.state.setdefault(slot.index, _SlotState())
        rng = slot.rng
        if st.lease == 0:
            return Op("grant", None, LEASE_TTL)
        if st.to_put > 0:
            st.counter += 1
            return Op("put", f"l{slot.index}-{st.counter}", st.lease)
        if st.left > 0:
            st.left -= 1
            roll = rng.random()
            if roll < 0.35:
                return Op("renew", None, st.lease)
            pool = st.keys if roll < 0.75 or not st.recent else st.recent
            if pool:
                return Op("read", rng.choice(pool), None)
            return Op("renew", None, st.lease)
        lease, st.lease = st.lease, 0
        st.recent = (st.recent + st.keys)[-RECENT_KEYS:]
        st.keys = []
        if st.end == "revoke":
            return Op("revoke", None, lease)
        return Op("grant", None, LEASE_TTL)  # abandoned: the next lease starts at once

    def _begin(self, st: _SlotState, slot: Slot, lease: int) -> None:
        st.lease = lease
        st.to_put = slot.rng.randint(1, 2)
        st.left = slot.rng.randint(*OPS_PER_LEASE)
        st.end = "revoke" if slot.rng.random() < 0.5 else "abandon"

    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]:
        st = self.state[slot.index]
        if op.f == "grant":
            resp = await client._call(client.lease_stub.LeaseGrant,
                                      pb.LeaseGrantRequest(TTL=LEASE_TTL))
            self._begin(st, slot, int(resp.ID))
            return "ok", (int(resp.ID), int(resp.TTL))
        if op.f == "put":
            assert op.key is not None and isinstance(op.value, int)
            st.to_put -= 1
            await put(client, self._prefix() + op.key.encode(), str(op.value).encode(),
                      client.timeout, op.value)
            st.keys.append(op.key)
            return "ok", op.value
        if op.f == "renew":
            assert isinstance(op.value, int)
            ttl = await keepalive_once(client, op.value, client.timeout)
            return "ok", (op.value, ttl)
        if op.f == "read":
            assert op.key is not None
            try:
                kv, _ = await client.get(self._prefix() + op.key.encode())
            except ClientError:
                await asyncio.sleep(ERROR_PAUSE)  # a dead member refuses at once: do not spin
                raise
            return "ok", None if kv is None else int(kv.lease)
        if op.f == "revoke":
            assert isinstance(op.value, int)
            await client.lease_revoke(op.value)
            return "ok", op.value
        raise ValueError(f"lease has no operation {op.f!r}")

    def on_error(self, op: Op, err: ClientError) -> str:
        if op.f == "read":
            return "fail"
        if op.f == "grant":
            return "info" if not err.definite else "fail"
        return "fail" if err.definite else "info"

    async def teardown(self, clients: list[EtcdClient]) -> None:
        # Every lease is abandoned now: poll until no key is left or until every lease must
        # have expired (TTL plus slack for leader changes, which restart remaining TTLs).
        deadline = time.monotonic() + LEASE_TTL + FINAL_SLACK
        n = len(self._prefix())
        while True:
            for c in clients:
                try:
                    kvs, _ = await c.get_prefix(self._prefix())
                except ClientError:
                    continue
                self.final = {kv.key[n:].decode() for kv in kvs}
                break
            if self.final == set() or time.monotonic() >= deadline:
                return
            await asyncio.sleep(FINAL_POLL)

    def check(self, events: list[Event], run_dir: Path) -> Verdict:
        result = check(events, self.final, slack_s=CLOCK_SLACK)
        details: dict[str, Any] = {"checker": "lease", **result.to_json(),
                                   "final_read": self.final is not None}
        if self.final is None:
            details["error"] = "no final read succeeded"
            return Verdict(False if not result.valid else None, details)
        return Verdict(result.valid, details)

