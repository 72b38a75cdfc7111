"""The asyncio driver around the pure Raft core.

One task runs the Ready loop: persist (one synced LevelDB write per Ready, off the event loop so
proposals keep batching meanwhile; a Ready that only moves the commit index is written
unsynced on the loop), send, apply, advance. A second task ticks the core every heartbeat
interval. Nothing else calls `RawNode.ready()`/`advance()`; nothing outside this module touches
the RawNode at all: every other call (status, read index, conf changes, leader transfer,
transport reports) is a driver method, and the mutating ones wake the Ready loop.

Proposals are queued (`propose`) and stepped into the core as ONE MsgProp at the top of each
Ready-loop turn. A proposal stepped earlier would only reach the wire with the next Ready
anyway, so queueing adds no latency; it turns N proposals into one MsgApp per follower and one
MsgAppResp back (and one forwarded MsgProp on a follower) instead of N of each. A leader puts
the proposals its followers forward (a MsgProp from a peer) into the same queue, so one turn's
local and forwarded proposals leave in one MsgApp per follower.

Ordering contract (etcd-io/raft's): a follower sends its messages only after the entries and
hard state of the same Ready are durable; a leader may send its appends while it persists
(its own log counts toward commitment only through entries it has persisted before any client
is answered, because apply below always follows the persist of the same Ready).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

from petcd import metrics
from petcd.logutil import Logger
from petcd.raft.rawnode import RawNode, Status
from petcd.raft.types import (
    EMPTY_SNAPSHOT,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ProposalDroppedError,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)
from petcd.storage import failpoints as fp
from petcd.storage.raft_log import DurableRaftStorage


class Application(Protocol):
    """What the driver calls back into (the etcd server)."""

    def on_soft_state(self, ss: SoftState, was_leader: bool) -> None:
        """Leader or role changed; the driver's `is_leader` is already the new role."""
    def on_read_states(self, states: list[ReadState]) -> None: ...
    applied_index: int
    """The index of the last entry applied to the state machine (what snapshot_data holds)."""
    def snapshot_data(self) -> bytes: ...
    def apply_snapshot(self, snap: Snapshot) -> None: ...
    def apply_entries(self, entries: list[Entry]) -> None: ...
    def after_advance(self) -> None: ...
    def proposals_dropped(self, tags: list[int]) -> None:
        """The core refused the queued proposals with these tags (no leader to take them)."""
    def fatal(self, msg: str, /, **fields: Any) -> NoReturn:
        """Log one fatal record and exit the process (etcd's lg.Fatal)."""


