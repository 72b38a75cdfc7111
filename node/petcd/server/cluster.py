"""Membership operations: MemberAdd/Remove/Update/Promote/List, and applying conf changes.

A membership change is a Raft conf-change entry whose context is a `MemberRecord` carrying the
member and the proposer's request ID. Apply is idempotent (a replayed add of a known member
only refreshes it), so a member that learned the membership from its peers can replay the log
from the beginning.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import grpc
from google.protobuf.message import DecodeError

from petcd import errors, ids
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc
from petcd.api.petcdpb import internal_pb2 as ipb
from petcd.raft.types import ConfChange, ConfChangeType, Entry
from petcd.server.membership import Member

if TYPE_CHECKING:
    from petcd.server.etcdserver import EtcdServer

PUBLISH_RETRY_SECONDS = 1.0

LEARNER_READY_PERCENT = 0.9
"""A learner may be promoted once its match index is this close to the leader's (etcd)."""

MAX_LEARNERS = 1
"""etcd 3.5 allows one learner at a time."""

REMOVED_STOP_DELAY_S = 1.0
"""A member that applies its own removal stops this much later (etcd's stopWithDelay)."""


class PeerSender(Protocol):
    """The part of the peer transport the server uses."""

    def send(self, msgs: list[Any]) -> None: ...
    def add_peer(self, member_id: int, urls: list[str]) -> None: ...
    def remove_peer(self, member_id: int) -> None: ...
    def update_peer(self, member_id: int, urls: list[str]) -> None: ...


def to_pb_member(m: Member) -> pb.Member:
    return pb.Member(
        ID=m.id,
        name=m.name,
        peerURLs=m.peer_urls,
        clientURLs=m.client_urls,
        isLearner=m.is_learner,
    )


def _valid_urls(urls: list[str]) -> bool:
    if not urls:
        return False
    for u in urls:
        try:
            parts = urlsplit(u)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https", "unix", "unixs") or not parts.hostname:
            return False
        if port is None or parts.path not in ("", "/"):
            return False
    return True


