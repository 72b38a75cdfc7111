"""etcd's v2 API: the v2 store (replicated through Raft, separate from v3), the v2 HTTP
endpoints on the client port behind --enable-v2. (Discovery and DNS SRV bootstrap: see
`petcd.discovery`.)

`add_routes(router, server)` is the HTTP front's registration hook: it serves /v2/keys,
/v2/members, /v2/stats/* and /v2/machines when the member runs with --enable-v2 (see
`ServerOptions.enable_v2`); without it those paths get the front's 404, as in etcd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from petcd.http.http1 import Router
    from petcd.server.etcdserver import EtcdServer


def add_routes(router: Router, server: EtcdServer) -> None:
    """Register the v2 endpoints on the client router."""
    # Imported here: the v2 store is installed on every member, the HTTP side only with a router.
    from petcd.http.http1 import Handler, Request, Response, text_error
    from petcd.v2 import admin_http, keys_http
    from petcd.v2.server import get

    v2 = get(server)
    if v2 is None:
        return
    keys = keys_http.KeysHandler(v2)
    members = admin_http.MembersHandler(v2)
    stats = admin_http.StatsHandler(v2)

    def gated(handler: keys_http.KeysHandler | admin_http.MembersHandler |
              admin_http.StatsHandler) -> Handler:
        async def serve(req: Request) -> Response:
            if not v2.enabled:
                return text_error(404, "404 page not found")
            return await handler(req)
        return serve

    async def machines(req: Request) -> Response:
        if not v2.enabled:
            return text_error(404, "404 page not found")
        return await admin_http.machines(v2, req)

    router.add("/v2/keys", gated(keys))
    router.add_prefix("/v2/keys/", gated(keys))
    router.add("/v2/members", gated(members))
    router.add_prefix("/v2/members/", gated(members))
    for name in ("self", "leader", "store"):
        router.add(f"/v2/stats/{name}", gated(stats))
    router.add("/v2/machines", machines)
