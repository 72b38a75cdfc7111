"""The MVCC key-value store on the backend (etcd's `server/mvcc/kvstore*.go`).

State: every version of every key lives in the backend's key bucket under its revision (see
`revision`); the in-memory `TreeIndex` maps keys to their revision history and is rebuilt from
the backend on open. The meta bucket holds the consistent index (the Raft index of the last
applied entry) and the scheduled/finished compaction revisions.

Contracts:
- A fresh store is at revision 1; each write txn that changes anything commits all its changes
  at ONE new main revision (sub revisions 0, 1, ... in order of the changes), in one backend
  batch together with the consistent index (if given).
- Reads at `rev` (0: current) raise `FutureRevError` if rev > current and `CompactedError` if
  rev < compact_rev (etcd serves a read AT the compaction revision).
- Durability: store writes are NOT synced by default. The Raft log is the synced source of
  truth; after a crash the server replays committed entries after `consistent_index`. LevelDB
  applies writes in order, so what survives a crash is a prefix of the writes and the data and
  consistent index stay consistent with each other.
- Single writer: at most one write txn is open at a time and calls are not thread-safe; reads
  may interleave with an open write txn and see the state before it.
- A write txn cannot be aborted: once `put`/`delete_range` is called, `end()` must follow (as in
  etcd, the index is updated as the txn goes).
"""

from __future__ import annotations

import struct

import crc32c

from petcd.storage import buckets
from petcd.storage import failpoints as fp
from petcd.storage.backend import Backend, Batch
from petcd.storage.failpoints import failpoint

from .errors import CompactedError, FutureRevError, RevisionNotFoundError
from .key_index import KeyIndex
from .kv import (
    Event,
    EventType,
    KeyValue,
    RangeResult,
    decode_header,
    decode_kv,
    encode_fields,
    to_proto,
)
from .revision import (
    Revision,
    bytes_to_rev,
    is_tombstone,
    main_prefix,
    rev_to_bytes,
    tombstone_bytes,
)
from .tree_index import TreeIndex

_U64 = struct.Struct(">Q")
_KEY = buckets.KEY
_META = buckets.META
FROM_KEY = b"\x00"
"""range_end meaning "every key >= key" (etcd's convention)."""


def normalize_end(end: bytes | None) -> tuple[bool, bytes | None]:
    """Translate an etcd range_end into (single_key, upper bound or None for unbounded)."""
    if not end:
        return True, None
    if end == FROM_KEY:
        return False, None
    return False, end


DEFAULT_COMPACTION_BATCH_LIMIT = 1000
"""etcd 3.5's defaultCompactBatchLimit (used when the flag is 0, its default)."""


