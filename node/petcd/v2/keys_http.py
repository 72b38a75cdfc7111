"""`/v2/keys`: etcd 3.5's v2 keys endpoint on the client port.

Request parsing follows etcd's parseKeyRequest (form values from an urlencoded PUT/POST body
first, then the query string; Go's strconv booleans and unsigned integers; the same error
codes and causes). Writes go through Raft (`V2Server.propose`); GET reads this member's copy,
after a ReadIndex round with `quorum=true`; `wait=true` answers with a chunked stream that ends
after the first matching event (or, with `stream=true`, continues). Answers carry
X-Etcd-Cluster-Id, X-Etcd-Index, X-Raft-Index and X-Raft-Term; bodies are Go-encoded JSON plus
a newline, as etcd's json.Encoder writes them.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes

from petcd import errors
from petcd.http.http1 import JSON, Request, Response, text_error
from petcd.v2 import errors as e2
from petcd.v2.errors import V2Error
from petcd.v2.server import V2Request, V2Server
from petcd.v2.store import clean_path
from petcd.v2.watch import Event, Watcher

PREFIX = "/v2/keys"
METHODS = ("HEAD", "GET", "PUT", "POST", "DELETE")
FORM_TYPE = "application/x-www-form-urlencoded"
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_UINT = re.compile(r"[0-9]+")


class FormError(ValueError):
    """A body that is not a valid urlencoded form (Go's url.ParseQuery error text)."""


def _unescape(s: str) -> str:
    if re.search(r"%(?![0-9A-Fa-f]{2})", s):
        bad = re.search(r"%.{0,2}", s)
        raise FormError(errors.V2_URL_ESCAPE.format(escape=bad.group(0) if bad else "%"))
    return unquote_to_bytes(s.replace("+", " ")).decode("utf-8", "replace")


def parse_form(body: bytes) -> dict[str, list[str]]:
    """Go's url.ParseQuery of a request body (blank values kept)."""
    out: dict[str, list[str]] = {}
    text = body.decode("latin-1")
    for part in text.split("&"):
        if not part:
            continue
        if ";" in part:
            raise FormError(errors.V2_SEMICOLON)
        k, _, v = part.partition("=")
        key = _unescape(k).encode("latin-1", "replace").decode("utf-8", "replace")
        out.setdefault(key, []).append(_unescape(v))
    return out


def _bool(form: dict[str, list[str]], key: str, code: int, cause: str) -> bool:
    vals = form.get(key)
    if not vals:
        return False
    if vals[0] in _TRUE:
        return True
    if vals[0] in _FALSE:
        return False
    raise V2Error(code, cause)


def _uint(form: dict[str, list[str]], key: str, code: int, cause: str) -> int:
    vals = form.get(key)
    if not vals:
        return 0
    if not _UINT.fullmatch(vals[0]) or int(vals[0]) >= 2**64:
        raise V2Error(code, cause)
    return int(vals[0])


def _first(form: dict[str, list[str]], key: str) -> str:
    vals = form.get(key)
    return vals[0] if vals else ""


@dataclass(slots=True)
class KeyRequest:
    """A parsed /v2/keys request."""

    method: str
    path: str
    req: V2Request
    wait: bool
    since: int
    sorted: bool
    quorum: bool
    stream: bool
    no_value: bool


def parse_key_request(r: Request, now_ns: int) -> KeyRequest:
    """etcd's parseKeyRequest; raises V2Error with etcd's code and cause."""
    form: dict[str, list[str]] = {}
    ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
    if r.method in ("POST", "PUT", "PATCH") and ctype == FORM_TYPE:
        try:
            form = parse_form(r.body)
        except FormError as exc:
            raise V2Error(e2.INVALID_FORM, str(exc)) from None
    for k, vs in r.query.items():
        form.setdefault(k, []).extend(vs)
    raw_path = unquote(r.path)
    if not raw_path.startswith(PREFIX):
        raise V2Error(e2.INVALID_FORM, errors.V2_KEY_PREFIX)
    path = clean_path(raw_path[len(PREFIX):])
    prev_index = _uint(
        form, "prevIndex", e2.INDEX_NAN, errors.V2_INVALID_VALUE_QUOTED.format(name="prevIndex")
    )
    since = _uint(
        form, "waitIndex", e2.INDEX_NAN, errors.V2_INVALID_VALUE_QUOTED.format(name="waitIndex")
    )
    flags = {}
    for name in ("recursive", "sorted", "wait", "dir", "quorum", "stream"):
        flags[name] = _bool(
            form, name, e2.INVALID_FIELD, errors.V2_INVALID_VALUE_QUOTED.format(name=name)
        )
    if flags["wait"] and r.method != "GET":
        raise V2Error(e2.INVALID_FIELD, errors.V2_WAIT_NOT_GET)
    prev_value = _first(form, "prevValue")
    if "prevValue" in form and prev_value == "":
        raise V2Error(e2.PREV_VALUE_REQUIRED, errors.V2_PREV_VALUE_EMPTY)
    no_value = _bool(form, "noValueOnSuccess", e2.INVALID_FIELD,
                     errors.V2_INVALID_VALUE_QUOTED.format(name="noValueOnSuccess"))
    ttl: int | None = None
    if _first(form, "ttl"):
        ttl = _uint(form, "ttl", e2.TTL_NAN, errors.V2_INVALID_VALUE_QUOTED.format(name="ttl"))
    prev_exist: bool | None = None
    if "prevExist" in form:
        prev_exist = _bool(
            form, "prevExist", e2.INVALID_FIELD, errors.V2_INVALID_VALUE.format(name="prevExist")
        )
    refresh = False
    if "refresh" in form:
        refresh = _bool(
            form, "refresh", e2.INVALID_FIELD, errors.V2_INVALID_VALUE.format(name="refresh")
        )
        if refresh:
            if "value" in form and _first(form, "value") != "":
                raise V2Error(e2.REFRESH_VALUE, errors.V2_REFRESH_VALUE)
            if ttl is None:
                raise V2Error(e2.REFRESH_TTL_REQUIRED, errors.V2_REFRESH_NO_TTL)
    req = V2Request(
        method=r.method, path=path, val=_first(form, "value"), dir=flags["dir"],
        prev_value=prev_value, prev_index=prev_index, prev_exist=prev_exist,
        recursive=flags["recursive"], refresh=refresh,
        expiration=now_ns + ttl * 1_000_000_000 if ttl is not None else 0,
    )
    return KeyRequest(r.method, path, req, flags["wait"], since, flags["sorted"],
                      flags["quorum"], flags["stream"], no_value)


class KeysHandler:
    """Serves /v2/keys and /v2/keys/... for one member."""

    def __init__(self, v2: V2Server) -> None:
        self.v2 = v2

    def _cluster_header(self) -> list[tuple[str, str]]:
        return [("X-Etcd-Cluster-Id", f"{self.v2.server.cluster_id:x}")]

    def _raft_headers(self, etcd_index: int) -> list[tuple[str, str]]:
        s = self.v2.server
        return [
            *self._cluster_header(),
            ("X-Etcd-Index", str(etcd_index)),
            ("X-Raft-Index", str(s.applied_index)),
            ("X-Raft-Term", str(s.term)),
        ]

    def error(self, err: V2Error) -> Response:
        headers = [*self._cluster_header(), ("X-Etcd-Index", str(err.index))]
        return Response(err.status, (err.to_json() + "\n").encode(), JSON, headers)

    def event(self, ev: Event, no_value: bool) -> Response:
        no_value = no_value and ev.action in ("set", "compareAndSwap", "create", "update")
        body = (ev.to_json(no_value) + "\n").encode()
        return Response(201 if ev.created else 200, body, JSON, self._raft_headers(ev.etcd_index))

    async def __call__(self, r: Request) -> Response:
        if r.method not in METHODS:
            return text_error(405, errors.V2_METHOD_NOT_ALLOWED, [("Allow", ",".join(METHODS))])
        try:
            kr = parse_key_request(r, time.time_ns())
            return await self._serve(kr)
        except V2Error as err:
            return self.error(err)
        except errors.EtcdError as err:
            return self.error(V2Error(e2.RAFT_INTERNAL, err.message, 0))

    async def _serve(self, kr: KeyRequest) -> Response:
        store = self.v2.store
        if kr.method in ("GET", "HEAD"):
            if kr.wait and kr.method == "GET":
                w = store.watch(kr.path, kr.req.recursive, kr.stream, kr.since)
                return Response(200, _watch_body(w), JSON, self._raft_headers(w.start_index))
            if kr.quorum:
                await self.v2.server.linearizable_read()
            ev = store.get(kr.path, kr.req.recursive, kr.sorted)
            return self.event(ev, False)
        ev2 = await self.v2.propose(kr.req)
        if ev2 is None:
            raise V2Error(e2.RAFT_INTERNAL, errors.V2_NO_EVENT, 0)
        return self.event(ev2, kr.no_value)


async def _watch_body(w: Watcher) -> AsyncIterator[bytes]:
    """The events of a v2 watch, one JSON document each; ends after one unless streaming."""
    try:
        while True:
            ev = await w.next()
            if ev is None:
                return
            yield (ev.to_json() + "\n").encode()
            if not w.stream:
                return
    finally:
        w.remove()
