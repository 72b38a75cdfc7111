"""Sliding window of in-flight MsgApp messages to one follower (flow control).

Each entry is the last log index carried by one MsgApp. Indexes are added in increasing order;
an acknowledgement of index i frees every message whose last index is <= i.
"""

from __future__ import annotations

from collections import deque


class Inflights:
    __slots__ = ("_q", "size")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("inflights size must be positive")
        self.size = size
        self._q: deque[int] = deque()

    def add(self, index: int) -> None:
        if len(self._q) >= self.size:
            raise OverflowError("cannot add into a full inflights")
        if self._q and index < self._q[-1]:
            raise ValueError(f"inflight index {index} below last added {self._q[-1]}")
        self._q.append(index)

    def free_le(self, to: int) -> None:
        q = self._q
        while q and q[0] <= to:
            q.popleft()

    def full(self) -> bool:
        return len(self._q) >= self.size

    def count(self) -> int:
        return len(self._q)

    def reset(self) -> None:
        self._q.clear()

    def __repr__(self) -> str:
        return f"Inflights({list(self._q)}/{self.size})"
