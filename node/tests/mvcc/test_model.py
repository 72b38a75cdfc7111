"""Randomised check of the store against a dict-of-history model, across reopens.

Each seed runs a bounded number of operations: write txns (puts and range deletes), compactions
and reopens; after every step every readable revision must read as the model says, compacted
revisions must fail, and the hash must survive a reopen.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from petcd.mvcc.errors import CompactedError
from petcd.mvcc.kv import EventType, KeyValue
from petcd.mvcc.kvstore import KVStore
from petcd.storage.backend import Backend

KEYS = [b"a", b"ab", b"b", b"ba", b"c", b"d\xff"]
State = dict[bytes, KeyValue]


def in_range(k: bytes, key: bytes, end: bytes | None) -> bool:
    if not end:
        return k == key
    if end == b"\x00":
        return k >= key
    return key <= k < end


def rand_range(rng: random.Random) -> tuple[bytes, bytes | None]:
    key = rng.choice(KEYS)
    end = rng.choice([None, b"\x00", rng.choice(KEYS), b"b"])
    return key, end


@pytest.mark.parametrize("seed", range(6))
def test_random_history_matches_model(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "db"
    s = KVStore(Backend(path))
    history: dict[int, State] = {1: {}}
    changes: dict[int, list[tuple[EventType, bytes]]] = {}
    rev, compact = 1, -1
    for step in range(120):
        op = rng.random()
        if op < 0.75:
            cur = {
                k: KeyValue(**{f: getattr(v, f) for f in v.__slots__})
                for k, v in history[rev].items()
            }
            new = rev + 1
            t = s.write()
            evs: list[tuple[EventType, bytes]] = []
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.7:
                    k = rng.choice(KEYS)
                    v = b"%d" % rng.randrange(1000)
                    lease = rng.choice([0, 0, 5])
                    old = cur.get(k)
                    cur[k] = KeyValue(
                        k,
                        old.create_revision if old else new,
                        new,
                        old.version + 1 if old else 1,
                        v,
                        lease,
                    )
                    t.put(k, v, lease)
                    evs.append((EventType.PUT, k))
                else:
                    key, end = rand_range(rng)
                    gone = sorted(k for k in cur if in_range(k, key, end))
                    n, prev = t.delete_range(key, end)
                    assert n == len(gone) and [kv.key for kv in prev] == gone
                    assert prev == [cur[k] for k in gone]
                    for k in gone:
                        del cur[k]
                        evs.append((EventType.DELETE, k))
                    # read-your-writes inside the txn
                assert t.range(b"\x00", b"\x00").kvs == [cur[k] for k in sorted(cur)]
            got = t.end(consistent_index=step)
            if evs:
                rev = new
                history[rev] = cur
                changes[rev] = evs
            assert got == rev
        elif op < 0.85 and rev > max(compact, 1):
            at = rng.randint(max(compact, 1) + 1 if compact > 0 else 1, rev)
            s.compact(at)
            compact = at
        else:
            h = s.hash_kv()
            s.backend.close()
            s = KVStore(Backend(path))
            assert s.hash_kv() == h
            assert s.consistent_index <= step
        assert (s.rev, s.compact_rev) == (rev, compact)
        lo = max(compact, 1)
        for r in range(lo, rev + 1):
            st = history[r]
            for key, end in [(b"\x00", b"\x00"), rand_range(rng)]:
                res = s.range(key, end, rev=r)
                want = [st[k] for k in sorted(st) if in_range(k, key, end)]
                assert res.kvs == want, (seed, step, r, key, end)
                assert res.count == len(want) and res.rev == rev
        if compact > 1:
            with pytest.raises(CompactedError):
                s.range(b"a", rev=compact - 1)
        # the watch feed equals the model's changes since the compaction
        start = max(compact, 2)
        evs_got = [(e.type, e.kv.key) for e in s.events_between(start, rev, b"\x00", b"\x00")]
        evs_want = [
            ev
            for r in range(start, rev + 1)
            for i, ev in enumerate(changes.get(r, []))
            if r > compact or is_kept(history, changes[r], i, compact)
        ]
        assert evs_got == evs_want, (seed, step)
    s.backend.close()


def is_kept(
    history: dict[int, State], evs: list[tuple[EventType, bytes]], i: int, compact: int
) -> bool:
    """Whether change `i` of the txn at exactly the compaction revision survives: compaction
    keeps only each key's newest version at or below its revision, never a deletion."""
    typ, key = evs[i]
    kv = history[compact].get(key)
    last = all(k != key for _, k in evs[i + 1 :])
    return typ == EventType.PUT and last and kv is not None and kv.mod_revision == compact