def _error_text(exc: BaseException) -> str:
    """Go-style `error` field: the OS error text, without Python's class names."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


_CONF_CHANGES = (EntryType.EntryConfChange,)

_SAVING = "failed to save Raft hard state and entries"
_APPLYING = "failed to apply committed entries"
"""The fatal record's message by the stage that failed (the Ready loop's `_stage`)."""


_FORWARDED = 0
"""The tag of a proposal forwarded by a follower (request IDs are never 0)."""


class Sender(Protocol):
    def send(self, msgs: list[Message]) -> None: ...


class RaftDriver:
    """Runs `rawnode` against `storage` and `transport` until `stop()`."""

    def __init__(
        self,
        rawnode: RawNode,
        storage: DurableRaftStorage,
        transport: Sender | None,
        app: Application,
        tick_seconds: float,
        logger: Logger,
    ) -> None:
        self.rn = rawnode
        self.storage = storage
        self.transport = transport
        self.started = False
        self.app = app
        self.tick_seconds = tick_seconds
        self.log = logger
        self.is_leader = False
        self._wake = asyncio.Event()
        self._stopped = False
        self._stage = _SAVING  # what the Ready loop is doing, for its fatal record
        self._tasks: list[asyncio.Task[None]] = []
        self._props: list[bytes] = []
        self._prop_tags: list[int] = []
        # One thread: saves are ordered and never overlap.
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-io")

    # -- inputs -----------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def step(self, msg: Message) -> None:
        """Feed a message from a peer. Malformed or stale messages are dropped, never fatal;
        so is everything before `start` (the server is not serving yet)."""
        if self._stopped or not self.started:
            return
        if msg.type == MessageType.MsgProp and msg.entries:
            if all(e.type == EntryType.EntryNormal for e in msg.entries):
                # A follower's forwarded proposals join this turn's batch: stepped one by one,
                # each forwarded MsgProp made the leader send every follower its own MsgApp
                # (and get a MsgAppResp, and a follower fsync, back for each).
                self._props.extend(e.data for e in msg.entries)
                self._prop_tags.extend(_FORWARDED for _ in msg.entries)
                self._wake.set()
                return
            self._flush_proposals()  # a conf change: keep the sender's order
        try:
            self.rn.step(msg)
        except Exception as exc:  # noqa: BLE001 - a bad peer message must not kill the node
            self.log.debug(
                "dropped raft message", type=msg.type.name, sender=f"{msg.frm:x}", error=str(exc)
            )
        self._wake.set()

    def propose(self, data: bytes, tag: int) -> None:
        """Queue `data` for the next batch; if the core drops the batch, `tag` (non-zero) is
        reported through `Application.proposals_dropped`. Queue order is log order; proposals
        forwarded by followers (`step`) join the same queue."""
        self._props.append(data)
        self._prop_tags.append(tag)
        self._wake.set()

    def _flush_proposals(self) -> None:
        datas, tags = self._props, self._prop_tags
        self._props, self._prop_tags = [], []
        if not datas:
            return
        try:
            self.rn.propose_batch(datas)
        except ProposalDroppedError:
            # Forwarded proposals have no waiter here (their proposer times out, as in etcd).
            self.app.proposals_dropped([t for t in tags if t != _FORWARDED])

    def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` (a mutation of the core) and wake the loop."""
        fn()
        self._wake.set()

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a conf change (ProposalDroppedError without a leader)."""
        self.call(lambda: self.rn.propose_conf_change(cc))

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed conf change to the core (from the apply path, inside the loop)."""
        return self.rn.apply_conf_change(cc)

    def read_index(self, ctx: bytes) -> None:
        """Start a ReadIndex round; the read state comes back through `on_read_states`."""
        self.call(lambda: self.rn.read_index(ctx))

    def transfer_leader(self, to: int) -> None:
        self.call(lambda: self.rn.transfer_leader(to))

    def report_unreachable(self, peer: int) -> None:
        """The transport could not reach `peer` (Raft probes it again)."""
        self.call(lambda: self.rn.report_unreachable(peer))

    def report_snapshot(self, peer: int, failed: bool) -> None:
        """The transport finished (or failed) sending a snapshot to `peer`: the only report
        of that snapshot's status."""
        self.call(lambda: self.rn.report_snapshot(peer, failed))

    def status(self) -> Status:
        """The core's status (hard state, conf state, progress)."""
        return self.rn.status()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, transport: Sender) -> None:
        self.transport = transport
        self.started = True
        self._tasks = [
            asyncio.create_task(self._ready_loop(), name="raft-ready"),
            asyncio.create_task(self._tick_loop(), name="raft-tick"),
        ]

    async def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        # Shutting down: a loop that already failed was logged when it failed.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._io.shutdown(wait=True)

    # -- loops ------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._stopped:
            next_at += self.tick_seconds
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                # We fell behind (a long apply); do not burst ticks, that would fake elapsed time.
                next_at = loop.time()
            self.rn.tick()
            self._wake.set()

    async def _ready_loop(self) -> None:
        try:
            while not self._stopped:
                if self._props:
                    self._flush_proposals()
                if not self.rn.has_ready():
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._handle(self.rn.ready())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure here is fatal
            # etcd's raft loop calls lg.Fatal when the WAL or backend write fails (a full or
            # read-only disk): the process exits so a supervisor sees it. Carrying on would
            # leave a member that answers nothing (no Ready is ever advanced again).
            self.app.fatal(self._stage, error=_error_text(exc))

    async def _handle(self, rd: Ready) -> None:
        if rd.soft_state is not None:
            was_leader = self.is_leader
            self.is_leader = rd.soft_state.raft_state == StateType.StateLeader
            self.app.on_soft_state(rd.soft_state, was_leader)
        if rd.read_states:
            self.app.on_read_states(rd.read_states)
        msgs = rd.messages
        snaps_out = [m for m in msgs if m.type == MessageType.MsgSnap]
        if snaps_out:
            # The core's snapshot carries metadata only, of the last snapshot saved: older
            # than the state machine, and its ConfState may lack a member added since, which
            # would ignore it (and be sent it again) forever. As etcd's
            # createMergedSnapshotMessage does, send the state machine's current copy with
            # the applied index, its term and the current configuration as metadata.
            data = self.app.snapshot_data()
            applied = self.app.applied_index
            merged = Snapshot(
                SnapshotMetadata(
                    applied, self.rn.raft.raft_log.term(applied), self.rn.status().conf_state
                ),
                data,
            )
            msgs = [
                dataclasses.replace(m, snapshot=merged)
                if m.type == MessageType.MsgSnap and m.snapshot is not None
                else m
                for m in msgs
            ]
        if self.is_leader and msgs:
            if d := fp.check(fp.RAFT_BEFORE_LEADER_SEND):
                await asyncio.sleep(d)
            self._send(msgs)
            msgs = []
        incoming = rd.snapshot is not None and rd.snapshot != EMPTY_SNAPSHOT
        if incoming and (d := fp.check(fp.RAFT_BEFORE_SAVE_SNAP)):
            await asyncio.sleep(d)
        # etcd passes raftBeforeSave/raftAfterSave on every Ready, saved or not.
        if d := fp.check(fp.RAFT_BEFORE_SAVE):
            await asyncio.sleep(d)
        if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
            # A received snapshot is saved with its data: until the state machine has applied
            # it, the log's copy is the only one, and a crash in between (the snapshot
            # failpoints below) must let the restart finish the apply (bootstrap does; etcd
            # keeps the received .snap.db for the same reason). The next local snapshot
            # replaces it by a metadata-only record.
            persisted = rd.snapshot
            if not (rd.must_sync or rd.entries or persisted is not None):
                # Only the commit index moved: an unsynced write of a few bytes (Raft does
                # not need the commit index durable) costs less than the thread hop.
                self.storage.save(rd.hard_state, rd.entries, None, False)
            else:
                # Synced saves run on the I/O thread: the loop keeps serving requests and
                # stepping messages meanwhile (saving on the loop measured slower on a quiet
                # 2-core box: the fsync wait no longer overlaps with work).
                await asyncio.get_running_loop().run_in_executor(
                    self._io, self._save, rd.hard_state, rd.entries, persisted, rd.must_sync
                )
        # The snapshot and the entries of a Ready are one atomic write here (etcd writes the
        # snapshot file first), so raftAfterSaveSnap follows that write.
        if incoming and (d := fp.check(fp.RAFT_AFTER_SAVE_SNAP)):
            await asyncio.sleep(d)
        if d := fp.check(fp.RAFT_AFTER_SAVE):
            await asyncio.sleep(d)
        if incoming:
            assert rd.snapshot is not None
            await self._apply_snapshot(rd.snapshot)
        if msgs:
            if d := fp.check(fp.RAFT_BEFORE_FOLLOWER_SEND):
                await asyncio.sleep(d)
            self._send(msgs)
        if rd.committed_entries:
            self._stage = _APPLYING
            await self._apply(rd.committed_entries)
        self._stage = _SAVING
        self.rn.advance(rd)
        self.app.after_advance()

    async def _apply_snapshot(self, snap: Snapshot) -> None:
        """Hand a received snapshot to the state machine, through etcd's failpoints."""
        if d := fp.check(fp.RAFT_BEFORE_APPLY_SNAP):
            await asyncio.sleep(d)
        if d := fp.check(fp.APPLY_BEFORE_OPEN_SNAPSHOT):
            await asyncio.sleep(d)
        self.app.apply_snapshot(snap)
        if d := fp.check(fp.RAFT_AFTER_APPLY_SNAP):
            await asyncio.sleep(d)
        # etcd releases the WAL files the snapshot made obsolete here; the durable log already
        # dropped those entries in the save.
        if d := fp.check(fp.RAFT_AFTER_WAL_RELEASE):
            await asyncio.sleep(d)

    async def _apply(self, entries: list[Entry]) -> None:
        """Apply committed entries; with beforeApplyOneConfChange armed, pass it before each
        conf change (a sleep there delays only this loop, as etcd's apply goroutine)."""
        if not fp.armed_point(fp.BEFORE_APPLY_ONE_CONF_CHANGE):
            self.app.apply_entries(entries)
            return
        start = 0
        for i, e in enumerate(entries):
            if e.type in _CONF_CHANGES:
                if i > start:
                    self.app.apply_entries(entries[start:i])
                    start = i
                if d := fp.check(fp.BEFORE_APPLY_ONE_CONF_CHANGE):
                    await asyncio.sleep(d)
        self.app.apply_entries(entries[start:])

    def _save(
        self,
        hs: HardState | None,
        entries: list[Entry],
        snap: Snapshot | None,
        sync: bool,
    ) -> None:
        """`storage.save` (on the I/O thread), timed into the fsync histogram."""
        t0 = time.perf_counter()
        try:
            self.storage.save(hs, entries, snap, sync)
        finally:
            metrics.WAL_FSYNC_SECONDS.observe(time.perf_counter() - t0)

    def _send(self, msgs: list[Message]) -> None:
        # The transport owns delivery from here, and reports each MsgSnap's outcome exactly
        # once through `report_snapshot` (as etcd's snapshot sender: SnapshotFinish when sent,
        # SnapshotFailure when dropped).
        assert self.transport is not None  # set by start()
        self.transport.send(msgs)
