"""The set workload (Jepsen's set): add unique elements, read the whole set once at the end.

* slots: ``add`` of element ``"<slot>-<n>"`` = a Put of ``<prefix>/s/<element>``; errors are
  ``info`` (unknown) unless etcd rejected the request outright (``fail``);
* ``teardown`` (after the final heal): one linearizable Range over the prefix, retried on every
  member for up to ``FINAL_READ`` seconds; the elements found are the final set;
* check: every acknowledged add is in the final set (else *lost*); every element in it was
  attempted (else *unexpected*); adds with unknown outcome may be in it or not (*recovered*
  counts those that are). No final read -> unknown.
"""

from __future__ import annotations

import time
from pathlib import Path

from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value
from jepsen_style.workloads import Context, Op, Verdict, Workload

FINAL_READ = 30.0


class SetWorkload(Workload):
    name = "set"

    def _prefix(self) -> bytes:
        return f"{self.opts.prefix}/s/".encode()

    def next_op(self, slot: Slot, ctx: Context) -> Op | None:
        return Op("add", None, f"{slot.index}-{slot.ops}")

    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]:
        assert isinstance(op.value, str)
        await client.put(self._prefix() + op.value.encode(), b"1")
        return "ok", op.value

    async def teardown(self, clients: list[EtcdClient]) -> None:
        self.final: set[str] | None = None
        deadline = time.monotonic() + FINAL_READ
        while self.final is None and time.monotonic() < deadline:
            for c in clients:
                try:
                    kvs, _ = await c.get_prefix(self._prefix())
                except ClientError:
                    continue
                n = len(self._prefix())
                self.final = {kv.key[n:].decode() for kv in kvs}
                break

    def check(self, events: list[Event], run_dir: Path) -> Verdict:
        final = getattr(self, "final", None)
        attempted: set[str] = set()
        acked: set[str] = set()
        for ev in events:
            if isinstance(ev.value, str):
                if ev.type == "invoke":
                    attempted.add(ev.value)
                elif ev.type == "ok":
                    acked.add(ev.value)
        if final is None:
            return Verdict(None, {"checker": "set", "error": "no final read succeeded"})
        lost = sorted(acked - final)
        unexpected = sorted(final - attempted)
        details: dict[str, object] = {
            "checker": "set", "attempted": len(attempted), "acknowledged": len(acked),
            "final": len(final), "lost": lost[:50], "lost_count": len(lost),
            "unexpected": unexpected[:50], "unexpected_count": len(unexpected),
            "recovered": len((final & attempted) - acked),
        }
        return Verdict(not lost and not unexpected, details)
