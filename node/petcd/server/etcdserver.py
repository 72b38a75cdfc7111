"""EtcdServer: one member's state machine, proposals and linearizable reads.

Contract with the gRPC adapters: every public coroutine returns a response whose header is
filled (cluster ID, member ID, revision, raft term) or raises `petcd.errors.EtcdError`.

Writes go through Raft: the request is wrapped in an InternalRaftRequest with a request ID
unique to this member, proposed, and the caller waits until this member applies that entry.
Linearizable reads use Raft's ReadIndex: concurrent reads share one ReadIndex round, then wait
until the applied index reaches the read index. Serializable reads are served locally.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from google.protobuf.message import DecodeError, Message

from petcd import errors, metrics
from petcd.api import deep
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.logutil import Logger
from petcd.mvcc.errors import CompactedError, FutureRevError
from petcd.mvcc.kv import Event
from petcd.mvcc.kvstore import KVStore, WriteTxn
from petcd.raft.config import Config as RaftConfig
from petcd.raft.rawnode import RawNode
from petcd.raft.types import (
    Entry,
    EntryType,
    ProposalDroppedError,
    ReadState,
    Snapshot,
    SoftState,
)
from petcd.server import auth_apply
from petcd.server.applier import (
    KVApplier,
    do_range,
    do_read_only_txn,
    is_read_only_txn,
    is_serializable_txn,
)
from petcd.server.cluster import ClusterOps, PeerSender
from petcd.server.leader_client import LeaderChannels
from petcd.server.membership import Membership
from petcd.server.options import ServerOptions
from petcd.server.raft_driver import RaftDriver
from petcd.server.wait import IndexWait, Wait
from petcd.storage import failpoints
from petcd.storage.backend import Backend, Batch
from petcd.storage.raft_log import DurableRaftStorage
from petcd.version import SERVER_VERSION

if TYPE_CHECKING:
    from petcd.server.alarms import Alarms
    from petcd.server.auth_ops import AuthOps
    from petcd.server.lease_ops import LeaseOps
    from petcd.server.watch_hub import WatchHub
    from petcd.v2.server import V2Server

R = TypeVar("R", bound=Message)
ApplyHandler = Callable[[Any, Entry], Any]
Installer = Callable[["EtcdServer"], None]
"""Attaches one subsystem to a server under construction (see `EtcdServer.__init__`)."""

READ_INDEX_RETRY_SECONDS = 0.5
"""How long one ReadIndex round may take before it is asked again (etcd: 500ms)."""


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class EtcdServer:
    """One member. Create, then `await start(transport)`; `await stop()` when done."""

    def __init__(
        self,
        *,
        member_id: int,
        backend: Backend,
        raft_storage: DurableRaftStorage,
        options: ServerOptions,
        logger: Logger,
        installers: Sequence[Installer] = (),
    ) -> None:
        """Build the member from its opened data dir and `options`, then run `installers`
        (each sets one subsystem field below); the server is complete when this returns."""
        opts = options
        self.options = opts
        self.id = member_id
        self.name = opts.name
        self.client_urls = list(opts.client_urls)
        self.backend = backend
        self.raft_storage = raft_storage
        self.settings = opts.settings
        """petcd's PETCD_* tunables (config.Settings)."""
        self.store = KVStore(backend, compaction_batch_limit=opts.compaction_batch_limit)
        self.membership = Membership(backend)
        self.kv = KVApplier(self.store)
        self.cluster = ClusterOps(self, opts.cluster_token)
        self.leader_channels = LeaderChannels(self.membership)
        # Followers dial the leader's client URL with the client-side TLS (see tlsutil).
        self.leader_channels.tls.info = opts.client_tls
        self.heartbeat_ms = opts.heartbeat_ms
        self.election_ticks = max(1, opts.election_ms // opts.heartbeat_ms)
        self.snapshot_count = opts.snapshot_count
        self.max_txn_ops = opts.max_txn_ops
        self.max_request_bytes = opts.max_request_bytes
        self.request_timeout = 5.0 + 2 * opts.election_ms / 1000.0
        self.log = logger

        self.applied_index = self.store.consistent_index
        self.snapshot_index = raft_storage.snapshot().metadata.index
        self.leader_id = 0
        self.term = raft_storage.initial_state()[0].term
        self.wait = Wait()
        self.applied_wait = IndexWait()
        self.applied_wait.index = self.applied_index
        self._has_leader = asyncio.Event()
        self.leader_changes = 0
        self._req_seq = (member_id & 0xFFFF) << 48 | (int(time.time() * 1000) & 0xFFFFFFFFFF) << 8
        self._read_waiters: dict[bytes, asyncio.Future[int]] = {}
        self._pending_readers: list[asyncio.Future[None]] = []
        """Linearizable readers waiting for the next ReadIndex round (one batch)."""
        self._read_trigger = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.stopped = asyncio.Event()
        self.stop_reason = ""

        rawnode = RawNode(
            RaftConfig(
                id=member_id,
                storage=raft_storage,
                rng=random.Random(),
                election_tick=self.election_ticks,
                heartbeat_tick=1,
                # A leader's snapshot carries its backend as of sending, newer than the
                # snapshot's index: after a restart the state machine may be ahead of the
                # durable commit index. Raft must not hear of more applied than committed;
                # apply_entries skips what the backend already has.
                applied=min(self.applied_index, raft_storage.initial_state()[0].commit),
                check_quorum=True,
                pre_vote=True,
            )
        )
        self.driver = RaftDriver(
            rawnode, raft_storage, None, self, self.heartbeat_ms / 1000.0, self.log
        )
        """Every call into Raft goes through the driver (it owns the RawNode)."""
        self.transport: PeerSender | None = None

        # Extension points for feature modules (watch, lease, auth, alarms, ...): see
        # `register_apply`, `kv_listeners`, `leader_listeners`, `restore_listeners`, `add_task`.
        self._apply_handlers: dict[str, ApplyHandler] = {
            "compaction": lambda req, e: self._apply_compaction(req, e),
            "member_attr_set": lambda req, e: self.cluster.apply_attributes(req, e),
        }
        self.kv_listeners: list[Callable[[list[Event], int], None]] = []
        """Called after every committed write txn with its changes and new revision."""
        self.leader_listeners: list[Callable[[bool], None]] = []
        """Called with True when this member becomes leader, False when it stops being one."""
        self.restore_listeners: list[Callable[[], None]] = []
        """Called after the state machine was replaced by a snapshot from the leader."""
        self._task_factories: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []

        # The subsystems, each set once by its installer (`installers`, the assembly point's
        # `INSTALLERS`) right here; None means not installed (the gRPC adapters then do not
        # serve that API).
        self.leases: LeaseOps | None = None
        self.watch_hub: WatchHub | None = None
        self.alarms: Alarms | None = None
        self.auth: AuthOps | None = None
        self.v2: V2Server | None = None
        for install in installers:
            install(self)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, transport: PeerSender) -> None:
        self.transport = transport
        self.driver.start(transport)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="read-index"),
            asyncio.create_task(self.cluster.publish_attributes(), name="publish"),
            *(asyncio.create_task(f(), name=n) for n, f in self._task_factories),
        ]

    # -- extension points -------------------------------------------------------------------

    def register_apply(self, kind: str, handler: ApplyHandler) -> None:
        """Route applied InternalRaftRequests whose `request` oneof is `kind` to `handler`.

        The handler gets the oneof's message and the entry; it must persist the entry's index
        as the consistent index in the same write as its changes (`end_txn` or
        `store.save_consistent_index`) and return the response (header filled) or an
        `EtcdError`, which is handed to the proposer's waiter.
        """
        self._apply_handlers[kind] = handler

    def add_task(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `factory()` as a background task from `start()` until `stop()`."""
        self._task_factories.append((name, factory))

    def end_txn(self, txn: WriteTxn, e: Entry, batch: Batch | None = None) -> int:
        """Commit a write txn as the apply of entry `e`, then tell the kv listeners.

        With `batch`, the txn's writes join it and the batch is written here, so a subsystem
        can commit its own records (a revoked lease, say) atomically with the txn.
        """
        changes = txn.changes
        rev = txn.end(consistent_index=e.index, term=e.term, batch=batch)
        if batch is not None:
            self.backend.write(batch)
        if changes:
            for listener in self.kv_listeners:
                listener(changes, rev)
        return rev

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.driver.started:
            await self.driver.stop()
        self.wait.fail_all(errors.STOPPED)
        self.applied_wait.fail_all(errors.STOPPED)
        await self.leader_channels.close()
        self.stopped.set()

    def fatal(self, msg: str, /, **fields: Any) -> NoReturn:
        """etcd's `lg.Fatal`: write one fatal record, then exit the process with status 1 at
        once. No graceful stop: what failed (a full or read-only disk, an entry this binary
        cannot apply) would fail it again or hang it. Everything acknowledged is durable
        already (synced before the answer), so a supervisor's restart loses nothing."""
        self.log.log("fatal", msg, _depth=3, **fields)
        os._exit(1)

    def request_stop(self, reason: str) -> None:
        """Ask the process to stop (e.g. this member was removed); `stopped` fires after."""
        self.stop_reason = reason
        self.stopped.set()

    # -- ids and headers --------------------------------------------------------------------

    @property
    def cluster_id(self) -> int:
        return self.membership.cluster_id

    def next_request_id(self) -> int:
        self._req_seq += 1
        return self._req_seq

    def header(self, resp: R, revision: int | None = None) -> R:
        h = resp.header  # type: ignore[attr-defined]
        h.cluster_id = self.cluster_id
        h.member_id = self.id
        h.revision = self.store.rev if revision is None else revision
        h.raft_term = self.term
        return resp

    # -- proposals --------------------------------------------------------------------------

    async def wait_leader(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while self.leader_id == 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise errors.TIMEOUT
            try:
                await asyncio.wait_for(self._has_leader.wait(), remaining)
            except TimeoutError:
                raise errors.TIMEOUT from None

    async def propose(self, req: ipb.InternalRaftRequest) -> Any:
        """Replicate `req`, wait until it is applied here, and return its apply result."""
        if not self.driver.started or self.stopped.is_set():
            raise errors.STOPPED
        rid = self.next_request_id()
        req.header.ID = rid
        auth_apply.stamp(req)  # checked at apply, as etcd (auth_apply)
        data = req.SerializeToString()
        if len(data) > self.max_request_bytes:
            raise errors.REQUEST_TOO_LARGE
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        await self.wait_leader(deadline)
        fut = self.wait.register(rid)
        # Batched with the other proposals of this loop turn (see RaftDriver.propose); a drop
        # comes back through proposals_dropped as TIMEOUT, as the synchronous one used to.
        self.driver.propose(data, rid)
        return await self._await_result(rid, fut, deadline)

    def proposals_dropped(self, tags: list[int]) -> None:
        for rid in tags:
            metrics.PROPOSALS_FAILED.inc()
            self.wait.trigger(rid, errors.TIMEOUT)

    async def propose_conf_change(self, build: Any, rid: int) -> Any:
        """Propose a conf change built by `build()` and wait for its apply result."""
        if not self.driver.started or self.stopped.is_set():
            raise errors.STOPPED
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        await self.wait_leader(deadline)
        fut = self.wait.register(rid)
        try:
            self.driver.propose_conf_change(build())
        except ProposalDroppedError:
            self.wait.cancel(rid)
            metrics.PROPOSALS_FAILED.inc()
            raise errors.TIMEOUT from None
        return await self._await_result(rid, fut, deadline)

    async def _await_result(self, rid: int, fut: asyncio.Future[Any], deadline: float) -> Any:
        # One timer per request instead of wait_for+shield: this is the hot path of every write.
        timer = asyncio.get_running_loop().call_at(deadline, _expire, fut)
        try:
            result = await fut
        except TimeoutError:
            self.wait.cancel(rid)
            metrics.PROPOSALS_FAILED.inc()
            raise errors.TIMEOUT from None
        finally:
            timer.cancel()
        if isinstance(result, errors.EtcdError):
            raise result
        return result

    # -- linearizable reads -----------------------------------------------------------------

    async def linearizable_read(self) -> None:
        """Return once this member has applied everything committed before the call."""
        if self.stopped.is_set():
            raise errors.STOPPED
        if failpoints.is_on(failpoints.LINEARIZABLE_READ_LOCAL):
            return  # deliberately unsafe (gate regression check): no ReadIndex
        # One future and one timer per reader (wait_for + shield on a shared future cost
        # three futures, a timer and four callbacks); the read loop resolves the whole batch.
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending_readers.append(fut)
        self._read_trigger.set()
        timer = loop.call_at(loop.time() + self.request_timeout, _expire, fut)
        try:
            await fut
        except TimeoutError:
            raise errors.TIMEOUT from None
        finally:
            timer.cancel()

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._read_trigger.wait()
            self._read_trigger.clear()
            batch = self._pending_readers
            self._pending_readers = []
            if not batch:
                continue
            deadline = loop.time() + self.request_timeout
            outcome: errors.EtcdError | None = None
            try:
                index = await self._read_index_round(deadline)
                await asyncio.wait_for(
                    self.applied_wait.wait(index), max(deadline - loop.time(), 0.001)
                )
            except TimeoutError:
                outcome = errors.TIMEOUT
            except errors.EtcdError as err:
                outcome = err
            # Readers that gave up (timer, cancellation) are done already: skip them.
            for fut in batch:
                if not fut.done():
                    if outcome is None:
                        fut.set_result(None)
                    else:
                        fut.set_exception(outcome)

    async def _read_index_round(self, deadline: float) -> int:
        loop = asyncio.get_running_loop()
        while True:
            await self.wait_leader(deadline)
            ctx = self.next_request_id().to_bytes(8, "big")
            fut: asyncio.Future[int] = loop.create_future()
            self._read_waiters[ctx] = fut
            self.driver.read_index(ctx)
            timeout = min(READ_INDEX_RETRY_SECONDS, deadline - loop.time())
            if timeout <= 0:
                self._read_waiters.pop(ctx, None)
                raise errors.TIMEOUT
            try:
                return await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                self._read_waiters.pop(ctx, None)
                if loop.time() >= deadline:
                    raise errors.TIMEOUT from None

    # -- KV API -----------------------------------------------------------------------------

    async def range(self, r: pb.RangeRequest) -> pb.RangeResponse:
        if not r.serializable:
            await self.linearizable_read()
        return self.header(do_range(self.store, r), None)

    async def put(self, r: pb.PutRequest) -> pb.PutResponse:
        if (delay := failpoints.delay_seconds(failpoints.PUT_DELAY)) > 0:
            await asyncio.sleep(delay)
        resp: pb.PutResponse = await self.propose(ipb.InternalRaftRequest(put=r))
        return resp

    async def delete_range(self, r: pb.DeleteRangeRequest) -> pb.DeleteRangeResponse:
        resp: pb.DeleteRangeResponse = await self.propose(ipb.InternalRaftRequest(delete_range=r))
        return resp

    async def txn(self, r: pb.TxnRequest) -> pb.TxnResponse:
        if is_read_only_txn(r):
            if not is_serializable_txn(r):
                await self.linearizable_read()
            return self.header(do_read_only_txn(self.store, r))
        # CopyFrom, not the txn= constructor: that one re-parses and so fails past upb's
        # 100-level limit on txns etcd accepts (petcd.api.deep).
        req = ipb.InternalRaftRequest()
        req.txn.CopyFrom(r)
        resp: pb.TxnResponse = await self.propose(req)
        return resp

    async def compact(self, r: pb.CompactionRequest) -> pb.CompactionResponse:
        resp: pb.CompactionResponse = await self.propose(ipb.InternalRaftRequest(compaction=r))
        return resp

    # -- maintenance ------------------------------------------------------------------------

    def is_learner_member(self) -> bool:
        m = self.membership.members.get(self.id)
        return m is not None and m.is_learner

    def status(self) -> pb.StatusResponse:
        st = self.driver.status()
        db_size = self.backend.size_bytes()
        # LevelDB cannot estimate what still sits in its memtable; count that as in use.
        in_use = min(self.backend.size_in_use_bytes() or db_size, db_size)
        resp = pb.StatusResponse(
            version=SERVER_VERSION,
            dbSize=db_size,
            dbSizeInUse=in_use,
            leader=self.leader_id,
            raftIndex=st.hard_state.commit,
            raftTerm=st.hard_state.term,
            raftAppliedIndex=self.applied_index,
            isLearner=self.is_learner_member(),
        )
        return self.header(resp)

    def hash_kv(self, rev: int) -> pb.HashKVResponse:
        try:
            h, compact_rev = self.store.hash_kv(rev)
        except CompactedError:
            raise errors.COMPACTED from None
        except FutureRevError:
            raise errors.FUTURE_REV from None
        return self.header(pb.HashKVResponse(hash=h, compact_revision=compact_rev))

    # -- driver callbacks (Application protocol) ------------------------------------------

    @property
    def is_leader(self) -> bool:
        """This member leads (tracked by the driver, from Raft's soft state)."""
        return self.driver.is_leader

    def on_soft_state(self, ss: SoftState, was_leader: bool) -> None:
        self.term = self.driver.status().hard_state.term
        if ss.lead != self.leader_id:
            if ss.lead != 0:
                self.leader_changes += 1
            self.log.info("raft leader changed", leader=f"{ss.lead:x}", term=self.term)
        self.leader_id = ss.lead
        is_leader = self.driver.is_leader
        if is_leader != was_leader:
            for listener in self.leader_listeners:
                listener(is_leader)
        if ss.lead:
            self._has_leader.set()
        else:
            self._has_leader.clear()

    def on_read_states(self, states: list[ReadState]) -> None:
        for rs in states:
            fut = self._read_waiters.pop(rs.request_ctx, None)
            if fut is not None and not fut.done():
                fut.set_result(rs.index)

    def snapshot_data(self) -> bytes:
        return self.backend.snapshot_bytes()

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the state machine with the leader's copy carried by `snap`."""
        if snap.metadata.index <= self.applied_index:
            return
        self.log.info("applying snapshot", index=snap.metadata.index)
        self.backend.restore_from_bytes(snap.data)
        self.store.reload()
        self.membership.reload()
        self.cluster.sync_transport()
        for listener in self.restore_listeners:
            listener()
        self.applied_index = max(self.store.consistent_index, snap.metadata.index)
        self.snapshot_index = snap.metadata.index
        self.applied_wait.advance(self.applied_index)

    def apply_entries(self, entries: list[Entry]) -> None:
        for e in entries:
            if e.index <= self.applied_index:
                continue
            self.term = max(self.term, e.term)
            if e.type == EntryType.EntryConfChange:
                self.cluster.apply_conf_change(e)
            elif e.data:
                self._apply_request(e)
            else:
                self.store.save_consistent_index(e.index, e.term)
            self.applied_index = e.index
        self.applied_wait.advance(self.applied_index)

    def after_advance(self) -> None:
        if self.applied_index - self.snapshot_index > self.snapshot_count:
            self._snapshot()

    def _snapshot(self) -> None:
        idx = self.applied_index
        cs = self.driver.status().conf_state
        self.raft_storage.create_snapshot(idx, cs, b"")
        # Entries kept behind the snapshot so slow followers catch up without one.
        compact_to = idx - self.settings.snapshot_catchup_entries
        if compact_to > self.raft_storage.first_index():
            self.raft_storage.compact(compact_to)
        self.snapshot_index = idx
        self.log.info("saved snapshot", **{"snapshot-index": idx})

    # -- apply ------------------------------------------------------------------------------

    def _apply_request(self, e: Entry) -> None:
        try:
            req = deep.parse(ipb.InternalRaftRequest, e.data)
        except DecodeError as exc:
            # etcd: pbutil.MustUnmarshal panics. Skipping would diverge from the log; stopping
            # leaves the entry to be applied by a fixed binary after restart.
            self.fatal("failed to unmarshal raft request", index=e.index, error=str(exc))
            return
        kind = req.WhichOneof("request")
        result: Any
        if (denied := self._auth_denied(kind, req)) is not None:
            self.store.save_consistent_index(e.index, e.term)
            result = denied
        elif kind in ("put", "delete_range", "txn"):
            result = self._apply_kv(kind, req, e)
        elif kind is not None and (handler := self._apply_handlers.get(kind)) is not None:
            result = handler(getattr(req, kind), e)
        else:
            self.log.warning("unsupported request in log", kind=kind)
            self.store.save_consistent_index(e.index, e.term)
            result = errors.NOT_CAPABLE
        self.wait.trigger(req.header.ID, result)

    def _auth_denied(self, kind: str | None, req: ipb.InternalRaftRequest) -> Any:
        """The error etcd's authApplierV3 gives this entry, or None (see `auth_apply`)."""
        if self.auth is None or kind not in auth_apply.CHECKED_KINDS or not self.auth.store.enabled:
            return None  # the common case: nothing to check
        try:
            auth_apply.check_entry(self.auth.store, auth_apply.lease_keys(self), kind, req)
        except errors.EtcdError as err:
            return err
        return None

    def _apply_kv(self, kind: str, req: ipb.InternalRaftRequest, e: Entry) -> Any:
        txn = self.store.write()
        try:
            if kind == "put":
                self.kv.check_put(txn, req.put, in_txn=False)
                resp: Any = self.kv.put(txn, req.put)
            elif kind == "delete_range":
                resp = self.kv.delete_range(txn, req.delete_range)
            else:
                resp = self.kv.txn(txn, req.txn)
        except errors.EtcdError as err:
            self.end_txn(txn, e)
            return err
        return self.header(resp, self.end_txn(txn, e))

    def _apply_compaction(self, r: pb.CompactionRequest, e: Entry) -> Any:
        try:
            self.store.compact(r.revision, consistent_index=e.index, term=e.term)
        except CompactedError:
            self.store.save_consistent_index(e.index, e.term)
            return errors.COMPACTED
        except FutureRevError:
            self.store.save_consistent_index(e.index, e.term)
            return errors.FUTURE_REV
        return self.header(pb.CompactionResponse())
