"""Rendezvous points between request handlers and the apply loop.

`Wait` pairs a proposal's request ID with the result its entry produces when applied.
`IndexWait` releases waiters once the applied index reaches a target (linearizable reads).
Both are touched only from the event loop thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any


class Wait:
    """Request ID -> future of the apply result. Unknown IDs are ignored (other members'
    proposals, or entries replayed after a restart)."""

    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        """Proposals still waiting for their apply result (etcd's proposals_pending)."""
        return len(self._futures)

    def register(self, request_id: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = fut
        return fut

    def cancel(self, request_id: int) -> None:
        self._futures.pop(request_id, None)

    def trigger(self, request_id: int, result: Any) -> None:
        fut = self._futures.pop(request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result)

    def fail_all(self, exc: BaseException) -> None:
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(exc)
        self._futures.clear()


class IndexWait:
    """Futures released when `advance(index)` reaches their target index."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.index = 0

    def wait(self, index: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if index <= self.index:
            fut.set_result(None)
        else:
            heapq.heappush(self._heap, (index, next(self._seq), fut))
        return fut

    def advance(self, index: int) -> None:
        self.index = max(self.index, index)
        heap = self._heap
        while heap and heap[0][0] <= self.index:
            _, _, fut = heapq.heappop(heap)
            if not fut.done():
                fut.set_result(None)

    def fail_all(self, exc: BaseException) -> None:
        for _, _, fut in self._heap:
            if not fut.done():
                fut.set_exception(exc)
        self._heap.clear()
