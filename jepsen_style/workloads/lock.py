"""The lock workload: etcd's ``v3lockpb.Lock`` guarding a read-modify-write outside any txn.

Each slot keeps a *session* (Jepsen's and clientv3's): a lease of ``LEASE_TTL`` seconds renewed
in the background every TTL/3 (:class:`~jepsen_style.workloads.leasing.KeepAlive`) through the
slot's member. The slot cycles through four operations, each one history operation:

* ``acquire`` -- ``Lock(name, lease)``, waiting up to ``LOCK_WAIT`` seconds; ok value: the owner
  key. A timeout or error is ``info`` (the lock may have been granted);
* ``read`` -- linearizable Range of the counter key (absent = 0);
* ``write`` -- Put of read + 1 (a plain Put, not a Txn: the lock is the only guard);
* ``release`` -- ``Unlock(owner key)``.

The read and write carry a long deadline (``CS_DEADLINE``, longer than a pause): a holder whose
member is SIGSTOPped keeps believing it holds the lock and finishes its critical section after
SIGCONT, while its lease expired on the leader and another session took the lock. That is what
the checker (:mod:`jepsen_style.checker.lock`) must see as overlapping holds and, when the pause
caught the holder between read and write, as a lost increment. etcd documents it: a lock is only
safe when the holder's writes are guarded by its lease or the owner key's revision.

After an operation inside the cycle errors, the slot abandons its session (the keep-alive stops;
the lease expires) and starts over with a new one. ``nemesis_targets`` names the members whose
slots hold the lock right now, for the ``pause-holder`` nemesis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepsen_style.checker.lock import check
from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value
from jepsen_style.workloads import Context, Op, Verdict, Workload, WorkloadOptions
from jepsen_style.workloads.leasing import KeepAlive, get, lock, put, unlock

LEASE_TTL = 2
LOCK_WAIT = 5.0
CS_DEADLINE = 10.0
FINAL_READ = 30.0


@dataclass
class _Session:
    client: EtcdClient
    lease: int
    keepalive: KeepAlive


@dataclass
class _SlotState:
    member: str = ""
    phase: str = "idle"  # idle -> held -> read -> written -> idle
    owner_key: str = ""
    read: int = 0
    inflight: bool = False
    session: _Session | None = None


class LockWorkload(Workload):
    name = "lock"
    op_deadline = CS_DEADLINE

    def __init__(self, opts: WorkloadOptions) -> None:
        super().__init__(opts)
        self.state: dict[int, _SlotState] = {}
        self.final_counter: int | None = None
        self.final_error = ""

    def _lock_name(self) -> bytes:
        return f"{self.opts.prefix}/lock".encode()

    def _counter(self) -> bytes:
        return f"{self.opts.prefix}/counter".encode()

    def nemesis_targets(self) -> list[str]:
        # Holders before their write was acknowledged: paused now, they write after the pause
        # (a holder already releasing would end its hold at the release's invocation).
        return sorted({st.member for st in list(self.state.values())
                       if st.phase in ("held", "read")})

    def next_op(self, slot: Slot, ctx: Context) -> Op | None:
        st = self.state.setdefault(slot.index, _SlotState(ctx.member))
        if st.inflight:
            # The previous operation raised (fail or info): abandon the session.
            st.inflight = False
            st.phase = "idle"
            if st.session is not None:
                st.session.keepalive.cancel()
                st.session = None
        if st.phase == "idle":
            return Op("acquire", "lock", None)
        if st.phase == "held":
            return Op("read", "counter", None)
        if st.phase == "read":
            return Op("write", "counter", st.read + 1)
        return Op("release", "lock", st.owner_key)

    async def _session(self, st: _SlotState, client: EtcdClient) -> _Session:
        if st.session is not None and st.session.client is client:
            return st.session
        if st.session is not None:
            await st.session.keepalive.stop()
        lease = await client.lease_grant(LEASE_TTL)
        st.session = _Session(client, lease, KeepAlive(client, lease, LEASE_TTL))
        return st.session

    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]:
        st = self.state[slot.index]
        st.inflight = True
        if op.f == "acquire":
            sess = await self._session(st, client)
            key = await lock(client, self._lock_name(), sess.lease, LOCK_WAIT)
            st.owner_key, st.phase = key.decode(errors="replace"), "held"
            result: Value = st.owner_key
        elif op.f == "read":
            resp = await get(client, self._counter(), CS_DEADLINE)
            st.read = int(resp.kvs[0].value) if resp.kvs else 0
            st.phase, result = "read", st.read
        elif op.f == "write":
            assert isinstance(op.value, int)
            await put(client, self._counter(), str(op.value).encode(), CS_DEADLINE)
            st.phase, result = "written", op.value
        elif op.f == "release":
            await unlock(client, st.owner_key.encode(), CS_DEADLINE)
            st.phase, result = "idle", op.value
        else:
            raise ValueError(f"lock has no operation {op.f!r}")
        st.inflight = False
        return "ok", result

    def on_error(self, op: Op, err: ClientError) -> str:
        if op.f == "read":
            return "fail"
        return "fail" if err.definite else "info"

    async def teardown(self, clients: list[EtcdClient]) -> None:
        for st in self.state.values():
            if st.session is not None:
                await st.session.keepalive.stop()
        deadline = time.monotonic() + FINAL_READ
        while self.final_counter is None and time.monotonic() < deadline:
            for c in clients:
                try:
                    kv, _ = await c.get(self._counter())
                except ClientError as err:
                    self.final_error = str(err)
                    continue
                self.final_counter = 0 if kv is None else int(kv.value)
                break

    def check(self, events: list[Event], run_dir: Path) -> Verdict:
        result = check(events, self.final_counter)
        details: dict[str, Any] = {"checker": "lock", **result.to_json()}
        if self.final_counter is None:
            details["error"] = f"no final counter read: {self.final_error}"
            return Verdict(False if not result.valid else None, details)
        return Verdict(result.valid, details)

