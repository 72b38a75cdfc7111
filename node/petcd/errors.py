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

# Lock and Election services (clientv3/concurrency and v3election's texts; etcd 3.5.1 maps
# none of them to a gRPC code: clients see Unknown and the raw text).
_UK = grpc.StatusCode.UNKNOWN
SESSION_EXPIRED = _e(_UK, "mutex: session is expired")
ELECTION_NOT_LEADER = _e(_UK, "election: not leader")
ELECTION_NO_LEADER = _e(_UK, "election: no leader")
MISSING_LEADER_KEY = _e(_UK, '"leader" field must be provided')
LOST_WATCHER = _e(_UK, "lost watcher waiting for delete")

# Watch stream cancel reasons (mvcc's, sent as WatchResponse.cancel_reason).
WATCH_EMPTY_RANGE = "mvcc: watcher range is empty"
WATCH_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream"

# Not etcd request errors, but messages an operator reads when a member stops.
MEMBER_REMOVED_EXIT = "the member has been permanently removed from the cluster"

# gofail's texts (its runtime and HTTP endpoint), for failpoints (`petcd.storage.failpoints`).
FAILPOINT_NO_EXIST = "failpoint: failpoint does not exist"
FAILPOINT_DISABLED = "failpoint: failpoint is disabled"
FAILPOINT_BAD_PARSE = "failpoint: could not parse terms"

# Peer transport refusals (rafthttp's error texts, carried in petcd's handshake reply).
PEER_CLUSTER_ID_MISMATCH = "cluster ID mismatch"
PEER_INCOMPATIBLE_VERSION = "incompatible version"
PEER_REMOVED_MEMBER = "removed member"
PEER_TO_MISMATCH = "to field mismatch"

# Configuration (etcdmain / embed.Config.Validate / VerifyBootstrap texts). `{name}` fields
# are filled with str.format by petcd.config; the rest of each text is etcd's.
CFG_CONFLICT_BOOTSTRAP_FLAGS = (
    'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", '
    '"discovery" or "discovery-srv"'
)
CFG_UNSET_ADVERTISE_CLIENT_URLS = (
    "--advertise-client-urls is required when --listen-client-urls is set explicitly"
)
CFG_ENV_CONFLICT = (
    "conflicting environment variable is shadowed by corresponding command-line flag "
    "(either unset environment variable or disable flag))"
)
CFG_INVALID_SETTING = 'invalid value "{raw}" for {key}'
CFG_INVALID_ENV = 'invalid value "{raw}" for {key}: {error}'
CFG_INITIAL_CLUSTER = "error setting up initial cluster: {error}"
CFG_NOT_A_FLAG = "'{arg}' is not a valid flag"
CFG_OPEN_FILE = "open {path}: {error}"
CFG_BIND_NOT_IP = "expected IP in URL for binding ({url})"
CFG_EMPTY_HOST = '--{flag} "{urls}" must be "host:port" (unexpected empty host ({url}))'
CFG_UNRECOGNIZED_LEVEL = 'unrecognized level: "{level}"'
CFG_CLUSTER_STATE = 'unexpected clusterState "{state}"'
CFG_HEARTBEAT_ZERO = "--heartbeat-interval must be >0 (set to {ms}ms)"
CFG_ELECTION_ZERO = "--election-timeout must be >0 (set to {ms}ms)"
CFG_ELECTION_TOO_SHORT = (
    "--election-timeout[{election}ms] should be at least as 5 times as "
    "--heartbeat-interval[{heartbeat}ms]"
)
CFG_ELECTION_TOO_LONG = (
    "--election-timeout[{election}ms] is too long, and should be set less than {max}ms"
)
CFG_AUTO_COMPACTION_MODE = 'unknown auto-compaction-mode "{mode}"'
CFG_LOCAL_NAME_MISSING = (
    'couldn\'t find local name "{name}" in the initial cluster configuration'
)
CFG_DUPLICATE_URL = "initial cluster {cluster} has duplicate url"
CFG_ADVERTISE_MISSING = (
    "--initial-cluster has {missing} but missing from "
    "--initial-advertise-peer-urls={advertise} ({mismatch})"
)
CFG_CLUSTER_MISSING = (
    "--initial-advertise-peer-urls has {extra} but missing from --initial-cluster={own}"
)
CFG_RESOLVE_MISMATCH = "failed to resolve {advertise} to match --initial-cluster={own} ({mismatch})"
CFG_NO_CLUSTER = "initial cluster unset and no discovery URL found"
CFG_DISCOVERY_ON_JOIN = "discovery URL should not be set when joining existing initial cluster"

# Discovery (etcd 3.5's v2discovery texts).
DISCOVERY_INVALID_URL = "discovery: invalid URL"
DISCOVERY_BAD_SIZE_KEY = "discovery: size key is bad"
DISCOVERY_SIZE_NOT_FOUND = "discovery: size key not found"
DISCOVERY_DUPLICATE_ID = "discovery: found duplicate id"
DISCOVERY_DUPLICATE_NAME = "discovery: found duplicate name"
DISCOVERY_FULL_CLUSTER = "discovery: cluster is full"
DISCOVERY_TOO_MANY_RETRIES = "discovery: too many retries"
DISCOVERY_BAD_ENDPOINT = "discovery: bad discovery endpoint"
DISCOVERY_DUPLICATE_URL = "discovery cluster {cluster} has duplicate url"

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
