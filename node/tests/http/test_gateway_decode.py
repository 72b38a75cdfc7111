"""The gateway's request decoding and error framing (`petcd.http.gateway`), as pure functions:
Go json.Decoder stream semantics, grpc-gateway's metadata from headers, stream error lines."""

from __future__ import annotations

import json

import grpc
import pytest
from petcd.api.etcdserverpb import rpc_pb2 as pb
from petcd.http import gateway


def test_one_value_per_request_and_trailing_data_ignored() -> None:
    r = gateway.decode_one(b'  {"key":"YQ==","bogus":[1]} garbage', pb.RangeRequest)
    assert isinstance(r, pb.RangeRequest) and r.key == b"a"
    assert gateway.decode_one(b"", pb.RangeRequest) == pb.RangeRequest()
    assert gateway.decode_one(b" \r\n\t", pb.RangeRequest) == pb.RangeRequest()


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"key":', "unexpected EOF"),
        (b'{"key":"YQ=="', "unexpected EOF"),
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b"{x}", "invalid character 'x' looking for beginning of object key string"),
        (b'{"limit":"x"}', "invalid character 'x' looking for beginning of value"),
    ],
)
def test_go_wording_of_common_errors(body: bytes, text: str) -> None:
    with pytest.raises(gateway.DecodeError) as exc:
        gateway.decode_one(body, pb.RangeRequest)
    assert str(exc.value) == text


def test_non_object_and_bad_utf8_are_decode_errors() -> None:
    for body in (b"[]", b"3", b'"s"', b"\xff{}"):
        with pytest.raises(gateway.DecodeError):
            gateway.decode_one(body, pb.RangeRequest)


def test_stream_of_objects() -> None:
    msgs = gateway.decode_stream(b'{"ID":1}{"ID":"2"}\n {"ID":3}', pb.LeaseKeepAliveRequest)
    assert [m.ID for m in msgs] == [1, 2, 3]  # type: ignore[attr-defined]
    # A bad object after good ones ends the stream there; a bad first one is an error.
    msgs = gateway.decode_stream(b'{"ID":1}{"ID":"x"}{"ID":3}', pb.LeaseKeepAliveRequest)
    assert [m.ID for m in msgs] == [1]  # type: ignore[attr-defined]
    with pytest.raises(gateway.DecodeError):
        gateway.decode_stream(b'{"ID":"x"}{"ID":1}', pb.LeaseKeepAliveRequest)
    assert gateway.decode_stream(b"", pb.LeaseKeepAliveRequest) == []


def test_metadata_from_headers() -> None:
    md = gateway.metadata_of({
        "authorization": "tok.1",
        "grpc-metadata-token": "tok.2",
        "grpc-metadata-grpc-timeout": "1S",  # reserved: dropped
        "grpc-metadata-x-bin": "abc",  # binary keys need bytes: dropped
        "grpc-metadata-bad key": "v",
        "grpc-metadata-uni": "\u00e9",
        "content-type": "application/json",
    })
    assert md == (("authorization", "tok.1"), ("token", "tok.2"))


def test_error_framing() -> None:
    r = gateway.error_response(grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")
    assert r.status == 403
    assert r.body == (b'{"error":"etcdserver: permission denied","code":7,'
                      b'"message":"etcdserver: permission denied"}')
    line = gateway.stream_error_line(grpc.StatusCode.UNKNOWN, "auth: permission denied")
    assert line.endswith(b"\n")
    assert json.loads(line) == {"error": {"grpc_code": 2, "http_code": 500,
                                          "message": "auth: permission denied",
                                          "http_status": "Internal Server Error"}}


def test_routes_cover_etcd_351_bindings() -> None:
    routes = gateway.route_table()
    assert routes["/v3/kv/lease/revoke"].method == "/etcdserverpb.Lease/LeaseRevoke"
    assert routes["/v3/maintenance/hash"].method == "/etcdserverpb.Maintenance/Hash"
    assert "/v3/maintenance/hashkv" not in routes  # etcd 3.5.1 has no such binding
    assert routes["/v3/watch"].client_streaming and routes["/v3/watch"].server_streaming
    assert routes["/v3/election/observe"].server_streaming
    assert not routes["/v3/election/observe"].client_streaming
    assert routes["/v3/auth/user/changepw"].method == "/etcdserverpb.Auth/UserChangePassword"
    assert len([p for p in routes if p.startswith("/v3/auth/")]) == 17
