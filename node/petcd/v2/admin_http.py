"""`/v2/members`, `/v2/stats/{self,leader,store}` and `/v2/machines` (etcd 3.5's v2http).

Members map onto the server's `ClusterOps`; answers and error bodies (`{"message": ...}`)
are etcd's. Peer transport statistics are not measured by petcd, so the leader's follower
latencies and counts are reported as etcd reports a follower it has not heard from yet.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from petcd import errors
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.http.http1 import JSON, TEXT, Request, Response, text_error
from petcd.server.membership import Member
from petcd.v2.errors import go_json
from petcd.v2.node import rfc3339nano
from petcd.v2.server import V2Server

MEMBERS = "/v2/members"
MAX_INT64_AS_FLOAT = 9223372036854776000
"""Go encodes float64(math.MaxInt64) as this: the "minimum" latency of an idle follower."""


def _member_json(m: Member) -> dict[str, Any]:
    return {"id": f"{m.id:x}", "name": m.name, "peerURLs": list(m.peer_urls),
            "clientURLs": list(m.client_urls)}


def _message(status: int, msg: str) -> Response:
    return Response(status, go_json({"message": msg}).encode(), JSON)


def parse_peer_urls(body: bytes) -> list[str]:
    """httptypes.MemberCreateRequest: {"peerURLs": [...]} validated as etcd's types.NewURLs."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(errors.PEER_JSON_BAD_CHAR.format(error=exc.msg)) from None
    urls = doc.get("peerURLs") if isinstance(doc, dict) else None
    if urls is None:
        urls = []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ValueError(errors.PEER_JSON_NOT_STRINGS)
    if not urls:
        raise ValueError(errors.URL_NONE_GIVEN)
    out = []
    for raw in urls:
        u = raw.strip()
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https", "unix", "unixs"):
            raise ValueError(errors.URL_BAD_SCHEME.format(text=u))
        host, sep, port = parts.netloc.rpartition(":")
        if not sep or not host or not port:
            raise ValueError(errors.URL_NOT_HOST_PORT.format(text=u))
        if parts.path:
            raise ValueError(errors.URL_HAS_PATH.format(text=u))
        out.append(u)
    return sorted(out)


class MembersHandler:
    """/v2/members and /v2/members/<id|leader>."""

    def __init__(self, v2: V2Server) -> None:
        self.v2 = v2

    async def __call__(self, r: Request) -> Response:
        allowed = ("GET", "POST", "DELETE", "PUT")
        if r.method not in allowed:
            return text_error(405, "Method Not Allowed", [("Allow", ",".join(allowed))])
        resp = await self._serve(r)
        resp.headers.append(("X-Etcd-Cluster-Id", f"{self.v2.server.cluster_id:x}"))
        return resp

    def _id(self, r: Request) -> int | Response:
        tail = unquote(r.path)[len(MEMBERS):].lstrip("/")
        if not tail:
            return text_error(405, "Method Not Allowed")
        try:
            mid = int(tail, 16)
            if not 0 <= mid < 2**64:
                raise ValueError(tail)
        except ValueError:
            return _message(404, f"No such member: {tail}")
        return mid

    async def _serve(self, r: Request) -> Response:
        s = self.v2.server
        tail = unquote(r.path)[len(MEMBERS):].lstrip("/")
        if r.method == "GET":
            if tail == "":
                doc = {"members": [_member_json(m) for m in s.membership.sorted_members()]}
                return Response(200, (go_json(doc) + "\n").encode(), JSON)
            if tail == "leader":
                m = s.membership.members.get(s.leader_id)
                if s.leader_id == 0 or m is None:
                    return _message(503, "During election")
                return Response(200, (go_json(_member_json(m)) + "\n").encode(), JSON)
            return _message(404, "Not found")
        if r.method == "DELETE":
            mid = self._id(r)
            if isinstance(mid, Response):
                return mid
            if mid in s.membership.removed:
                return _message(410, f"Member permanently removed: {mid:x}")
            if mid not in s.membership.members:
                return _message(404, f"No such member: {mid:x}")
            try:
                await s.cluster.member_remove(pb.MemberRemoveRequest(ID=mid))
            except errors.EtcdError:
                return _message(500, "Internal Server Error")
            return Response(204, b"", None)
        return await self._add_or_update(r)

    async def _add_or_update(self, r: Request) -> Response:
        s = self.v2.server
        mid = 0
        if r.method == "PUT":
            got = self._id(r)
            if isinstance(got, Response):
                return got
            mid = got
        ctype = r.headers.get("content-type", "")
        ctype = ctype.split(";")[0].strip().lower() if ";" in ctype else ctype
        if ctype != "application/json":
            return _message(415, f"Bad Content-Type {ctype}, accept application/json")
        try:
            urls = parse_peer_urls(r.body)
        except ValueError as exc:
            return _message(400, str(exc))
        try:
            if r.method == "POST":
                resp = await s.cluster.member_add(pb.MemberAddRequest(peerURLs=urls))
                m = resp.member
                doc = {"id": f"{m.ID:x}", "name": "", "peerURLs": list(m.peerURLs),
                       "clientURLs": []}
                return Response(201, (go_json(doc) + "\n").encode(), JSON)
            if mid not in s.membership.members:
                return _message(404, f"No such member: {mid:x}")
            await s.cluster.member_update(pb.MemberUpdateRequest(ID=mid, peerURLs=urls))
        except errors.EtcdError as err:
            if err is errors.PEER_URL_EXIST:
                return _message(409, "membership: peerURL exists")
            if err is errors.MEMBER_EXIST:
                return _message(409, "membership: ID exists")
            if err is errors.MEMBER_NOT_FOUND:
                return _message(404, f"No such member: {mid:x}")
            return _message(500, "Internal Server Error")
        return Response(204, b"", None)


