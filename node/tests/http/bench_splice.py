"""Measure what the client-port splice costs gRPC: puts/s and latency through the public port
(front mux -> abstract unix socket -> grpc.aio) against the same server's private socket.

    python node/tests/http/bench_splice.py HOST:PORT PID MEMBER_ID_HEX [--seconds 5] [--inflight 64]
        [--op put|range]

Bounded: runs each target for `--seconds` (default 5) with `--inflight` concurrent puts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import grpc
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.api.etcdserverpb import rpc_pb2_grpc as pb_grpc


async def run(
    target: str, seconds: float, inflight: int, value: bytes, op: str
) -> tuple[float, float, float]:
    async with grpc.aio.insecure_channel(target) as ch:
        kv = pb_grpc.KVStub(ch)  # type: ignore[no-untyped-call]  # generated, unannotated
        await kv.Put(pb.PutRequest(key=b"warm", value=b"x"))
        lat: list[float] = []
        stop_at = time.perf_counter() + seconds
        n = 0

        async def worker(w: int) -> None:
            nonlocal n
            i = 0
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                if op == "put":
                    await kv.Put(pb.PutRequest(key=b"bench/%d/%d" % (w, i % 100), value=value))
                else:
                    await kv.Range(pb.RangeRequest(key=b"warm", serializable=True))
                lat.append(time.perf_counter() - t0)
                i += 1
                n += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(inflight)))
        el = time.perf_counter() - t0
    lat.sort()
    return n / el, statistics.median(lat) * 1000, lat[int(len(lat) * 0.99)] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("public")
    ap.add_argument("pid")
    ap.add_argument("member_id_hex")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--op", choices=("put", "range"), default="put",
                    help="put (through Raft) or serializable range (local, isolates the splice)")
    a = ap.parse_args()
    private = f"unix-abstract:petcd-grpc-{a.pid}-{a.member_id_hex}"
    value = b"v" * a.value_bytes
    for r in range(a.rounds):
        for name, target in (("direct (private socket)", private), ("spliced (client port)", a.public)):
            qps, p50, p99 = asyncio.run(run(target, a.seconds, a.inflight, value, a.op))
            print(f"round {r} {name:26s} {qps:8.0f} puts/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms",
                  flush=True)


if __name__ == "__main__":
    main()
