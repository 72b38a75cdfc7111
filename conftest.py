"""Root pytest configuration, loaded before any test module of any suite.

petcd's generated stubs and aetcd's bundled ones both define the `etcdserverpb`, `mvccpb`
and `authpb` protobuf packages, and protobuf's default descriptor pool refuses a second
definition of a symbol. Rather than keep the two apart process by process, aetcd is pointed
at petcd's generated modules: the schemas are the same (names, fields and numbers, which is
what wire compatibility means), so aetcd behaves exactly as with its own copies, against
petcd and real etcd alike.
"""

from __future__ import annotations

import sys

from petcd.api.authpb import auth_pb2
from petcd.api.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from petcd.api.mvccpb import kv_pb2

if "aetcd.rpc" not in sys.modules:
    sys.modules.update(
        {
            "aetcd.rpc.auth_pb2": auth_pb2,
            "aetcd.rpc.kv_pb2": kv_pb2,
            "aetcd.rpc.rpc_pb2": rpc_pb2,
            "aetcd.rpc.rpc_pb2_grpc": rpc_pb2_grpc,
        }
    )
