"""One fuzzer operation against one server, answered as a normalized JSON-able value.

A :class:`Server` is bound to one client URL for one sequence (its :class:`Norm` carries the
sequence's base revision and the lease ids it granted). Every request has a deadline
(``TIMEOUT``): a server that hangs answers ``DEADLINE_EXCEEDED``, which differs from a server
that answers. gRPC errors become ``{"code": NAME, "details": text}``; HTTP answers
``{"status": n, "body": ...}``.
"""

from __future__ import annotations

import http.client
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import grpc
from petcd.api.authpb import auth_pb2
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc

from conformance.v2util import call as v2_call
from conformance.v2util import norm as v2_norm
from tests.fuzz.model import Op
from tests.fuzz.normalize import Norm

TIMEOUT = 10.0
WATCH_IDLE = 0.5  # a watch read ends this long after the last message ...
WATCH_MAX = 3.0  # ... or this long after it started
UNKNOWN_LEASE = 9999
ROOT_PW = "rootpw"
USER_PW = "upw"
Answer = Any


def b(s: str) -> bytes:
    return s.encode("latin-1")


def rpc_error(e: grpc.RpcError) -> Answer:
    return {"code": e.code().name, "details": e.details()}


class Server:
    """Stubs and per-sequence state for one member."""

    def __init__(self, client_url: str, base: int) -> None:
        u = urlsplit(client_url)
        self.url = client_url
        self.target = f"{u.hostname}:{u.port}"
        self.channel = grpc.insecure_channel(self.target, options=[
            ("grpc.max_send_message_length", 8 * 1024 * 1024),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024)])
        self.kv = pb_grpc.KVStub(self.channel)  # type: ignore[no-untyped-call]
        self.lease = pb_grpc.LeaseStub(self.channel)  # type: ignore[no-untyped-call]
        self.watch = pb_grpc.WatchStub(self.channel)  # type: ignore[no-untyped-call]
        self.cluster = pb_grpc.ClusterStub(self.channel)  # type: ignore[no-untyped-call]
        self.maint = pb_grpc.MaintenanceStub(self.channel)  # type: ignore[no-untyped-call]
        self.auth = pb_grpc.AuthStub(self.channel)  # type: ignore[no-untyped-call]
        self.norm = Norm(base)
        self.granted: list[int] = []  # lease ids granted in this sequence, in order
        # Lease ids the server picked itself (a grant with ID 0); they differ between servers.
        self.server_chosen: set[int] = set()
        # A key was written with such a lease: the stored KeyValue holds the server's own id,
        # so the two servers' HashKV differ by construction from here on (pair.Pair.run).
        self.hash_unstable = False
        self.token: str | None = None

    def close(self) -> None:
        self.channel.close()

    # ---- building requests ---------------------------------------------------------------

    def rev(self, rel: int) -> int:
        """A relative revision as an absolute one (0 stays 0; negatives go below the base)."""
        return 0 if rel == 0 else self.norm.base + rel

    def lease_id(self, slot: int | None) -> int:
        if slot is None:
            return 0
        return self.granted[slot] if slot < len(self.granted) else UNKNOWN_LEASE

    def put_req(self, op: Op) -> pb.PutRequest:
        lease = self.lease_id(op.get("lease"))
        if lease in self.server_chosen:
            self.hash_unstable = True
        return pb.PutRequest(key=b(op["key"]), value=b"v" * op.get("value_size", 0),
                             lease=lease,
                             prev_kv=op.get("prev_kv", False),
                             ignore_value=op.get("ignore_value", False),
                             ignore_lease=op.get("ignore_lease", False))

    def range_req(self, op: Op) -> pb.RangeRequest:
        r = pb.RangeRequest(key=b(op["key"]), range_end=b(op.get("range_end", "")),
                            limit=op.get("limit", 0), revision=self.rev(op.get("revision", 0)),
                            serializable=op.get("serializable", False),
                            keys_only=op.get("keys_only", False),
                            count_only=op.get("count_only", False),
                            min_mod_revision=self.rev(op.get("min_mod_revision", 0)),
                            max_mod_revision=self.rev(op.get("max_mod_revision", 0)),
                            min_create_revision=self.rev(op.get("min_create_revision", 0)),
                            max_create_revision=self.rev(op.get("max_create_revision", 0)))
        r.sort_order = op.get("sort_order", 0)  # out-of-range enum values on purpose
        r.sort_target = op.get("sort_target", 0)
        return r

    def delete_req(self, op: Op) -> pb.DeleteRangeRequest:
        return pb.DeleteRangeRequest(key=b(op["key"]), range_end=b(op.get("range_end", "")),
                                     prev_kv=op.get("prev_kv", False))

    def txn_req(self, op: Op) -> pb.TxnRequest:
        cmps = []
        for c in op["compare"]:
            cmp = pb.Compare(key=b(c["key"]), range_end=b(c["range_end"]))
            cmp.target = c["target"]
            cmp.result = c["result"]
            t = c["target"]  # the union member the target names (an odd target: none)
            if t == 0:
                cmp.version = c["number"]
            elif t == 1:
                cmp.create_revision = self.rev(c["number"])
            elif t == 2:
                cmp.mod_revision = self.rev(c["number"])
            elif t == 3:
                cmp.value = b(c["value"])
            elif t == 4:
                cmp.lease = self.lease_id(c["number"] if c["number"] >= 0 else None)
            cmps.append(cmp)
        return pb.TxnRequest(compare=cmps, success=[self.req_op(o) for o in op["success"]],
                             failure=[self.req_op(o) for o in op["failure"]])

    def req_op(self, op: Op) -> pb.RequestOp:
        k = op["kind"]
        if k == "range":
            return pb.RequestOp(request_range=self.range_req(op))
        if k == "put":
            return pb.RequestOp(request_put=self.put_req(op))
        if k == "delete":
            return pb.RequestOp(request_delete_range=self.delete_req(op))
        return pb.RequestOp(request_txn=self.txn_req(op))

    def meta(self) -> list[tuple[str, str]] | None:
        return [("token", self.token)] if self.token else None

    # ---- running --------------------------------------------------------------------------

    def run(self, op: Op) -> Answer:
        """The normalized answer of one operation (never raises for a server's answer)."""
        try:
            return getattr(self, "op_" + op["kind"])(op)
        except grpc.RpcError as e:
            return rpc_error(e)

    def op_put(self, op: Op) -> Answer:
        return self.norm.msg(self.kv.Put(self.put_req(op), timeout=TIMEOUT, metadata=self.meta()))

    def op_range(self, op: Op) -> Answer:
        return self.norm.msg(self.kv.Range(self.range_req(op), timeout=TIMEOUT,
                                           metadata=self.meta()))

    def op_delete(self, op: Op) -> Answer:
        return self.norm.msg(self.kv.DeleteRange(self.delete_req(op), timeout=TIMEOUT,
                                                 metadata=self.meta()))

    def op_txn(self, op: Op) -> Answer:
        return self.norm.msg(self.kv.Txn(self.txn_req(op), timeout=TIMEOUT, metadata=self.meta()))

    def op_compact(self, op: Op) -> Answer:
        req = pb.CompactionRequest(revision=self.rev(op["revision"]), physical=op["physical"])
        return self.norm.msg(self.kv.Compact(req, timeout=TIMEOUT))

    def op_lease_grant(self, op: Op) -> Answer:
        r = self.lease.LeaseGrant(pb.LeaseGrantRequest(TTL=op["ttl"], ID=op["id"]),
                                  timeout=TIMEOUT)
        if r.ID and not r.error:
            self.granted.append(r.ID)
            if op["id"] == 0:
                self.server_chosen.add(r.ID)
            self.norm.lease_name(r.ID)
        return self.norm.msg(r)

    def op_lease_revoke(self, op: Op) -> Answer:
        return self.norm.msg(self.lease.LeaseRevoke(
            pb.LeaseRevokeRequest(ID=self.lease_id(op["lease"])), timeout=TIMEOUT))

    def op_lease_ttl(self, op: Op) -> Answer:
        return self.norm.msg(self.lease.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(
            ID=self.lease_id(op["lease"]), keys=op.get("keys", False)), timeout=TIMEOUT))

    def op_lease_leases(self, op: Op) -> Answer:
        return self.norm.msg(self.lease.LeaseLeases(pb.LeaseLeasesRequest(), timeout=TIMEOUT))

    def op_lease_keepalive(self, op: Op) -> Answer:
        req = pb.LeaseKeepAliveRequest(ID=self.lease_id(op["lease"]))
        call = self.lease.LeaseKeepAlive(iter([req]), timeout=TIMEOUT)
        try:
            return [self.norm.msg(r) for r in call]
        finally:
            call.cancel()

    def op_member_list(self, op: Op) -> Answer:
        r = self.norm.msg(self.cluster.MemberList(pb.MemberListRequest(), timeout=TIMEOUT))
        return r

    def op_watch(self, op: Op) -> Answer:
        """Create one watcher, read until idle (bounded), cancel it; the events flattened."""
        create = pb.WatchCreateRequest(key=b(op["key"]), range_end=b(op["range_end"]),
                                       start_revision=self.rev(op["start"]),
                                       prev_kv=op["prev_kv"], fragment=op["fragment"])
        for f in op["filters"]:
            create.filters.append(f)
        reqs: queue.Queue[pb.WatchRequest | None] = queue.Queue()
        reqs.put(pb.WatchRequest(create_request=create))

        def gen() -> Iterator[pb.WatchRequest]:
            while (r := reqs.get()) is not None:
                yield r

        call = self.watch.Watch(gen(), timeout=WATCH_MAX + TIMEOUT)
        got: queue.Queue[Any] = queue.Queue()

        def reader() -> None:
            try:
                for r in call:
                    got.put(r)
            except grpc.RpcError as e:
                got.put(e)
            got.put(None)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        out: list[Any] = []
        events: list[Any] = []
        try:
            end_at = _now() + WATCH_MAX
            watch_id = None
            while _now() < end_at:
                try:
                    r = got.get(timeout=min(WATCH_IDLE if out else TIMEOUT, end_at - _now()))
                except queue.Empty:
                    break
                if r is None:
                    break
                if isinstance(r, grpc.RpcError):
                    out.append(rpc_error(r))
                    break
                if r.created:
                    watch_id = r.watch_id
                d = self.norm.msg(r)
                events.extend(d.pop("events", []))
                d.pop("fragment", None)
                if r.created or r.canceled or r.compact_revision or not r.events:
                    out.append(d)
            if watch_id is not None:
                reqs.put(pb.WatchRequest(cancel_request=pb.WatchCancelRequest(
                    watch_id=watch_id)))
                try:
                    r = got.get(timeout=TIMEOUT)
                    out.append(rpc_error(r) if isinstance(r, grpc.RpcError) else
                               {"canceled": bool(r is not None and r.canceled)})
                except queue.Empty:
                    out.append("no cancel answer")
        finally:
            reqs.put(None)
            call.cancel()
            t.join(timeout=TIMEOUT)
        return {"responses": out, "events": events}

    # ---- auth -----------------------------------------------------------------------------

    def op_auth(self, op: Op) -> Answer:
        """A self-contained auth session (see `model.auth`); always ends with auth disabled and
        its users and roles deleted."""
        a, out = self.auth, []

        def step(name: str, fn: Any, *args: Any, **kw: Any) -> Any:
            try:
                r = fn(*args, timeout=TIMEOUT, **kw)
                out.append([name, self.norm.msg(r)])
                return r
            except grpc.RpcError as e:
                out.append([name, rpc_error(e)])
                return None

        if op["root_user"]:
            step("user-add-root", a.UserAdd, pb.AuthUserAddRequest(name="root", password=ROOT_PW))
        if op["root_role"]:
            step("role-add-root", a.RoleAdd, pb.AuthRoleAddRequest(name="root"))
            step("grant-root", a.UserGrantRole, pb.AuthUserGrantRoleRequest(user="root",
                                                                            role="root"))
        step("user-add-u", a.UserAdd, pb.AuthUserAddRequest(name="u", password=USER_PW))
        step("role-add-r", a.RoleAdd, pb.AuthRoleAddRequest(name="r"))
        perm = auth_pb2.Permission(key=b"a", range_end=b"b")
        perm.permType = op["perm_type"]
        step("grant-perm", a.RoleGrantPermission,
             pb.AuthRoleGrantPermissionRequest(name="r", perm=perm))
        step("grant-r", a.UserGrantRole, pb.AuthUserGrantRoleRequest(user="u", role="r"))
        enabled = step("enable", a.AuthEnable, pb.AuthEnableRequest()) is not None
        r = step("auth-u", a.Authenticate, pb.AuthenticateRequest(name="u", password=USER_PW))
        utok = r.token if r is not None else None
        for s in op["steps"]:
            self.token = None if s == "no-token" else utok
            if s in ("put-own", "no-token"):
                out.append([s, self.run({"kind": "put", "key": "a/1", "value_size": 1})])
            elif s == "put-other":
                out.append([s, self.run({"kind": "put", "key": "c", "value_size": 1})])
            elif s == "range-own":
                out.append([s, self.run({"kind": "range", "key": "a", "range_end": "b"})])
            elif s == "range-all":
                out.append([s, self.run({"kind": "range", "key": "\x00", "range_end": "\x00"})])
            elif s == "bad-password":
                step(s, a.Authenticate, pb.AuthenticateRequest(name="u", password="nope"))
            elif s == "revoke-perm":
                step(s, a.RoleRevokePermission, pb.AuthRoleRevokePermissionRequest(
                    role="r", key=b"a", range_end=b"b"), metadata=self.root_meta(enabled))
            elif s == "user-list":
                step(s, a.UserList, pb.AuthUserListRequest(), metadata=self.meta())
            elif s == "role-get":
                step(s, a.RoleGet, pb.AuthRoleGetRequest(role="r"), metadata=self.meta())
        self.token = None
        if enabled:
            step("disable", a.AuthDisable, pb.AuthDisableRequest(), metadata=self.root_meta(True))
        self.auth_cleanup()
        return out

    def root_meta(self, enabled: bool) -> list[tuple[str, str]] | None:
        if not enabled:
            return None
        r = self.auth.Authenticate(pb.AuthenticateRequest(name="root", password=ROOT_PW),
                                   timeout=TIMEOUT)
        return [("token", r.token)]

    def auth_cleanup(self) -> None:
        """Auth off (as root, if it is on) and no users or roles left; errors ignored (the
        cleanup's answers are not compared; the state after it is, by hashkv)."""
        try:
            st = self.auth.AuthStatus(pb.AuthStatusRequest(), timeout=TIMEOUT)
            if st.enabled:
                self.auth.AuthDisable(pb.AuthDisableRequest(), timeout=TIMEOUT,
                                      metadata=self.root_meta(True))
            for u in self.auth.UserList(pb.AuthUserListRequest(), timeout=TIMEOUT).users:
                self.auth.UserDelete(pb.AuthUserDeleteRequest(name=u), timeout=TIMEOUT)
            for r in self.auth.RoleList(pb.AuthRoleListRequest(), timeout=TIMEOUT).roles:
                self.auth.RoleDelete(pb.AuthRoleDeleteRequest(role=r), timeout=TIMEOUT)
        except grpc.RpcError:
            pass

    # ---- HTTP: gateway and v2 -------------------------------------------------------------

    def op_gw(self, op: Op) -> Answer:
        body = self.gw_body(op)
        u = urlsplit(self.url)
        conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=TIMEOUT)
        try:
            conn.request("POST", op["path"], body=body)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            return {"http-error": type(e).__name__}
        finally:
            conn.close()
        try:
            raw: Any = json.loads(data)
        except ValueError:
            return {"status": r.status, "body": data.decode("latin-1")[:300]}
        if (op["path"] == "/v3/lease/grant" and r.status == 200 and isinstance(raw, dict)
                and not raw.get("error") and str(raw.get("ID", "")).lstrip("-").isdigit()):
            # A lease granted through the gateway is this sequence's like any other: named
            # L<n> by the normalizer (ids are random per server), usable by later operations,
            # and revoked by the cleanup (else it outlives the sequence and later sequences'
            # LeaseLeases list its raw, different ids: long-run finding new-long-s17).
            lid = int(raw["ID"])
            self.granted.append(lid)
            self.server_chosen.add(lid)  # whatever the body asked, treat the id as the server's
            self.norm.lease_name(lid)
        return {"status": r.status, "body": self.norm.doc(raw)}

    def gw_body(self, op: Op) -> bytes:
        from google.protobuf.json_format import MessageToJson

        form, inner = op["form"], op["req"]
        if form == "empty":
            return b"{}"
        if form == "bad-json":
            return b'{"key": '
        if form == "bad-base64":
            return b'{"key": "YQ="}'
        if form == "wrong-type":
            return b'{"key": 5}'
        if form == "null":
            return b"null"
        k = inner["kind"]
        msg: Any
        if k == "put":
            msg = self.put_req(inner)
        elif k == "range":
            msg = self.range_req(inner)
        elif k == "delete":
            msg = self.delete_req(inner)
        elif k == "txn":
            msg = self.txn_req(inner)
        elif k == "lease_grant":
            msg = pb.LeaseGrantRequest(TTL=inner["ttl"], ID=inner["id"])
        elif k == "lease_ttl":
            msg = pb.LeaseTimeToLiveRequest(ID=self.lease_id(inner["lease"]),
                                            keys=inner.get("keys", False))
        elif k == "compact":
            msg = pb.CompactionRequest(revision=self.rev(inner["revision"]),
                                       physical=inner["physical"])
        else:
            return b"{}"
        return MessageToJson(msg, preserving_proto_field_name=True).encode()

    def op_v2(self, op: Op) -> Answer:
        path = "/v2/keys/fz/" + op["key"]
        act, val = op["action"], op["value"]
        if act == "set":
            r = v2_call(self.url, "PUT", path, form={"value": val})
        elif act == "get":
            r = v2_call(self.url, "GET", path)
        elif act == "get-recursive":
            r = v2_call(self.url, "GET", "/v2/keys/fz", query={"recursive": "true"})
        elif act == "get-sorted":
            r = v2_call(self.url, "GET", path, query={"recursive": "true", "sorted": "true"})
        elif act == "delete":
            r = v2_call(self.url, "DELETE", path)
        elif act == "delete-dir":
            r = v2_call(self.url, "DELETE", path, query={"dir": "true", "recursive": "true"})
        elif act == "mkdir":
            r = v2_call(self.url, "PUT", path, form={"dir": "true"})
        elif act == "cas-value":
            r = v2_call(self.url, "PUT", path, form={"value": val + "2", "prevValue": val})
        elif act == "cas-exist":
            r = v2_call(self.url, "PUT", path, form={"value": val, "prevExist": "false"})
        else:
            r = v2_call(self.url, "POST", "/v2/keys/fz/q", form={"value": val})
        try:
            body: Any = v2_norm(r.doc)
        except ValueError:
            body = r.body.decode("latin-1")[:300]
        return {"status": r.status, "body": body}

    def v2_cleanup(self) -> None:
        v2_call(self.url, "DELETE", "/v2/keys/fz", query={"dir": "true", "recursive": "true"})


def _now() -> float:
    import time

    return time.monotonic()

