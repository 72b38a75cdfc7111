"""Leader failure under write load: no acknowledged write is lost, a new leader takes over,
and the killed member catches up after restart."""

from __future__ import annotations

import threading
import time

from conformance.util import kv_pairs
from harness.local import LocalCluster

MAX_PUTS = 400
MAX_SECONDS = 60.0
ACKS_BEFORE_KILL = 25
ACKS_AFTER_KILL = 25


def test_kill_leader_during_puts(target: str, fresh_cluster: LocalCluster) -> None:
    c = fresh_cluster
    ctl = c.ctl(command_timeout="3s")
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()
    progress = threading.Condition(lock)

    def writer() -> None:
        start = time.monotonic()
        for i in range(MAX_PUTS):
            if stop.is_set() or time.monotonic() - start > MAX_SECONDS:
                break
            key, value = f"/faults/k{i:04d}", f"v{i}"
            if ctl("put", key, value, timeout=15).rc == 0:
                with progress:
                    acked[key] = value
                    progress.notify_all()

    def wait_acks(n: int) -> None:
        with progress:
            ok = progress.wait_for(lambda: len(acked) >= n or not t.is_alive(), timeout=MAX_SECONDS)
        assert ok and len(acked) >= n, f"only {len(acked)} puts acknowledged, wanted {n}"

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        wait_acks(ACKS_BEFORE_KILL)
        old = c.leader()
        c.kill(old)
        with lock:
            at_kill = len(acked)
        wait_acks(at_kill + ACKS_AFTER_KILL)
    finally:
        stop.set()
        t.join(timeout=MAX_SECONDS)
    assert not t.is_alive()

    survivors = [m for m in c.members if m != old]
    new = c.leader(among=survivors)
    assert new != old
    # Every acknowledged put is readable (linearizably) from each survivor.
    for m in survivors:
        doc = c.ctl([m])("get", "/faults/", "--prefix", "-w", "json").check().json()
        have = dict(kv_pairs(doc))
        missing = {k: v for k, v in acked.items() if have.get(k) != v}
        assert not missing, f"{m.name} lost acknowledged puts: {sorted(missing)[:10]}"

    # Restart the old leader; it must catch up to exactly the cluster's data.
    c.start_member(old)
    c.wait_healthy(timeout=60)
    want = c.ctl([new])("get", "/faults/", "--prefix", "-w", "json").check().json()
    deadline = time.monotonic() + 30
    while True:
        got = c.ctl([old])("get", "/faults/", "--prefix", "--consistency=s", "-w", "json")
        if got.ok and got.json().get("kvs") == want.get("kvs"):
            break
        assert time.monotonic() < deadline, f"{old.name} did not catch up"
        time.sleep(0.1)
