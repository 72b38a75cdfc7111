"""The append workload: Elle-style list-append transactions, guarded by revisions.

Each operation (``f = "txn"``) is 1-4 micro-operations on a few keys of the slot's current key
group: ``["r", k, null]`` reads the list stored at ``k``, ``["append", k, x]`` appends ``x``
(unique in the run: ``slot * 10^7 + n``). A key's value is its list as JSON (``[3,17]``); an
absent key is the empty list. How a transaction executes:

1. *snapshot*: one Txn of Range requests over every key the transaction touches (one revision);
   a read-only transaction completes here (``ok``) with the lists read;
2. *commit*: the appends are applied to the snapshot lists locally and written by one Txn whose
   compares require ``mod_revision(k)`` unchanged since the snapshot (0 for an absent key) for
   every touched key, read keys included, so a committed transaction is serializable at its
   commit revision. Reads inside the transaction see its own earlier appends (Elle's rule).

Completion: the compare failed, or the snapshot errored -> ``fail`` (nothing was written); the
commit errored -> ``info`` (unless etcd rejected it outright). ``teardown`` reads every key once
more (linearizable, after the final heal), which :mod:`jepsen_style.checker.append` uses as the
final version order and to find lost appends.

With ``serializable_reads`` the snapshot is served by the member alone (a serializable Txn), so
read-only transactions may be stale; with ``isolated_reads`` too, slots on members a partition
isolates only read and the others only append: the control in which the checker must find
``G-single-realtime`` (reads that miss appends acknowledged before they began). Appending
transactions stay safe either way: their commit compares revisions on the leader.

Keys rotate per slot: every ``GROUP_OPS`` transactions a slot moves to the next group of
``KEYS_ACTIVE`` keys (``k<group * KEYS_ACTIVE + i>``), which bounds list lengths.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from petcd.api.etcdserverpb import rpc_pb2 as pb

from jepsen_style.checker.append import check, txns_from_events
from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value
from jepsen_style.workloads import Context, Op, Verdict, Workload

VALUE_STRIDE = 10_000_000
KEYS_ACTIVE = 6
GROUP_OPS = 30
MAX_MOPS = 4
FINAL_READ = 30.0
ERROR_PAUSE = 0.1


def _decode(raw: bytes) -> tuple[int, ...]:
    data = json.loads(raw)
    if not isinstance(data, list) or not all(isinstance(x, int) for x in data):
        raise ValueError(f"not a list of integers: {raw[:80]!r}")
    return tuple(data)


class AppendWorkload(Workload):
    name = "append"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.final: dict[str, list[int]] | None = None
        self.snapshot_errors: Counter[str] = Counter()

    def _prefix(self) -> bytes:
        return f"{self.opts.prefix}/a/".encode()

    def _etcd_key(self, key: str) -> bytes:
        return self._prefix() + key[1:].encode()

    def next_op(self, slot: Slot, ctx: Context) -> Op | None:
        rng = slot.rng
        group = slot.ops // GROUP_OPS
        n = rng.randint(1, MAX_MOPS)
        # The stale-read control: members cut off by a partition only read, the rest only write.
        forced = None
        if self.opts.isolated_reads and ctx.isolated:
            forced = "r" if ctx.member in ctx.isolated else "append"
        mops: list[Value] = []
        for i in range(n):
            key = f"k{group * KEYS_ACTIVE + rng.randrange(KEYS_ACTIVE)}"
            kind = "r" if rng.random() < 0.5 else "append"
            if (forced or kind) == "r":
                mops.append(("r", key, None))
            else:
                mops.append(("append", key, slot.index * VALUE_STRIDE + slot.ops * MAX_MOPS + i))
        return Op("txn", None, tuple(mops))

    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]:
        assert isinstance(op.value, tuple)
        mops = [m for m in op.value if isinstance(m, tuple)]
        keys = sorted({str(m[1]) for m in mops})
        snap = pb.TxnRequest(success=[pb.RequestOp(request_range=pb.RangeRequest(
            key=self._etcd_key(k), serializable=self.opts.serializable_reads)) for k in keys])
        try:
            resp = await client.txn_raw(snap)
        except ClientError as err:
            self.snapshot_errors[f"{err.code}: {err.message[:60]}"] += 1
            # A dead member refuses at once: pause so the slot does not spin on it.
            await asyncio.sleep(ERROR_PAUSE)
            return "fail", op.value  # only reads so far: nothing was written
        state: dict[str, tuple[int, ...]] = {}
        revs: dict[str, int] = {}
        for k, r in zip(keys, resp.responses, strict=True):
            kvs = r.response_range.kvs
            state[k] = _decode(kvs[0].value) if kvs else ()
            revs[k] = int(kvs[0].mod_revision) if kvs else 0
        out: list[Value] = []
        written: set[str] = set()
        for f, mkey, v in mops:
            key = str(mkey)
            if f == "r":
                out.append(("r", key, state[key]))
            else:
                assert isinstance(v, int)
                state[key] = (*state[key], v)
                written.add(key)
                out.append(("append", key, v))
        if not written:
            return "ok", tuple(out)
        commit = pb.TxnRequest(
            compare=[pb.Compare(result=pb.Compare.EQUAL, target=pb.Compare.MOD,
                                key=self._etcd_key(k), mod_revision=revs[k]) for k in keys],
            success=[pb.RequestOp(request_put=pb.PutRequest(
                key=self._etcd_key(k), value=json.dumps(list(state[k])).encode()))
                for k in sorted(written)])
        resp = await client.txn_raw(commit)
        if not resp.succeeded:
            return "fail", op.value
        return "ok", tuple(out)

    async def teardown(self, clients: list[EtcdClient]) -> None:
        deadline = time.monotonic() + FINAL_READ
        prefix = self._prefix()
        while self.final is None and time.monotonic() < deadline:
            for c in clients:
                try:
                    kvs, _ = await c.get_prefix(prefix)
                except ClientError:
                    continue
                self.final = {"k" + kv.key[len(prefix):].decode(): list(_decode(kv.value))
                              for kv in kvs}
                break

    def check(self, events: list[Event], run_dir: Path) -> Verdict:
        txns = txns_from_events(events)
        result = check(txns, self.final)
        details: dict[str, Any] = {"checker": "append", **result.to_json(),
                                   "final_read": self.final is not None,
                                   "snapshot_errors": dict(self.snapshot_errors.most_common(10))}
        if self.final is None:
            return Verdict(None if result.valid else False,
                           {**details, "error": "no final read succeeded"})
        return Verdict(result.valid, details)
