"""The register workload: read / write / compare-and-set on rotating keys, checked with the
``etcd`` model (a failed cas is a definite "compare did not match").

Operations (history key ``r<n>``, etcd key ``<prefix>/r/<n>``, values decimal integers):

* ``read``  -- Range (linearizable, or serializable with ``serializable_reads``); value read
  (None if absent). Any error is ``fail``: a read has no effect.
* ``write`` -- Put of a value unique in the run (``slot * 10^7 + op number``).
* ``cas``   -- Txn ``if value == from then put to``; ``[from, to]`` with ``from`` the last value
  this slot saw for the key (else the slot reads instead). Not succeeded is ``fail`` (definite
  mismatch); any error is ``info`` (even a definite rejection, since the model would read a
  kept ``fail`` as a mismatch).

Unique values make stale reads visible: a value can only be read after its one write.

With ``isolated_reads`` (the stale-read control), while a partition isolates members, slots
bound to an isolated member only read and the other slots only write, so reads from the isolated
side and writes on the majority side meet on the same keys.
"""

from __future__ import annotations

from pathlib import Path

from jepsen_style.checker.linearizability import check
from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value, pair, write_jsonl
from jepsen_style.models import get_model
from jepsen_style.report import write_report
from jepsen_style.workloads import Context, Op, Verdict, Workload

VALUE_STRIDE = 10_000_000


class RegisterWorkload(Workload):
    name = "register"
    model = "etcd"

    def _etcd_key(self, key: str) -> bytes:
        return f"{self.opts.prefix}/r/{key[1:]}".encode()

    def next_op(self, slot: Slot, ctx: Context) -> Op | None:
        key = f"r{ctx.key_index}"
        roll = slot.rng.random()
        fresh = slot.index * VALUE_STRIDE + slot.ops
        if self.opts.isolated_reads and ctx.isolated:
            if ctx.member in ctx.isolated:
                return Op("read", key, None)
            return Op("write", key, fresh)
        if roll < 0.5:
            return Op("read", key, None)
        if roll < 0.75:
            return Op("write", key, fresh)
        last = slot.seen.get(key)
        if isinstance(last, int):
            return Op("cas", key, (last, fresh))
        return Op("read", key, None)

    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]:
        assert op.key is not None
        k = self._etcd_key(op.key)
        if op.f == "read":
            kv, _ = await client.get(k, serializable=self.opts.serializable_reads)
            value = None if kv is None else int(kv.value)
            slot.seen[op.key] = value
            return "ok", value
        if op.f == "write":
            await client.put(k, str(op.value).encode())
            slot.seen[op.key] = op.value
            return "ok", op.value
        if op.f == "cas":
            assert isinstance(op.value, tuple)
            frm, to = op.value
            ok, _ = await client.cas(k, str(frm).encode(), str(to).encode())
            if ok:
                slot.seen[op.key] = to
            return ("ok" if ok else "fail"), op.value
        raise ValueError(f"register has no operation {op.f!r}")

    def on_error(self, op: Op, err: ClientError) -> str:
        if op.f == "read":
            return "fail"
        if op.f == "cas":
            return "info"
        return "fail" if err.definite else "info"

    def check(self, events: list[Event], run_dir: Path) -> Verdict:
        model = get_model(self.model)
        ops = pair(events, model.keep_failed)
        result = check(model, ops, timeout=self.opts.check_timeout, workers=1)
        details: dict[str, object] = {
            "checker": "linearizability", "model": model.name,
            "linearizable": result.linearizable, "partitions": result.partitions,
            "explored": result.explored,
        }
        if result.reason:
            details["reason"] = result.reason
        report = None
        if result.counterexample is not None:
            details["counterexample"] = result.counterexample.to_json(model)
            report = write_report(run_dir, "history.jsonl", model, ops, result.counterexample)
            cex = result.counterexample
            details["explanation"] = cex.describe(model)
            # The violating key's sub-history, small enough to read or re-check by hand.
            bad_key = cex.blocked.input.key
            write_jsonl([ev for ev in events if ev.key == bad_key],
                        run_dir / "violation-history.jsonl")
        return Verdict(result.linearizable, details, report)

