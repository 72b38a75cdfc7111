"""etcd's "simple" auth tokens: `<16 random letters>.<raft index>`, known per member.

A token is minted when an Authenticate entry is APPLIED: the proposer draws the random prefix,
and every member that applies the entry at index N records `prefix.N` for that user in its own
table. So any member can validate a token once it has applied index N (a member that has not
waits for it), and nothing about tokens is persisted: a restarted member forgets them (clients
then authenticate again, as with etcd).

A token expires when it has not been used for the TTL (`--auth-token-ttl`, 300s by default):
every successful lookup pushes its deadline out again. The table only holds tokens while auth
is enabled; disabling auth forgets them all.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable

DEFAULT_TTL_SECONDS = 300.0
PREFIX_LENGTH = 16
_LETTERS = string.ascii_lowercase + string.ascii_uppercase
_INDEX = re.compile(r"[0-9]+")
_MAX_U64 = 2**64 - 1


def gen_prefix() -> str:
    """A fresh random token prefix (etcd: 16 letters from a CSPRNG)."""
    return "".join(secrets.choice(_LETTERS) for _ in range(PREFIX_LENGTH))


def token_index(token: str) -> int | None:
    """The Raft index a well-formed simple token names, or None if it is malformed
    (exactly one '.', then an unsigned 64-bit decimal)."""
    parts = token.split(".")
    if len(parts) != 2 or not _INDEX.fullmatch(parts[1]):
        return None
    index = int(parts[1])
    return index if index <= _MAX_U64 else None


class SimpleTokens:
    """token -> (user, deadline). Not thread-safe: event loop only."""

    def __init__(
        self, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl if ttl > 0 else DEFAULT_TTL_SECONDS
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self.active = False

    def __len__(self) -> int:
        return len(self._tokens)

    def enable(self) -> None:
        self.active = True

    def disable(self) -> None:
        """Stop minting and forget every token."""
        self.active = False
        self._tokens.clear()

    def assign(self, username: str, token: str) -> None:
        """Record `token` for `username` (no-op while disabled, as etcd's keeper-less table)."""
        if self.active:
            self._tokens[token] = (username, self._clock() + self.ttl)

    def lookup(self, token: str) -> str | None:
        """The user of a live token, refreshing its TTL; None if unknown or expired."""
        entry = self._tokens.get(token)
        if entry is None:
            return None
        now = self._clock()
        if now > entry[1]:
            del self._tokens[token]
            return None
        self._tokens[token] = (entry[0], now + self.ttl)
        return entry[0]

    def invalidate_user(self, username: str) -> None:
        """Forget every token of `username` (user deleted or password changed)."""
        for token in [t for t, (u, _) in self._tokens.items() if u == username]:
            del self._tokens[token]

    def sweep(self) -> int:
        """Drop expired tokens; returns how many were dropped."""
        now = self._clock()
        dead = [t for t, (_, deadline) in self._tokens.items() if now > deadline]
        for t in dead:
            del self._tokens[t]
        return len(dead)