class KVStore:
    """MVCC store over `backend`; restores its index from the backend on construction."""

    def __init__(self, backend: Backend, *, compaction_batch_limit: int = 0) -> None:
        self._b = backend
        # --experimental-compaction-batch-limit: revisions visited (kept ones included) per
        # committed batch of compaction deletes; 0 means etcd's default.
        self._batch_limit = compaction_batch_limit or DEFAULT_COMPACTION_BATCH_LIMIT
        self._index = TreeIndex()
        self._rev = 1
        self._compact_rev = -1
        self._consistent_index = 0
        self._term = 0
        self._txn: WriteTxn | None = None
        self._restore()

    # --- state ------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        return self._b

    @property
    def rev(self) -> int:
        """Revision of the last committed write txn (1 for a fresh store)."""
        return self._rev

    @property
    def compact_rev(self) -> int:
        """Revision of the last compaction; -1 if never compacted (as etcd)."""
        return self._compact_rev

    @property
    def first_rev(self) -> int:
        """Oldest revision still readable: compact_rev, or 1 if never compacted."""
        return max(self._compact_rev, 1)

    @property
    def consistent_index(self) -> int:
        return self._consistent_index

    @property
    def term(self) -> int:
        return self._term

    @property
    def index(self) -> TreeIndex:
        """The in-memory index (read-only use: tests, debugging)."""
        return self._index

    # --- restore ----------------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild all in-memory state from the backend (after `Backend.restore_from_bytes`)."""
        if self._txn is not None:
            raise RuntimeError("mvcc: reload with an open write txn")
        self._index = TreeIndex()
        self._rev = 1
        self._compact_rev = -1
        self._consistent_index = 0
        self._term = 0
        self._restore()

    def _restore(self) -> None:
        b = self._b
        raw = b.get(_META, buckets.META_CONSISTENT_INDEX)
        self._consistent_index = _U64.unpack(raw)[0] if raw else 0
        raw = b.get(_META, buckets.META_TERM)
        self._term = _U64.unpack(raw)[0] if raw else 0
        raw = b.get(_META, buckets.META_FINISHED_COMPACT_REV)
        if raw:
            self._compact_rev = bytes_to_rev(raw).main
        raw = b.get(_META, buckets.META_SCHEDULED_COMPACT_REV)
        scheduled = bytes_to_rev(raw).main if raw else 0

        index = self._index
        by_key: dict[bytes, KeyIndex] = {}
        cur = 1
        for rk, v in b.iterate(_KEY):
            rev = bytes_to_rev(rk)
            key, create, ver = decode_header(v)
            ki = by_key.get(key)
            cur = rev.main
            if is_tombstone(rk):
                if ki is not None:
                    try:
                        ki.tombstone(rev)
                    except RevisionNotFoundError:
                        pass
            elif ki is not None:
                ki.put(rev)
            else:
                ki = KeyIndex(key)
                ki.restore(Revision(create, 0), rev, ver)
                by_key[key] = ki
        for ki in by_key.values():
            index.insert(ki)
        # every revision up to the compaction may have been compacted away
        self._rev = max(cur, self._compact_rev)
        if scheduled > 0 and scheduled > self._compact_rev:
            self._compact_rev = scheduled
            self._physical_compact(scheduled, None, None)

    # --- reads ------------------------------------------------------------------------------
    def read(self) -> ReadView:
        """A read view pinned at the current revision: its ranges with rev=0 read at that
        revision (and report it in `rev`) even if writes happen meanwhile (etcd's read txn)."""
        return ReadView(self, self._rev)

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        """Keys in [key, end) as of `rev` (0: current), in key order.

        `end` follows etcd's range_end: None or b"" is the single key `key`, b"\\0" every key
        >= key. At most `limit` kvs (0: no limit); `count` is the total in range. `keys_only`
        leaves values empty. Raises FutureRevError / CompactedError (see module docstring).
        """
        return self._range(key, end, rev, limit, count_only, keys_only, self._rev, None)

    def _range(
        self,
        key: bytes,
        end: bytes | None,
        rev: int,
        limit: int,
        count_only: bool,
        keys_only: bool,
        cur: int,
        pending: dict[bytes, bytes] | None,
    ) -> RangeResult:
        if rev > cur:
            raise FutureRevError(cur)
        if rev <= 0:
            rev = cur
        if rev < self._compact_rev:
            raise CompactedError(self._compact_rev)
        single, upper = normalize_end(end)
        if single:
            ki = self._index.key_index(key)
            got = ki.get(rev) if ki is not None else None
            if got is None:
                return RangeResult([], 0, cur)
            if count_only:
                return RangeResult([], 1, cur)
            revs = [got[0]]
            total = 1
        else:
            if count_only:
                return RangeResult([], self._index.count(key, upper, rev), cur)
            pairs, total = self._index.range(key, upper, rev, limit)
            revs = [r for _, r in pairs]
        get = self._b.get
        kvs: list[KeyValue] = []
        for r in revs:
            rb = rev_to_bytes(r.main, r.sub)
            data = pending.get(rb) if pending else None
            if data is None:
                data = get(_KEY, rb)
                if data is None:
                    raise RuntimeError(f"mvcc: index points at missing revision {tuple(r)}")
            kv = decode_kv(data)
            if keys_only:
                kv.value = b""
            kvs.append(kv)
        return RangeResult(kvs, total, cur)

    def get(self, key: bytes, rev: int = 0) -> KeyValue | None:
        """The version of `key` live at `rev` (0: current), or None. No revision checks."""
        ki = self._index.key_index(key)
        got = ki.get(rev or self._rev) if ki is not None else None
        if got is None:
            return None
        data = self._b.get(_KEY, rev_to_bytes(got[0].main, got[0].sub))
        return decode_kv(data) if data is not None else None

    def events_between(
        self,
        start_rev: int,
        end_rev: int,
        key: bytes,
        end: bytes | None = None,
        *,
        prev_kv: bool = False,
        limit: int = 0,
    ) -> list[Event]:
        """Changes with start_rev <= revision <= end_rev (end_rev clamped to the current
        revision) to keys in [key, end) (etcd range_end conventions), ordered by revision.

        For a watch catching up. Raises CompactedError if start_rev < compact_rev (etcd's watch
        condition). `prev_kv` fills `Event.prev_kv` like etcd's watch server: the key's version
        at mod_revision - 1, unless the event is a creation or that version is compacted.
        At most `limit` events (0: all); callers resume at the last event's revision + 1 (an
        event-limited batch may split a revision; resume at that revision then).
        """
        if start_rev < self._compact_rev:
            raise CompactedError(self._compact_rev)
        end_rev = min(end_rev, self._rev)
        if start_rev > end_rev:
            return []
        single, upper = normalize_end(end)
        out: list[Event] = []
        for rk, v in self._b.iterate(_KEY, main_prefix(start_rev), main_prefix(end_rev + 1)):
            kv = decode_kv(v)
            k = kv.key
            if single:
                if k != key:
                    continue
            elif k < key or (upper is not None and k >= upper):
                continue
            if is_tombstone(rk):
                kv.mod_revision = bytes_to_rev(rk).main
                ev = Event(EventType.DELETE, kv)
            else:
                ev = Event(EventType.PUT, kv)
            if prev_kv and not (ev.type == EventType.PUT and kv.create_revision == kv.mod_revision):
                prev_rev = kv.mod_revision - 1
                if prev_rev >= self._compact_rev and prev_rev > 0:
                    ev.prev_kv = self.get(k, prev_rev)
            out.append(ev)
            if limit and len(out) >= limit:
                break
        return out

    # --- writes -----------------------------------------------------------------------------
    def write(self) -> WriteTxn:
        """Open the write txn. Raises RuntimeError if one is already open."""
        if self._txn is not None:
            raise RuntimeError("mvcc: a write txn is already open")
        failpoint(fp.BEFORE_START_DB_TXN)
        self._txn = WriteTxn(self)
        failpoint(fp.AFTER_START_DB_TXN)
        return self._txn

    def save_consistent_index(
        self, index: int, term: int | None = None, batch: Batch | None = None, sync: bool = False
    ) -> None:
        """Record the applied Raft index (and term) for an entry that changed no key: into
        `batch` if given (the caller writes it), else in a write of its own."""
        b = batch if batch is not None else Batch()
        self._put_meta_ci(b, index, term)
        if batch is None:
            self._b.write(b, sync)

    def _put_meta_ci(self, b: Batch, index: int | None, term: int | None) -> None:
        if index is not None:
            b.put(_META, buckets.META_CONSISTENT_INDEX, _U64.pack(index))
            self._consistent_index = index
        if term is not None:
            b.put(_META, buckets.META_TERM, _U64.pack(term))
            self._term = term

    # --- compaction -------------------------------------------------------------------------
    def compact(
        self, rev: int, consistent_index: int | None = None, term: int | None = None
    ) -> None:
        """Drop every version superseded at or before `rev` (keeping, per key, the newest
        version at or below `rev` unless it is a deletion), from index and backend.

        Raises CompactedError if rev <= compact_rev, FutureRevError if rev > current rev.
        Runs to completion before returning, committing the deletes of every
        `compaction_batch_limit` revisions visited as one batch (etcd's meaning; etcd also
        pauses 10ms between batches, off its apply path: petcd compacts within the apply);
        a crash part-way resumes on the next open from the persisted scheduled revision.
        """
        if rev <= self._compact_rev:
            raise CompactedError(self._compact_rev)
        if rev > self._rev:
            raise FutureRevError(self._rev)
        if self._txn is not None:
            raise RuntimeError("mvcc: compact with an open write txn")
        self._compact_rev = rev
        failpoint(fp.COMPACT_BEFORE_COMMIT_SCHEDULED_COMPACT)
        self._b.put(_META, buckets.META_SCHEDULED_COMPACT_REV, rev_to_bytes(rev))
        failpoint(fp.COMPACT_AFTER_COMMIT_SCHEDULED_COMPACT)
        self._physical_compact(rev, consistent_index, term)

    def _physical_compact(self, rev: int, ci: int | None, term: int | None) -> None:
        keep = self._index.compact(rev)
        batch = Batch()
        keys = self._b.iterate_keys(_KEY, b"", main_prefix(rev + 1))
        for visited, rk in enumerate(keys, 1):
            if bytes_to_rev(rk) not in keep:
                batch.delete(_KEY, rk)
            if visited % self._batch_limit == 0 and len(batch):
                failpoint(fp.COMPACT_BEFORE_COMMIT_BATCH)
                self._b.write(batch)
                failpoint(fp.COMPACT_AFTER_COMMIT_BATCH)
                batch = Batch()
        batch.put(_META, buckets.META_FINISHED_COMPACT_REV, rev_to_bytes(rev))
        self._put_meta_ci(batch, ci, term)
        failpoint(fp.COMPACT_BEFORE_SET_FINISHED_COMPACT)
        self._b.write(batch)
        failpoint(fp.COMPACT_AFTER_SET_FINISHED_COMPACT)

    # --- hash -------------------------------------------------------------------------------
    def hash_kv(self, rev: int = 0) -> tuple[int, int]:
        """(hash, compact_rev): etcd's HashKV at `rev` (0: current).

        CRC-32C (Castagnoli) over b"key" then, in revision order, each revision key and the
        mvccpb.KeyValue bytes of every stored change at or below `rev`, skipping what a
        compaction at `rev` would drop below compact_rev. Equal on members with equal history
        and equal to etcd's for the same history. Raises CompactedError if 0 < rev <=
        compact_rev, FutureRevError if rev > current.
        """
        compact = self._compact_rev
        if rev > 0 and rev <= compact:
            raise CompactedError(compact)
        if rev > self._rev:
            raise FutureRevError(self._rev)
        if rev <= 0:
            rev = self._rev
        keep = self._index.keep(rev)
        lower = Revision(compact + 1, 0)
        crc = crc32c.crc32c(_KEY.name)
        buf = bytearray()
        for rk, v in self._b.iterate(_KEY, b"", main_prefix(rev + 1)):
            kr = bytes_to_rev(rk)
            if kr < lower and keep and kr not in keep:
                continue
            kv = decode_kv(v)
            buf += rk
            buf += to_proto(kv)
            if len(buf) >= 1 << 20:
                crc = crc32c.crc32c(bytes(buf), crc)
                buf.clear()
        crc = crc32c.crc32c(bytes(buf), crc)
        return crc, compact


