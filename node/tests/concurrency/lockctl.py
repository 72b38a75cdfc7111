"""A tiny command-line client for the v3lockpb.Lock and v3electionpb.Election services.

Run it as a SUBPROCESS (it imports petcd's generated stubs, which must never share a process
with aetcd): `python lockctl.py HOST:PORT OP JSON`. It prints one JSON line per response and
flushes each, so a test can wait on its output with a deadline:

- `{"ok": {...}}` for a response (bytes decoded as UTF-8, int64 as int, nested messages as
  objects, unset message fields omitted);
- `{"error": {"code": "UNKNOWN", "details": "..."}}` for a failed call (exit status 0);
- `{"end": true}` when an Observe stream ends by itself.

OPs and their JSON arguments:
  lock {"name", "lease"?}            unlock {"key"}
  campaign {"name", "lease"?, "value"?}
  proclaim {"leader"?: {"name","key","rev","lease"}, "value"?}
  resign {"leader"?: {...}}          leader {"name"}          observe {"name"}
A "timeout" argument (seconds) sets the call's deadline.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from petcd.api.v3electionpb import v3election_pb2 as epb
from petcd.api.v3electionpb import v3election_pb2_grpc as epb_grpc
from petcd.api.v3lockpb import v3lock_pb2 as lpb
from petcd.api.v3lockpb import v3lock_pb2_grpc as lpb_grpc


def to_json(msg: Message) -> dict[str, Any]:
    """Every set field of `msg`, bytes as text."""
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            out[fd.name] = to_json(value)
        elif fd.type == FieldDescriptor.TYPE_BYTES:
            out[fd.name] = value.decode("utf-8", "backslashreplace")
        else:
            out[fd.name] = value
    return out


def _leader(args: dict[str, Any]) -> epb.LeaderKey | None:
    raw = args.get("leader")
    if raw is None:
        return None
    return epb.LeaderKey(
        name=str(raw.get("name", "")).encode(),
        key=str(raw.get("key", "")).encode(),
        rev=int(raw.get("rev", 0)),
        lease=int(raw.get("lease", 0)),
    )


def _emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def run(endpoint: str, op: str, args: dict[str, Any]) -> None:
    timeout = args.get("timeout")
    with grpc.insecure_channel(endpoint) as ch:
        lock = lpb_grpc.LockStub(ch)  # type: ignore[no-untyped-call]
        elect = epb_grpc.ElectionStub(ch)  # type: ignore[no-untyped-call]
        name = str(args.get("name", "")).encode()
        try:
            if op == "lock":
                resp: Message = lock.Lock(
                    lpb.LockRequest(name=name, lease=int(args.get("lease", 0))), timeout=timeout
                )
            elif op == "unlock":
                resp = lock.Unlock(
                    lpb.UnlockRequest(key=str(args["key"]).encode()), timeout=timeout
                )
            elif op == "campaign":
                req = epb.CampaignRequest(
                    name=name,
                    lease=int(args.get("lease", 0)),
                    value=str(args.get("value", "")).encode(),
                )
                resp = elect.Campaign(req, timeout=timeout)
            elif op == "proclaim":
                preq = epb.ProclaimRequest(value=str(args.get("value", "")).encode())
                if (lk := _leader(args)) is not None:
                    preq.leader.CopyFrom(lk)
                resp = elect.Proclaim(preq, timeout=timeout)
            elif op == "resign":
                rreq = epb.ResignRequest()
                if (lk := _leader(args)) is not None:
                    rreq.leader.CopyFrom(lk)
                resp = elect.Resign(rreq, timeout=timeout)
            elif op == "leader":
                resp = elect.Leader(epb.LeaderRequest(name=name), timeout=timeout)
            elif op == "observe":
                for item in elect.Observe(epb.LeaderRequest(name=name), timeout=timeout):
                    _emit({"ok": to_json(item)})
                _emit({"end": True})
                return
            else:
                raise SystemExit(f"unknown op {op!r}")
        except grpc.RpcError as err:
            _emit({"error": {"code": err.code().name, "details": err.details()}})
            return
        _emit({"ok": to_json(resp)})


def main() -> None:
    if len(sys.argv) != 4:
        raise SystemExit("usage: lockctl.py HOST:PORT OP JSON")
    run(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))


if __name__ == "__main__":
    main()