class ClusterOps:
    """Membership requests and their apply, for one `EtcdServer`."""

    def __init__(self, server: EtcdServer, cluster_token: str) -> None:
        self.s = server
        self.token = cluster_token

    # -- requests ---------------------------------------------------------------------------

    def members_pb(self) -> list[pb.Member]:
        return [to_pb_member(m) for m in self.s.membership.sorted_members()]

    async def member_list(self, linearizable: bool) -> pb.MemberListResponse:
        if linearizable:
            await self.s.linearizable_read()
        resp = pb.MemberListResponse()
        resp.members.extend(self.members_pb())
        return self.s.header(resp, 0)

    async def member_add(self, r: pb.MemberAddRequest) -> pb.MemberAddResponse:
        urls = list(r.peerURLs)
        if not _valid_urls(urls):
            raise errors.MEMBER_BAD_URLS
        ms = self.s.membership
        if any(ms.peer_url_owner(u) is not None for u in urls):
            raise errors.PEER_URL_EXIST
        if r.isLearner and sum(m.is_learner for m in ms.members.values()) >= MAX_LEARNERS:
            raise errors.TOO_MANY_LEARNERS
        mid = ids.member_id(urls, self.token, int(time.time()))
        if mid in ms.members:
            raise errors.MEMBER_EXIST
        kind = (
            ConfChangeType.ConfChangeAddLearnerNode
            if r.isLearner
            else ConfChangeType.ConfChangeAddNode
        )
        await self._propose(kind, mid, urls, r.isLearner)
        resp = pb.MemberAddResponse()
        resp.member.CopyFrom(pb.Member(ID=mid, peerURLs=urls, isLearner=r.isLearner))
        resp.members.extend(self.members_pb())
        return self.s.header(resp, 0)

    async def member_remove(self, r: pb.MemberRemoveRequest) -> pb.MemberRemoveResponse:
        ms = self.s.membership
        if r.ID not in ms.members:
            raise errors.MEMBER_NOT_FOUND
        await self._propose(ConfChangeType.ConfChangeRemoveNode, r.ID, [], False)
        resp = pb.MemberRemoveResponse()
        resp.members.extend(self.members_pb())
        return self.s.header(resp, 0)

    async def member_update(self, r: pb.MemberUpdateRequest) -> pb.MemberUpdateResponse:
        urls = list(r.peerURLs)
        if not _valid_urls(urls):
            raise errors.MEMBER_BAD_URLS
        ms = self.s.membership
        m = ms.members.get(r.ID)
        if m is None:
            raise errors.MEMBER_NOT_FOUND
        for u in urls:
            owner = ms.peer_url_owner(u)
            if owner is not None and owner != r.ID:
                raise errors.PEER_URL_EXIST
        await self._propose(ConfChangeType.ConfChangeUpdateNode, r.ID, urls, m.is_learner)
        resp = pb.MemberUpdateResponse()
        resp.members.extend(self.members_pb())
        return self.s.header(resp, 0)

    async def member_promote(self, r: pb.MemberPromoteRequest) -> pb.MemberPromoteResponse:
        ms = self.s.membership
        m = ms.members.get(r.ID)
        if m is None:
            raise errors.MEMBER_NOT_FOUND
        if not m.is_learner:
            raise errors.MEMBER_NOT_LEARNER
        if not self.s.is_leader:
            # Only the leader knows how far the learner has got: it decides (etcd forwards too).
            channel = self.s.leader_channels.channel(self.s.leader_id)
            stub = pb_grpc.ClusterStub(channel)  # type: ignore[no-untyped-call]
            try:
                resp: pb.MemberPromoteResponse = await stub.MemberPromote(
                    r, timeout=self.s.request_timeout
                )
            except grpc.aio.AioRpcError as exc:
                raise errors.EtcdError(exc.code(), exc.details() or "") from None
            return resp
        self._check_learner_ready(r.ID)
        await self._propose(ConfChangeType.ConfChangeAddNode, r.ID, m.peer_urls, False)
        resp = pb.MemberPromoteResponse()
        resp.members.extend(self.members_pb())
        return self.s.header(resp, 0)

    def _check_learner_ready(self, member_id: int) -> None:
        st = self.s.driver.status()
        leader = st.progress.get(self.s.id)
        learner = st.progress.get(member_id)
        if leader is None or learner is None:
            raise errors.LEARNER_NOT_READY
        if learner.match < leader.match * LEARNER_READY_PERCENT:
            raise errors.LEARNER_NOT_READY

    async def _propose(
        self, kind: ConfChangeType, member_id: int, urls: list[str], learner: bool
    ) -> Any:
        rid = self.s.next_request_id()
        rec = ipb.MemberRecord(ID=member_id, peer_urls=urls, is_learner=learner, request_ID=rid)
        ctx = rec.SerializeToString()
        return await self.s.propose_conf_change(lambda: ConfChange(kind, member_id, ctx), rid)

    async def publish_attributes(self) -> None:
        """Publish this member's name and client URLs through Raft until it is applied
        (etcd's publishV3); until then the member shows as unstarted."""
        req = ipb.InternalRaftRequest(
            member_attr_set=ipb.MemberAttrSet(
                member_ID=self.s.id, name=self.s.name, client_urls=self.s.client_urls
            )
        )
        while True:
            m = self.s.membership.members.get(self.s.id)
            if m is not None and m.name == self.s.name and m.client_urls == self.s.client_urls:
                return
            try:
                await self.s.propose(req)
                return
            except errors.EtcdError:
                await asyncio.sleep(PUBLISH_RETRY_SECONDS)

    # -- apply ------------------------------------------------------------------------------

    def apply_attributes(self, r: ipb.MemberAttrSet, e: Entry) -> Any:
        with self.s.backend.batch() as batch:
            self.s.membership.set_attributes(r.member_ID, r.name, list(r.client_urls), batch)
            self.s.store.save_consistent_index(e.index, e.term, batch=batch)
        return None

    def apply_conf_change(self, e: Entry) -> None:
        s = self.s
        try:
            cc = ConfChange.decode(e.data)
            rec = ipb.MemberRecord.FromString(cc.context) if cc.context else ipb.MemberRecord()
        except (ValueError, DecodeError):
            s.log.error("skipping undecodable conf change", index=e.index)
            s.store.save_consistent_index(e.index, e.term)
            return
        ms = s.membership
        result: Any = None
        apply_to_raft = True
        with s.backend.batch() as batch:
            if cc.type in (
                ConfChangeType.ConfChangeAddNode,
                ConfChangeType.ConfChangeAddLearnerNode,
            ):
                if cc.node_id in ms.removed:
                    apply_to_raft = False
                    result = errors.MEMBER_NOT_FOUND
                else:
                    learner = cc.type == ConfChangeType.ConfChangeAddLearnerNode
                    old = ms.members.get(cc.node_id)
                    urls = list(rec.peer_urls) or (old.peer_urls if old else [])
                    ms.add(
                        Member(cc.node_id, urls, rec.name, list(rec.client_urls), learner), batch
                    )
                    self._peer_added(cc.node_id, urls)
            elif cc.type == ConfChangeType.ConfChangeRemoveNode:
                ms.remove(cc.node_id, batch)
                if s.transport is not None and cc.node_id != s.id:
                    s.transport.remove_peer(cc.node_id)
            elif cc.type == ConfChangeType.ConfChangeUpdateNode:
                ms.update_peer_urls(cc.node_id, list(rec.peer_urls), batch)
                if s.transport is not None and cc.node_id != s.id:
                    s.transport.update_peer(cc.node_id, list(rec.peer_urls))
            s.store.save_consistent_index(e.index, e.term, batch=batch)
        if apply_to_raft:
            s.driver.apply_conf_change(cc)
        if rec.request_ID:
            s.wait.trigger(rec.request_ID, result)
        if cc.type == ConfChangeType.ConfChangeRemoveNode and cc.node_id == s.id:
            s.log.warning(errors.MEMBER_REMOVED_EXIT, **{"local-member-id": ids.format_id(s.id)})
            # As etcd's stopWithDelay(1s): keep running a moment so our last messages (the
            # commit of this removal) reach the others.
            asyncio.get_running_loop().call_later(
                REMOVED_STOP_DELAY_S, s.request_stop, errors.MEMBER_REMOVED_EXIT
            )

    def _peer_added(self, member_id: int, urls: list[str]) -> None:
        t = self.s.transport
        if t is not None and member_id != self.s.id:
            t.add_peer(member_id, urls)

    def sync_transport(self) -> None:
        """Make the transport's peers match the membership (after a snapshot restore)."""
        for m in self.s.membership.members.values():
            self._peer_added(m.id, m.peer_urls)
