"""Request bodies the gRPC-gateway refuses (issue 15, finding 4): Go's encoding/base64 and
encoding/json decide, and the answer is 400 `{"error", "code": 3, "message"}` with Go's text;
a request over the gRPC server's receive limit is 429 with grpc-go's text.

Expected texts are etcd 3.5.1's (measured with raw bodies against `.venv/bin/etcd`). etcd 3.4
(older golang/protobuf jsonpb) names enum types its own way (`RangeRequest_SortOrder`) and
quotes unknown enum names once; those rows carry its text too.
"""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.cluster import Cluster

TIMEOUT_S = 15
RANGE = "/v3/kv/range"
TXN = "/v3/kv/txn"


def _post(url: str, path: str, body: bytes) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                      timeout=TIMEOUT_S)
    try:
        conn.request("POST", path, body=body)
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def _err(text: str, code: int = 3) -> dict[str, Any]:
    return {"error": text, "code": code, "message": text}


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


_UNMARSHAL = "json: cannot unmarshal {} into Go value of type {}"
CASES: list[tuple[str, bytes, str, str | None]] = [
    # (path, body, etcd 3.5.1's text, etcd 3.4's text if it differs)
    (RANGE, b'{"key":"YQ="}', "illegal base64 data at input byte 3", None),
    (RANGE, b'{"key":"YQ"}', "illegal base64 data at input byte 0", None),
    (RANGE, b'{"key":"YQ==YQ=="}', "illegal base64 data at input byte 4", None),
    (RANGE, b'{"key":"YQ==="}', "illegal base64 data at input byte 4", None),
    (RANGE, b'{"key":"=YQ="}', "illegal base64 data at input byte 0", None),
    (RANGE, b'{"key":"YQ=a"}', "illegal base64 data at input byte 2", None),
    (RANGE, b'{"key":"_-"}', "illegal base64 data at input byte 0", None),
    (RANGE, b'{"key":"\xc3\xa9YQ=="}', "illegal base64 data at input byte 0", None),
    (TXN, b'{"compare":[{"key":"YQ==","target":"VALUE","result":"EQUAL","value":"YQ="}]}',
     "illegal base64 data at input byte 3", None),
    (TXN, b'{"success":[{"request_put":{"key":"YQ=","value":"YQ=="}}]}',
     "illegal base64 data at input byte 3", None),
    (RANGE, b'{"key":5}', _UNMARSHAL.format("number", "[]uint8"), None),
    (RANGE, b'{"key":true}', _UNMARSHAL.format("bool", "[]uint8"), None),
    (RANGE, b'{"key":{}}', _UNMARSHAL.format("object", "[]uint8"), None),
    (RANGE, b'{"key":[256]}', _UNMARSHAL.format("number 256", "uint8"), None),
    (RANGE, b'{"key":["a"]}', _UNMARSHAL.format("string", "uint8"), None),
    (RANGE, b"5", _UNMARSHAL.format("number", "map[string]json.RawMessage"), None),
    (RANGE, b"[]", _UNMARSHAL.format("array", "map[string]json.RawMessage"), None),
    (RANGE, b'{"limit":1.5}', _UNMARSHAL.format("number 1.5", "int64"), None),
    (RANGE, b'{"limit":"1.5"}', _UNMARSHAL.format("number 1.5", "int64"), None),
    (RANGE, b'{"limit":1e3}', _UNMARSHAL.format("number 1e3", "int64"), None),
    (RANGE, b'{"limit":99999999999999999999}',
     _UNMARSHAL.format("number 99999999999999999999", "int64"), None),
    (RANGE, b'{"limit":true}', _UNMARSHAL.format("bool", "int64"), None),
    (RANGE, b'{"limit":""}', "unexpected end of JSON input", None),
    (RANGE, b'{"limit":"abc"}', "invalid character 'a' looking for beginning of value", None),
    (RANGE, b'{"limit":"\\"1\\""}', "invalid character '\\\\' looking for beginning of value",
     None),
    (RANGE, b'{"serializable":"true"}', _UNMARSHAL.format("string", "bool"), None),
    (RANGE, b'{"serializable":1}', _UNMARSHAL.format("number", "bool"), None),
    # jsonpb visits fields in declaration order: key (1) is reported before limit (3).
    (RANGE, b'{"limit":true,"key":5}', _UNMARSHAL.format("number", "[]uint8"), None),
    (RANGE, b'{"sort_order":"BOGUS"}',
     'unknown value "\\"BOGUS\\"" for enum etcdserverpb.RangeRequest.SortOrder',
     'unknown value "BOGUS" for enum etcdserverpb.RangeRequest_SortOrder'),
    (RANGE, b'{"sort_order":true}', _UNMARSHAL.format("bool", "protoreflect.EnumNumber"),
     _UNMARSHAL.format("bool", "etcdserverpb.RangeRequest_SortOrder")),
    (TXN, b'{"compare":{}}', _UNMARSHAL.format("object", "[]json.RawMessage"), None),
    (TXN, b'{"compare":[5]}', _UNMARSHAL.format("number", "map[string]json.RawMessage"), None),
    (TXN, b'{"success":[{"requestPut":{"key":"YQ==","lease":"x"}}]}',
     "invalid character 'x' looking for beginning of value", None),
    # Syntax errors: Go's scanner texts, "unexpected EOF" for a truncated body.
    (RANGE, b'{"key":', "unexpected EOF", None),
    (RANGE, b"{", "unexpected EOF", None),
    (RANGE, b"x", "invalid character 'x' looking for beginning of value", None),
    (RANGE, b'{"key":"YQ==",}',
     "invalid character '}' looking for beginning of object key string", None),
    (RANGE, b'{"key":"YQ==" "limit":1}',
     "invalid character '\"' after object key:value pair", None),
    (RANGE, b'{"key" 1}', "invalid character '1' after object key", None),
    (RANGE, b"[1,2 3]", "invalid character '3' after array element", None),
    (RANGE, b'{"key":"YQ=\n="}', "invalid character '\\n' in string literal", None),
    (RANGE, b'{"key":tru}', "invalid character '}' in literal true (expecting 'e')", None),
    (RANGE, b'{"key":NaN}', "invalid character 'N' looking for beginning of value", None),
    (RANGE, b'{"key":-}', "invalid character '}' in numeric literal", None),
    (RANGE, b'{"limit":1.}', "invalid character '}' after decimal point in numeric literal",
     None),
    (RANGE, b'{"key":"\\x"}', "invalid character 'x' in string escape code", None),
    (RANGE, b"\xff", "invalid character '\u00ff' looking for beginning of value", None),
]