class ReadView:
    """See `KVStore.read`. Cheap; holds no resources. A compaction past its revision makes
    its reads fail with CompactedError."""

    __slots__ = ("_rev", "_s")

    def __init__(self, store: KVStore, rev: int) -> None:
        self._s = store
        self._rev = rev

    @property
    def rev(self) -> int:
        return self._rev

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        """As `KVStore.range`, at the view's revision."""
        return self._s._range(key, end, rev, limit, count_only, keys_only, self._rev, None)


class WriteTxn:
    """The open write txn of a store (see `KVStore.write`). All changes get main revision
    `rev + 1`; reads through `range` see the txn's own changes (etcd: once the txn has changed
    something it reads at rev + 1)."""

    __slots__ = ("_begin", "_ended", "_events", "_pending", "_s")

    def __init__(self, store: KVStore) -> None:
        self._s = store
        self._begin = store._rev
        self._pending: dict[bytes, bytes] = {}
        self._events: list[Event] = []
        self._ended = False

    @property
    def rev(self) -> int:
        """The store revision the txn started at."""
        return self._begin

    @property
    def changes(self) -> list[Event]:
        """The txn's changes so far, as watch events, in order (shared: do not mutate)."""
        return self._events

    def _read_rev(self) -> int:
        return self._begin + 1 if self._events else self._begin

    def range(
        self,
        key: bytes,
        end: bytes | None = None,
        rev: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
    ) -> RangeResult:
        """As `KVStore.range`, but at the txn's view (including its own changes)."""
        self._check_open()
        s = self._s
        return s._range(
            key, end, rev, limit, count_only, keys_only, self._read_rev(), self._pending
        )

    def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        """Write a new version of `key`; returns the revision it will have."""
        self._check_open()
        rev = self._begin + 1
        ki = self._s._index.get_or_create(key)
        g = ki.generations[-1]
        if g.revs:
            created, ver = g.created.main, g.ver + 1
        else:
            created, ver = rev, 1
        sub = len(self._events)
        self._pending[rev_to_bytes(rev, sub)] = encode_fields(key, created, rev, ver, value, lease)
        ki.put(Revision(rev, sub))
        self._events.append(Event(EventType.PUT, KeyValue(key, created, rev, ver, value, lease)))
        return rev

    def delete_range(self, key: bytes, end: bytes | None = None) -> tuple[int, list[KeyValue]]:
        """Delete the live keys in [key, end) (etcd range_end conventions). Returns how many
        and their versions before deletion (in key order)."""
        self._check_open()
        prev = self.range(key, end).kvs
        if not prev:
            return 0, prev
        rev = self._begin + 1
        index = self._s._index
        pending = self._pending
        events = self._events
        for kv in prev:
            sub = len(events)
            pending[tombstone_bytes(rev, sub)] = encode_fields(kv.key, 0, 0, 0, b"", 0)
            index.tombstone(kv.key, Revision(rev, sub))
            events.append(Event(EventType.DELETE, KeyValue(kv.key, mod_revision=rev)))
        return len(prev), prev

    def end(
        self,
        consistent_index: int | None = None,
        term: int | None = None,
        batch: Batch | None = None,
        sync: bool = False,
    ) -> int:
        """Commit: all changes at one new revision plus the consistent index/term (if given).

        With `batch`, the writes are added to it and the CALLER must write it right away (the
        store's revision and index already include the txn); otherwise the store writes them
        itself with `sync`. Returns the store revision after the txn (unchanged if the txn
        changed nothing).
        """
        self._check_open()
        self._ended = True
        s = self._s
        s._txn = None
        b = batch if batch is not None else Batch()
        if self._events:
            for rk, data in self._pending.items():
                b.put(_KEY, rk, data)
            # etcd's writeback of the txn buffer: readers see the txn from here, before it is
            # written to the backend.
            failpoint(fp.BEFORE_WRITEBACK_BUF)
            s._rev = self._begin + 1
            failpoint(fp.AFTER_WRITEBACK_BUF)
        s._put_meta_ci(b, consistent_index, term)
        if batch is None and len(b):
            s._b.write(b, sync)
        return s._rev

    def _check_open(self) -> None:
        if self._ended:
            raise RuntimeError("mvcc: write txn already ended")
