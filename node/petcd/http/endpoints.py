"""The plain HTTP endpoints of a member: /health, /version, /metrics.

- `/health` (GET only): etcd 3.5's checkV3Health. Unhealthy (503, body as Go's http.Error
  writes it: JSON plus a newline) when an alarm is raised ("ALARM NOSPACE", "ALARM CORRUPT";
  `?exclude=NOSPACE` ignores one), when there is no leader ("RAFT NO LEADER"), or when a
  linearizable one-key range fails ("RANGE ERROR:<error>"); else 200 `{"health":"true","reason":""}`.
- `/version`: `{"etcdserver":"3.5.1","etcdcluster":"3.5.0"}`.
- `/metrics`: Prometheus text exposition (`petcd.metrics`).
"""

from __future__ import annotations

import asyncio
import json

from petcd import errors, metrics
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.http.http1 import JSON, TEXT, Request, Response, Router, text_error
from petcd.server import alarms as alarms_mod
from petcd.server.etcdserver import EtcdServer
from petcd.version import CLUSTER_VERSION, SERVER_VERSION


def _health_body(health: bool, reason: str) -> str:
    return json.dumps({"health": "true" if health else "false", "reason": reason},
                      separators=(",", ":"))


async def check_health(server: EtcdServer, excluded: set[str]) -> tuple[bool, str]:
    """(healthy, reason) as etcd's checkV3Health decides it."""
    a = alarms_mod.get(server)
    if a is not None:
        for m in a.store.get():
            name = pb.AlarmType.Name(m.alarm)
            if name in excluded:
                continue
            reason = {"NOSPACE": "ALARM NOSPACE", "CORRUPT": "ALARM CORRUPT"}.get(
                name, "ALARM UNKNOWN"
            )
            return False, reason
    if server.leader_id == 0:
        return False, "RAFT NO LEADER"
    try:
        await asyncio.wait_for(
            server.range(pb.RangeRequest(key=b"\x00", keys_only=True, limit=1)),
            server.request_timeout,
        )
    except errors.EtcdError as err:
        return False, f"RANGE ERROR:{err.message}"
    except TimeoutError:
        return False, f"RANGE ERROR:{errors.TIMEOUT.message}"
    return True, ""


def add_routes(router: Router, server: EtcdServer) -> None:
    async def health(req: Request) -> Response:
        if req.method != "GET":
            return text_error(405, "Method Not Allowed", [("Allow", "GET")])
        excluded = set(req.query.get("exclude", []))
        ok, reason = await check_health(server, excluded)
        (metrics.HEALTH_SUCCESS if ok else metrics.HEALTH_FAILURES).inc()
        body = _health_body(ok, reason)
        if not ok:
            return text_error(503, body)
        return Response(200, body.encode(), TEXT)

    async def version(_req: Request) -> Response:
        body = json.dumps({"etcdserver": SERVER_VERSION, "etcdcluster": CLUSTER_VERSION},
                          separators=(",", ":"))
        return Response(200, body.encode(), JSON)

    async def prom(_req: Request) -> Response:
        data, ctype = metrics.exposition()
        return Response(200, data, ctype)

    router.add("/health", health)
    router.add("/version", version)
    router.add("/metrics", prom)


def add_metrics_routes(router: Router, server: EtcdServer) -> None:
    """What --listen-metrics-urls serves: /metrics and /health only (as etcd)."""
    full = Router(router.max_body_bytes)
    add_routes(full, server)
    router.add("/metrics", full.routes["/metrics"])
    router.add("/health", full.routes["/health"])
