"""Every client-visible error petcd returns, with etcd 3.5's exact text and gRPC code.

This module is the one place error strings live. Server code raises ``EtcdError`` instances
from here; the gRPC adapters turn them into a status with the same code and message, so
clients (etcdctl, clientv3, aetcd) see what they would see from etcd.
"""

from __future__ import annotations

import grpc


class EtcdError(Exception):
    """A request-level error with the gRPC status code and message etcd uses for it."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"EtcdError({self.code.name}, {self.message!r})"


def _e(code: grpc.StatusCode, message: str) -> EtcdError:
    return EtcdError(code, message)


_IA = grpc.StatusCode.INVALID_ARGUMENT
_FP = grpc.StatusCode.FAILED_PRECONDITION
_UN = grpc.StatusCode.UNAVAILABLE

# KV
EMPTY_KEY = _e(_IA, "etcdserver: key is not provided")
KEY_NOT_FOUND = _e(_IA, "etcdserver: key not found")
VALUE_PROVIDED = _e(_IA, "etcdserver: value is provided")
LEASE_PROVIDED = _e(_IA, "etcdserver: lease is provided")
TOO_MANY_OPS = _e(_IA, "etcdserver: too many operations in txn request")
DUPLICATE_KEY = _e(_IA, "etcdserver: duplicate key given in txn request")
COMPACTED = _e(
    grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"
)
FUTURE_REV = _e(
    grpc.StatusCode.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision"
)
NO_SPACE = _e(grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")

# Lease
LEASE_NOT_FOUND = _e(grpc.StatusCode.NOT_FOUND, "etcdserver: requested lease not found")
LEASE_EXIST = _e(_FP, "etcdserver: lease already exists")
LEASE_TTL_TOO_LARGE = _e(grpc.StatusCode.OUT_OF_RANGE, "etcdserver: too large lease TTL")

# Watch
WATCH_CANCELED = _e(grpc.StatusCode.CANCELLED, "etcdserver: watch canceled")

# Membership
MEMBER_EXIST = _e(_FP, "etcdserver: member ID already exist")
PEER_URL_EXIST = _e(_FP, "etcdserver: Peer URLs already exists")
MEMBER_NOT_ENOUGH_STARTED = _e(
    _FP, "etcdserver: re-configuration failed due to not enough started members"
)
MEMBER_BAD_URLS = _e(_IA, "etcdserver: given member URLs are invalid")
MEMBER_NOT_FOUND = _e(grpc.StatusCode.NOT_FOUND, "etcdserver: member not found")
MEMBER_NOT_LEARNER = _e(_FP, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = _e(
    _FP, "etcdserver: can only promote a learner member which is in sync with leader"
)
TOO_MANY_LEARNERS = _e(_FP, "etcdserver: too many learner members in cluster")

# Request limits
REQUEST_TOO_LARGE = _e(_IA, "etcdserver: request is too large")
TOO_MANY_REQUESTS = _e(grpc.StatusCode.RESOURCE_EXHAUSTED, "etcdserver: too many requests")

# Auth
ROOT_USER_NOT_EXIST = _e(_FP, "etcdserver: root user does not exist")
ROOT_ROLE_NOT_EXIST = _e(_FP, "etcdserver: root user does not have root role")
USER_ALREADY_EXIST = _e(_FP, "etcdserver: user name already exists")
USER_EMPTY = _e(_IA, "etcdserver: user name is empty")
USER_NOT_FOUND = _e(_FP, "etcdserver: user name not found")
ROLE_ALREADY_EXIST = _e(_FP, "etcdserver: role name already exists")
ROLE_NOT_FOUND = _e(_FP, "etcdserver: role name not found")
ROLE_EMPTY = _e(_IA, "etcdserver: role name is empty")
AUTH_FAILED = _e(_IA, "etcdserver: authentication failed, invalid user ID or password")
PERMISSION_NOT_GIVEN = _e(_IA, "etcdserver: permission not given")
PERMISSION_DENIED = _e(grpc.StatusCode.PERMISSION_DENIED, "etcdserver: permission denied")
ROLE_NOT_GRANTED = _e(_FP, "etcdserver: role is not granted to the user")
PERMISSION_NOT_GRANTED = _e(_FP, "etcdserver: permission is not granted to the role")
AUTH_NOT_ENABLED = _e(_FP, "etcdserver: authentication is not enabled")
INVALID_AUTH_TOKEN = _e(grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token")
INVALID_AUTH_MGMT = _e(_IA, "etcdserver: invalid auth management")
# etcd 3.5.1 has no gRPC mapping for these two: clients see code Unknown and the raw text.
AUTH_OLD_REVISION = _e(grpc.StatusCode.UNKNOWN, "auth: revision in header is old")
NO_PASSWORD_USER = _e(
    grpc.StatusCode.UNKNOWN, "auth: authentication failed, password was given for no password user"
)

# Server state
NO_LEADER = _e(_UN, "etcdserver: no leader")
NOT_LEADER = _e(_FP, "etcdserver: not leader")
LEADER_CHANGED = _e(_UN, "etcdserver: leader changed")
NOT_CAPABLE = _e(_UN, "etcdserver: not capable")
STOPPED = _e(_UN, "etcdserver: server stopped")
TIMEOUT = _e(_UN, "etcdserver: request timed out")
TIMEOUT_DUE_TO_LEADER_FAIL = _e(
    _UN, "etcdserver: request timed out, possibly due to previous leader failure"
)
TIMEOUT_DUE_TO_CONNECTION_LOST = _e(
    _UN, "etcdserver: request timed out, possibly due to connection lost"
)
TIMEOUT_LEADER_TRANSFER = _e(_UN, "etcdserver: request timed out, leader transfer took too long")
UNHEALTHY = _e(_UN, "etcdserver: unhealthy cluster")
CORRUPT = _e(grpc.StatusCode.DATA_LOSS, "etcdserver: corrupt cluster")
NOT_SUPPORTED_FOR_LEARNER = _e(_UN, "etcdserver: rpc not supported for learner")
BAD_LEADER_TRANSFEREE = _e(_FP, "etcdserver: bad leader transferee")
REQUEST_CANCELED = _e(grpc.StatusCode.CANCELLED, "etcdserver: request canceled")
DEADLINE_EXCEEDED = _e(grpc.StatusCode.DEADLINE_EXCEEDED, "etcdserver: context deadline exceeded")

# Not etcd request errors, but messages an operator reads when a member stops.
MEMBER_REMOVED_EXIT = "the member has been permanently removed from the cluster"

# gofail's texts (its runtime and HTTP endpoint), for failpoints (`petcd.storage.failpoints`).
FAILPOINT_NO_EXIST = "failpoint: failpoint does not exist"
FAILPOINT_DISABLED = "failpoint: failpoint is disabled"
FAILPOINT_BAD_PARSE = "failpoint: could not parse terms"

# gRPC transport-level texts (grpc-go's), for requests that never reach a handler.
UNMARSHAL_PREFIX = "grpc: error unmarshalling request: "
"""grpc-go's status text (code INTERNAL) for a request body that does not decode."""
UNEXPECTED_EOF = "unexpected EOF"
"""Go's io.ErrUnexpectedEOF text: gogo-protobuf's answer to a truncated message."""


def message_too_large(size: int, limit: int) -> EtcdError:
    """grpc-go's RESOURCE_EXHAUSTED for a received message over the server's limit."""
    return _e(grpc.StatusCode.RESOURCE_EXHAUSTED,
              f"grpc: received message larger than max ({size} vs. {limit})")


def unmarshal_error(detail: str) -> EtcdError:
    """INTERNAL "grpc: error unmarshalling request: <detail>" (grpc-go's codes.Internal)."""
    return _e(grpc.StatusCode.INTERNAL, UNMARSHAL_PREFIX + detail)
