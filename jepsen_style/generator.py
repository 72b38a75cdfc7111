"""Operation generation: concurrency, rate, time limit and key rotation, seeded.

A run has ``concurrency`` *slots* (Jepsen's worker threads). Slot ``w`` draws from its own
``random.Random(f"{seed}/{w}")``, so the sequence of operations a slot asks for is a function of
the seed, the slot and what the slot observed (a cas uses the last value the slot saw); wall
time only decides *when* operations run and how they interleave, never *which* ones a slot draws.

Key rotation (Jepsen's independent keys): keys are numbered; ``keys_active`` keys are live at a
time, and after about ``ops_per_key`` operations per key (counted per slot, scaled by the
concurrency) every slot moves on to the next group of keys. That bounds every key's
sub-history, which keeps the per-key linearizability search small.

Pacing: with ``rate`` > 0 (operations per second over all slots) each slot starts an operation
every ``concurrency / rate`` seconds (with a seeded jitter of up to a quarter interval), never
catching up in bursts after a slow operation; ``rate`` = 0 means back to back. Nothing is
started after the time limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GeneratorOptions:
    seed: int = 0
    concurrency: int = 10
    rate: float = 0.0
    time_limit: float = 60.0
    keys_active: int = 3
    ops_per_key: int = 200


@dataclass(slots=True)
class Slot:
    """One worker slot: its index, seeded rng, operation count and pacing clock."""

    index: int
    rng: random.Random
    ops: int = 0
    due: float = 0.0
    seen: dict[str, object] = field(default_factory=dict)


class Generator:
    """Hands out slots and decides keys and pacing (see the module docstring)."""

    def __init__(self, opts: GeneratorOptions) -> None:
        if opts.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if opts.rate < 0 or opts.time_limit <= 0:
            raise ValueError("rate must be >= 0 and time limit > 0")
        self.opts = opts
        self.slots = [Slot(w, random.Random(f"{opts.seed}/{w}")) for w in range(opts.concurrency)]
        self.start = 0.0
        per_round = max(1, opts.keys_active * opts.ops_per_key)
        self._slot_ops_per_round = max(1, per_round // opts.concurrency)

    def begin(self) -> None:
        self.start = time.monotonic()
        for s in self.slots:
            s.due = self.start

    @property
    def deadline(self) -> float:
        return self.start + self.opts.time_limit

    def key_index(self, slot: Slot) -> int:
        """The key for the slot's next operation (rotating groups of ``keys_active``)."""
        rnd = slot.ops // self._slot_ops_per_round
        return rnd * self.opts.keys_active + slot.rng.randrange(self.opts.keys_active)

    async def pace(self, slot: Slot) -> bool:
        """Wait for the slot's next start time; False once the time limit has passed."""
        now = time.monotonic()
        if self.opts.rate > 0:
            interval = self.opts.concurrency / self.opts.rate
            base = max(slot.due, now)
            fire = base + slot.rng.uniform(0, interval / 4)
            slot.due = base + interval
            if fire >= self.deadline:
                return False
            if fire > now:
                await asyncio.sleep(fire - now)
        slot.ops += 1
        return time.monotonic() < self.deadline
