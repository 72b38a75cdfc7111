"""What each toxic does to the bytes of one link.

A :class:`Stage` is one toxic attached to one link (one direction of one
connection). Data moves through a link's stages in chain order; each stage's
behaviour receives a :class:`Chunk` and passes zero or more chunks on through
``emit``, possibly after waiting. Behaviours follow Toxiproxy's toxics:

* ``latency``: hold each chunk until ``latency`` +/- ``jitter`` ms after it was read;
* ``bandwidth``: pace to ``rate`` KB/s, in pieces of at most 100 ms worth;
* ``slow_close``: on end of input wait ``delay`` ms before closing;
* ``timeout``: drop all data; close the link ``timeout`` ms after the toxic took
  effect (0: never); handled together with :mod:`toxiproxy_server.link`;
* ``reset_peer``: on the first data (or end of input), wait ``timeout`` ms then
  reset the connection (TCP RST to both peers);
* ``slicer``: cut chunks into pieces of about ``average_size`` +/- ``size_variation``
  bytes, ``delay`` microseconds apart;
* ``limit_data``: pass ``bytes`` bytes in total on this link, then close it.

Contract: a stage whose ``interrupt`` is set (its toxic was removed or updated)
stops waiting at once and passes held data on, so no data is lost.
A stage whose toxicity roll failed (``applied`` is False) passes data unchanged.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .toxics import Toxic

#: Random source for toxicity rolls, jitter and slice sizes; seeded by ``--seed``.
RNG = random.Random()


@dataclass
class Chunk:
    """Bytes read from a link's source and the loop time they were read at."""

    data: bytes
    timestamp: float


class CloseLink(Exception):
    """Raised by a behaviour to end its link: a normal close, or a reset (RST)."""

    def __init__(self, reset: bool) -> None:
        super().__init__("reset" if reset else "close")
        self.reset = reset


Emit = Callable[[Chunk], Awaitable[None]]


@dataclass
class Stage:
    """A toxic attached to one link.

    ``state`` survives updates of the toxic (limit_data's byte count does, as in
    Toxiproxy); the toxicity roll is made again on every (re)attachment.
    """

    toxic: Toxic
    applied: bool
    state: dict[str, float] = field(default_factory=dict)
    interrupt: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.Task[None] | None = None

    @classmethod
    def attach(cls, toxic: Toxic, state: dict[str, float] | None = None) -> Stage:
        """Attach ``toxic``, rolling its toxicity: applied with probability ``toxicity``."""
        return cls(toxic, RNG.random() < toxic.toxicity, state if state is not None else {})

    @property
    def interrupted(self) -> bool:
        """True once the toxic was removed or replaced on this link."""
        return self.interrupt.is_set()

    async def wait(self, seconds: float | None) -> bool:
        """Sleep ``seconds`` (None: forever); return False if interrupted first."""
        if self.interrupted:
            return False
        if seconds is not None and seconds <= 0:
            return True
        try:
            await asyncio.wait_for(self.interrupt.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def detach(self) -> None:
        """Interrupt this stage and stop its timer; idempotent."""
        self.interrupt.set()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


async def _latency(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    delay_ms = stage.toxic.attr("latency")
    jitter = stage.toxic.attr("jitter")
    if jitter > 0:
        delay_ms += RNG.randrange(2 * jitter) - jitter
    loop = asyncio.get_running_loop()
    sleep = delay_ms / 1000.0 - (loop.time() - chunk.timestamp)
    await stage.wait(sleep)
    chunk.timestamp += sleep
    await emit(chunk)


async def _bandwidth(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    rate = stage.toxic.attr("rate")
    if rate <= 0:
        # Toxiproxy never delivers data at rate 0; hold it until the toxic changes.
        await stage.wait(None)
        await emit(chunk)
        return
    loop = asyncio.get_running_loop()
    debt = stage.state.get("sleep", 0.0) + len(chunk.data) / rate / 1000.0
    data, step = chunk.data, rate * 100
    while len(data) > step:
        if not await stage.wait(0.1):
            stage.state["sleep"] = 0.0
            await emit(Chunk(data, chunk.timestamp))
            return
        await emit(Chunk(data[:step], chunk.timestamp))
        data = data[step:]
        debt -= 0.1
    start = loop.time()
    if not await stage.wait(debt):
        stage.state["sleep"] = 0.0
        await emit(Chunk(data, chunk.timestamp))
        return
    stage.state["sleep"] = debt - (loop.time() - start)
    await emit(Chunk(data, chunk.timestamp))


def slice_bounds(start: int, end: int, average: int, variation: int) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into pieces about ``average`` +/- ``variation`` bytes long.

    Halves recursively like Toxiproxy's slicer, moving each cut by up to
    ``variation``; unlike it, degenerate settings (average <= 0, variation past
    the piece) are clamped so every piece is non-empty and the recursion ends.
    """
    average = max(average, 1)
    variation = max(variation, 0)
    pieces: list[tuple[int, int]] = []
    pending = [(start, end)]
    while pending:
        lo, hi = pending.pop()
        if (hi - lo) - average <= variation or hi - lo <= 1:
            pieces.append((lo, hi))
            continue
        mid = lo + (hi - lo) // 2
        if variation > 0:
            mid += RNG.randrange(2 * variation) - variation
        mid = min(max(mid, lo + 1), hi - 1)
        pending.append((mid, hi))
        pending.append((lo, mid))
    return pieces


async def _slicer(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    toxic = stage.toxic
    pieces = slice_bounds(
        0, len(chunk.data), toxic.attr("average_size"), toxic.attr("size_variation")
    )
    pause = toxic.attr("delay") / 1_000_000.0
    for lo, hi in pieces:
        await emit(Chunk(chunk.data[lo:hi], chunk.timestamp))
        if not await stage.wait(pause):
            await emit(Chunk(chunk.data[hi:], chunk.timestamp))
            return


async def _timeout(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    del stage, chunk, emit  # all data is dropped while the toxic is in effect


async def _reset_peer(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    if await stage.wait(stage.toxic.attr("timeout") / 1000.0):
        raise CloseLink(reset=True)
    await emit(chunk)


async def _limit_data(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    limit = stage.toxic.attr("bytes")
    sent = int(stage.state.get("sent", 0))
    remaining = max(limit - sent, 0)
    data = chunk.data[:remaining]
    if data:
        stage.state["sent"] = sent + len(data)
        await emit(Chunk(data, chunk.timestamp))
    if limit - int(stage.state.get("sent", 0)) <= 0:
        raise CloseLink(reset=False)


async def _pass(stage: Stage, chunk: Chunk, emit: Emit) -> None:
    del stage
    await emit(chunk)


BEHAVIOURS: dict[str, Callable[[Stage, Chunk, Emit], Awaitable[None]]] = {
    "noop": _pass,
    "latency": _latency,
    "bandwidth": _bandwidth,
    "slow_close": _pass,
    "timeout": _timeout,
    "reset_peer": _reset_peer,
    "slicer": _slicer,
    "limit_data": _limit_data,
}


async def on_end_of_input(stage: Stage) -> None:
    """Act on the link's source closing: slow_close delays, reset_peer resets.

    Raises :class:`CloseLink` with ``reset=True`` for reset_peer; returns when the
    link may close normally.
    """
    if not stage.applied or stage.interrupted:
        return
    if stage.toxic.type == "slow_close":
        await stage.wait(stage.toxic.attr("delay") / 1000.0)
    elif stage.toxic.type == "reset_peer" and await stage.wait(
        stage.toxic.attr("timeout") / 1000.0
    ):
        raise CloseLink(reset=True)
