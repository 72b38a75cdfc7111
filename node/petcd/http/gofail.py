"""gofail's HTTP endpoint (etcd's GOFAIL_HTTP), on its own listener: arm failpoints at runtime.

Contract (gofail's runtime/http.go, same statuses and texts):

- ``PUT /<name>`` with the terms as body arms it: 204; unknown name or bad terms: 400
  ``failed to set failpoint <name>``. A point on a worker thread armed with ``panic`` may end
  the process before the 204 is written: a dropped connection after a PUT means "armed";
- ``GET /`` lists every failpoint, sorted, one ``name=terms`` line each (terms empty when
  disarmed); ``GET /<name>`` gives its terms, 404 ``failed to GET: <reason>`` if unknown or
  disarmed; ``GET /<name>/count`` how many times it fired since armed (gofail >= 0.2);
- ``DELETE /<name>`` disarms: 204; 400 ``failed to delete failpoint <reason>`` if unknown or
  not armed; any other method: 405.

`start(addr)` listens on ``host:port`` (PETCD_FAILPOINTS_HTTP, read by config.Settings; meant
for loopback: the endpoint has no authentication, like gofail's).
"""

from __future__ import annotations

import asyncio

from petcd import errors
from petcd.goflag import split_host_port
from petcd.http.http1 import Request, Response, Router, serve_connection, text_error
from petcd.storage import failpoints

MAX_BODY = 64 * 1024


async def handle(req: Request) -> Response:
    key = req.path[1:]
    if req.method == "PUT":
        try:
            failpoints.enable(key, req.body.decode("utf-8", "replace"))
        except ValueError:
            return text_error(400, f"failed to set failpoint {key}")
        return Response(204, b"", None)
    if req.method == "GET":
        if not key:
            table = failpoints.armed()
            lines = [f"{n}={table.get(n, '')}" for n in sorted(failpoints.NAMES)]
            return Response(200, ("\n".join(lines) + "\n").encode())
        name, _, tail = key.partition("/")
        try:
            terms, hits = failpoints.status(name)
        except ValueError as exc:
            if tail != "count" or str(exc) != errors.FAILPOINT_DISABLED:
                return text_error(404, f"failed to GET: {exc}")
            terms, hits = "", 0
        if tail == "count":
            return Response(200, str(hits).encode())
        if tail:
            return text_error(404, f"failed to GET: {errors.FAILPOINT_NO_EXIST}")
        return Response(200, (terms + "\n").encode())
    if req.method == "DELETE":
        try:
            failpoints.disable(key)
        except ValueError as exc:
            return text_error(400, f"failed to delete failpoint {exc}")
        return Response(204, b"", None)
    return text_error(405, "Method not allowed", [("Allow", "PUT")])


async def start(addr: str) -> asyncio.Server:
    """Serve the endpoint on ``host:port`` until the returned server is closed."""
    host, port = split_host_port(addr)
    router = Router(MAX_BODY)
    router.add_prefix("/", handle)
    return await asyncio.start_server(serve_connection(router), host or None, int(port))
