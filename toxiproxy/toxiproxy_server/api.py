"""Toxiproxy's HTTP API v2: routes, handlers and response formats.

Responses follow Toxiproxy: compact JSON (Go's ``json.Marshal``, including its
HTML escaping of ``<``, ``>``, ``&``); 201 for a created proxy and for populate;
200 for a created toxic; 204 for deletes and reset; errors are
``{"error": message, "status": code}`` plus a newline, sent as text/plain like
Go's ``http.Error``; unknown paths get ``404 page not found``; a known path with
a wrong method gets an empty 405; browsers (``User-Agent: Mozilla/...``) get 403.
Requests are handled one at a time, so every change is atomic to clients.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from . import __version__
from .collection import ProxyCollection, parse_proxy_fields
from .errors import ApiError
from .httpserver import Request, Response
from .jsonfields import as_object, decode_body, get_str
from .proxy import check_fields

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"

Params = dict[str, str]
RouteHandler = Callable[["Api", Request, Params], Awaitable[Response]]


def encode_json(value: Any) -> bytes:
    """Serialise like Go's json.Marshal: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode("utf-8")


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON response with Toxiproxy's content type."""
    return Response(status, encode_json(value), JSON)


def error_response(error: ApiError) -> Response:
    """An API error as Toxiproxy's apiError + http.Error write it."""
    return Response(
        error.status,
        encode_json(error.to_json()) + b"\n",
        TEXT,
        {"X-Content-Type-Options": "nosniff"},
    )


class Api:
    """The API's state (the proxy collection) and request dispatcher."""

    def __init__(self, collection: ProxyCollection | None = None) -> None:
        self.collection = collection if collection is not None else ProxyCollection()
        self._lock = asyncio.Lock()

    async def handle(self, request: Request) -> Response:
        """Route ``request`` and run its handler under the API lock."""
        allowed_anywhere = False
        for pattern, methods in ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed_anywhere = True
            handler = methods.get(request.method)
            if handler is None:
                continue
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                return Response(403, b"User agent not allowed\n", TEXT)
            async with self._lock:
                try:
                    return await handler(self, request, match.groupdict())
                except ApiError as exc:
                    return error_response(exc)
        if allowed_anywhere:
            return Response(405)
        return Response(404, b"404 page not found\n", TEXT)

    # -- proxies -------------------------------------------------------------

    async def proxy_index(self, request: Request, params: Params) -> Response:
        proxies = self.collection.proxies
        return json_response({name: proxies[name].to_json() for name in sorted(proxies)})

    async def proxy_create(self, request: Request, params: Params) -> Response:
        obj = as_object(decode_body(request.body), "toxiproxy.Proxy")
        name = get_str(obj, "name", "Proxy", "")
        listen, upstream, enabled = parse_proxy_fields(obj, ("", "", True))
        check_fields(name, upstream)
        proxy = await self.collection.add(name, listen, upstream, enabled)
        return json_response(proxy.to_json(), 201)

    async def populate(self, request: Request, params: Params) -> Response:
        try:
            proxies, error = await self.collection.populate(decode_body(request.body))
        except ApiError as exc:
            proxies, error = [], exc
        body: dict[str, Any] = error.to_json() if error is not None else {}
        body["proxies"] = [proxy.to_json() for proxy in proxies] or None
        return json_response(body, error.status if error is not None else 201)

    async def proxy_show(self, request: Request, params: Params) -> Response:
        return json_response(self.collection.get(params["proxy"]).to_json())

    async def proxy_update(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        obj = as_object(decode_body(request.body), "toxiproxy.Proxy")
        listen, upstream, enabled = parse_proxy_fields(
            obj, (proxy.listen, proxy.upstream, proxy.enabled)
        )
        await proxy.update(listen, upstream, enabled)
        return json_response(proxy.to_json())

    async def proxy_delete(self, request: Request, params: Params) -> Response:
        await self.collection.remove(params["proxy"])
        return Response(204)

    async def reset(self, request: Request, params: Params) -> Response:
        await self.collection.reset()
        return Response(204)

    # -- toxics --------------------------------------------------------------

    async def toxic_index(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        return json_response([toxic.to_json() for toxic in proxy.toxics.all()])

    async def toxic_create(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        toxic = proxy.toxics.add(decode_body(request.body))
        return json_response(toxic.to_json())

    async def toxic_show(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        return json_response(proxy.toxics.find(params["toxic"]).to_json())

    async def toxic_update(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        toxic = proxy.toxics.update(params["toxic"], decode_body(request.body))
        return json_response(toxic.to_json())

    async def toxic_delete(self, request: Request, params: Params) -> Response:
        proxy = self.collection.get(params["proxy"])
        proxy.toxics.remove(params["toxic"])
        return Response(204)

    async def version(self, request: Request, params: Params) -> Response:
        body = f'{{"version": "{__version__}"}}\n'.encode()
        return Response(200, body, "application/json;charset=utf-8")


_NAME = r"(?P<{}>[^/]+)"

ROUTES: list[tuple[re.Pattern[str], dict[str, RouteHandler]]] = [
    (re.compile(r"/reset"), {"POST": Api.reset}),
    (re.compile(r"/proxies"), {"GET": Api.proxy_index, "POST": Api.proxy_create}),
    (re.compile(r"/populate"), {"POST": Api.populate}),
    (
        re.compile(r"/proxies/" + _NAME.format("proxy")),
        {
            "GET": Api.proxy_show,
            "POST": Api.proxy_update,
            "PATCH": Api.proxy_update,
            "DELETE": Api.proxy_delete,
        },
    ),
    (
        re.compile(r"/proxies/" + _NAME.format("proxy") + r"/toxics"),
        {"GET": Api.toxic_index, "POST": Api.toxic_create},
    ),
    (
        re.compile(r"/proxies/" + _NAME.format("proxy") + r"/toxics/" + _NAME.format("toxic")),
        {
            "GET": Api.toxic_show,
            "POST": Api.toxic_update,
            "PATCH": Api.toxic_update,
            "DELETE": Api.toxic_delete,
        },
    ),
    (re.compile(r"/version"), {"GET": Api.version}),
]