@pytest.mark.parametrize(("path", "body", "text", "text_34"), CASES,
                         ids=[f"{p.rsplit('/', 1)[1]}:{b[:40]!r}" for p, b, _, _ in CASES])
def test_refused_body(target: str, cluster: Cluster, path: str, body: bytes, text: str,
                      text_34: str | None) -> None:
    if target == "etcd-3.4" and text_34 is not None:
        text = text_34
    status, doc = _post(cluster.members[0].client_url, path, body)
    assert (status, doc) == (400, _err(text))


def test_badly_padded_key_writes_nothing(cluster: Cluster, prefix: str) -> None:
    url = cluster.members[0].client_url
    key = _b64(f"{prefix}a")
    bad = key.rstrip("=") + "=" if key.endswith("==") else key + "="
    status, doc = _post(url, "/v3/kv/put", json.dumps({"key": bad, "value": "YQ=="}).encode())
    assert status == 400 and doc["code"] == 3
    assert doc["error"].startswith("illegal base64 data at input byte ")
    status, doc = _post(url, RANGE, json.dumps({"key": _b64(prefix), "range_end":
                                                _b64(prefix + "\xff")}).encode())
    assert status == 200 and "kvs" not in doc


def test_accepted_bodies(cluster: Cluster, prefix: str) -> None:
    """What Go accepts that a strict decoder might not: trailing bits, byte arrays, nulls,
    anything after the first value, string integers with spaces, the JSON name winning."""
    url = cluster.members[0].client_url
    key = _b64(f"{prefix}k")
    for body in [f'{{"key":"{key}","value":"YW=="}}', f'{{"key":"{key}","value":"Y\\nQ=="}}',
                 f'{{"key":"{key}","value":[97]}}']:
        status, doc = _post(url, "/v3/kv/put", body.encode())
        assert status == 200, doc
    status, doc = _post(url, RANGE, f'{{"key":"{key}","limit":" 1","serializable":null}} x'
                        .encode())
    assert status == 200 and doc["kvs"][0]["value"] == "YQ==" and doc["count"] == "1"
    # sortOrder (the JSON name) is read after sort_order and wins, so BOGUS is never parsed.
    status, doc = _post(url, RANGE, f'{{"key":"{key}","sortOrder":"DESCEND",'
                        f'"sort_order":"BOGUS"}}'.encode())
    assert status == 200, doc


@pytest.mark.parametrize(("size", "status"), [(2 * 1024 * 1024 - 10, 400),
                                              (2 * 1024 * 1024, 429), (3_000_000, 429)])
def test_request_over_grpc_receive_limit(cluster: Cluster, size: int, status: int) -> None:
    """The decoded request, not the body, meets grpc's 2 MiB receive limit (a 3 MB value is
    a 4 MB body); below it etcd's own size check answers."""
    value = base64.b64encode(b"x" * size).decode()
    got, doc = _post(cluster.members[0].client_url, "/v3/kv/put",
                     json.dumps({"key": "YQ==", "value": value}).encode())
    if status == 400:
        assert (got, doc) == (400, _err("etcdserver: request is too large"))
        return
    # The message: key "a" (3 bytes) and the value's tag and 4-byte length.
    text = f"grpc: received message larger than max ({size + 8} vs. 2097152)"
    assert (got, doc) == (429, _err(text, 8))