class StatsHandler:
    """/v2/stats/self, /v2/stats/leader, /v2/stats/store."""

    def __init__(self, v2: V2Server) -> None:
        self.v2 = v2

    async def __call__(self, r: Request) -> Response:
        if r.method != "GET":
            return text_error(405, "Method Not Allowed", [("Allow", "GET")])
        which = r.path.rsplit("/", 1)[-1]
        if which == "store":
            return Response(200, go_json(self.v2.store.json_stats()).encode(), JSON)
        if which == "self":
            return Response(200, go_json(self._self()).encode(), JSON)
        s = self.v2.server
        if not s.is_leader:
            return _message(403, "not current leader")
        followers = {
            f"{m.id:x}": {
                "latency": {"current": 0, "average": 0, "standardDeviation": 0,
                            "minimum": MAX_INT64_AS_FLOAT, "maximum": 0},
                "counts": {"fail": 0, "success": 0},
            }
            for m in s.membership.sorted_members() if m.id != s.id
        }
        return Response(200, go_json({"leader": f"{s.id:x}", "followers": followers}).encode(),
                        JSON)

    def _self(self) -> dict[str, Any]:
        s = self.v2.server
        state = "StateLeader" if s.is_leader else "StateFollower"
        if s.leader_id == 0:
            state = "StateCandidate"
        up = (time.time_ns() - self.v2.leader_start_ns) / 1e9
        return {
            "name": s.name,
            "id": f"{s.id:x}",
            "state": state,
            "startTime": rfc3339nano(self.v2.start_ns),
            "leaderInfo": {
                "leader": f"{s.leader_id:x}" if s.leader_id else "",
                "uptime": f"{up:.9f}".rstrip("0").rstrip(".") + "s",
                "startTime": rfc3339nano(self.v2.leader_start_ns),
            },
            "recvAppendRequestCnt": 0,
            "sendAppendRequestCnt": 0,
        }


async def machines(v2: V2Server, r: Request) -> Response:
    """/v2/machines: the client URLs of every member, comma-separated."""
    if r.method not in ("GET", "HEAD"):
        return text_error(405, "Method Not Allowed", [("Allow", "GET,HEAD")])
    urls = [u for m in v2.server.membership.sorted_members() for u in m.client_urls]
    return Response(200, ", ".join(urls).encode(), TEXT)
