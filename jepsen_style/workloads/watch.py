"""The watch workload: slots put unique values on rotating keys under one prefix while one
watcher per member watches the whole prefix; checked with :mod:`jepsen_style.checker.watch`.

* slots: ``put`` of ``"<slot>-<n>"`` to ``<prefix>/w/<k>``; the ok completion's value is
  ``[value, revision]``; errors are ``info`` unless etcd rejected the request outright;
* watchers: started in ``setup`` from the revision after the prefix's current one, with
  ``prev_kv``; when the stream breaks (member killed, paused or cut off: ``hasleader`` makes a
  leaderless member cancel it) the watcher reconnects to the same member from its last
  revision + 1, with a short pause between attempts, until ``teardown``;
* ``teardown`` (after the final heal) writes a sentinel key and gives the watchers
  ``CATCH_UP`` seconds to see it: a watcher that saw it is *complete*.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from jepsen_style.checker.watch import Seen, check_watches
from jepsen_style.client import ClientError, EtcdClient
from jepsen_style.generator import Slot
from jepsen_style.history import Event, Value
from jepsen_style.workloads import Context, Op, Verdict, Workload

CATCH_UP = 30.0
RECONNECT_PAUSE = 0.25
SENTINEL = "end"


class _Watcher:
    def __init__(self, name: str, url: str, prefix: bytes, start: int) -> None:
        self.name, self.url, self.prefix = name, url, prefix
        self.last = start - 1
        self.seen: list[Seen] = []
        self.reconnects = 0
        self.errors: list[str] = []
        self.done = asyncio.Event()
        self.sentinel = prefix + SENTINEL.encode()

    async def run(self) -> None:
        while not self.done.is_set():
            client = EtcdClient(self.url, timeout=5.0)
            try:
                async for _, evs in client.watch(self.prefix, self.last + 1, prev_kv=True):
                    for e in evs:
                        key = e.kv.key[len(self.prefix):].decode()
                        value = e.kv.value.decode() if e.type == "PUT" else None
                        prev = e.prev.value.decode() if e.prev is not None else None
                        self.seen.append(Seen(e.kv.mod_revision, key, e.type, value, prev))
                        self.last = max(self.last, e.kv.mod_revision)
                        if e.kv.key == self.sentinel:
                            self.done.set()
                    if self.done.is_set():
                        return
            except ClientError as err:
                if err.code == "OUT_OF_RANGE":
                    self.errors.append(f"cannot resume: {err.message}")
                    return
                if len(self.errors) < 50:
                    self.errors.append(f"{err.code}: {err.message}"[:200])
            finally:
                await client.close()
            self.reconnects += 1
            await asyncio.sleep(RECONNECT_PAUSE)


class WatchWorkload(Workload):
    name = "watch"

    async def setup(self, clients: list[EtcdClient]) -> None:
        self.prefix = f"{self.opts.prefix}/w/".encode()
        _, rev = await clients[0].get(self.prefix)
        self.start_revision = rev + 1
        self.watchers = [_Watcher(f"watcher-{i + 1}", c.url, self.prefix, self.start_revision)
                         for i, c in enumerate(clients)]
        self.tasks = [asyncio.create_task(w.run()) for w in self.watchers]

    async def teardown(self, clients: list[EtcdClient]) -> None:
        self.sentinel_rev: int | None = None
        deadline = time.monotonic() + CATCH_UP
        for c in clients * 3:
            try:
                self.sentinel_rev = await c.put(self.prefix + SENTINEL.encode(), SENTINEL.encode())
                break
            except ClientError:
                continue
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                await asyncio.gather(*(w.done.wait() for w in self.watchers))
        except TimeoutError:
            pass
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def next_op(self, slot: Slot, ctx: Context) -> Op | None:
        return Op("put", f"w{ctx.key_index}", f"{slot.index}-{slot.ops}")

    async def apply(self, client: EtcdClient, op: Op, slot: Slot) -> tuple[str, Value]:
        assert op.key is not None and isinstance(op.value, str)
        rev = await client.put(self.prefix + op.key[1:].encode(), op.value.encode())
        return "ok", (op.value, rev)

    def check(self, events: list[Event], run_dir: Path) -> Verdict:
        acked: list[tuple[str, str, int]] = []
        attempted: set[str] = {SENTINEL}
        for ev in events:
            if ev.type == "invoke" and isinstance(ev.value, str):
                attempted.add(ev.value)
            elif ev.type == "ok" and isinstance(ev.value, tuple) and ev.key is not None:
                value, rev = ev.value
                acked.append((ev.key[1:], str(value), int(rev)))  # type: ignore[arg-type]
        if getattr(self, "sentinel_rev", None) is not None:
            acked.append((SENTINEL, SENTINEL, int(self.sentinel_rev)))  # type: ignore[arg-type]
        watchers = getattr(self, "watchers", [])
        streams = {w.name: w.seen for w in watchers}
        complete = [w.name for w in watchers if w.done.is_set()]
        result = check_watches(streams, complete, getattr(self, "start_revision", 1), acked,
                               attempted)
        details: dict[str, Any] = result.to_json()
        details["reconnects"] = {w.name: w.reconnects for w in watchers}
        details["watch_errors"] = {w.name: w.errors[:5] for w in watchers}
        details["acked"] = len(acked)
        (run_dir / "watches.json").write_text(json.dumps(
            {w.name: [[s.revision, s.key, s.type, s.value, s.prev] for s in w.seen]
             for w in watchers}) + "\n")
        return Verdict(result.valid, details)
