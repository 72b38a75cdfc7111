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


# Go's flag package (FlagSet.Parse's texts), for petcd.flags' command-line parser.
FLAG_BAD_SYNTAX = "bad flag syntax: {arg}"
FLAG_NOT_DEFINED = "flag provided but not defined: -{name}"
FLAG_NEEDS_ARGUMENT = "flag needs an argument: -{name}"
FLAG_INVALID_VALUE = 'invalid value "{value}" for flag -{name}: {error}'

# Go's strconv / flag value texts (the reasons inside FLAG_INVALID_VALUE and CFG_INVALID_*).
VALUE_PARSE_ERROR = "parse error"
VALUE_OUT_OF_RANGE = "value out of range"
VALUE_INVALID = "invalid value"
PARSE_UINT_SYNTAX = 'strconv.ParseUint: parsing "{text}": invalid syntax'
PARSE_UINT_RANGE = 'strconv.ParseUint: parsing "{text}": value out of range'

# Go's net.SplitHostPort / url.Parse and etcd's types.NewURLs texts (petcd.goflag).
ADDR_MISSING_BRACKET = "address {hostport}: missing ']' in address"
ADDR_MISSING_PORT = "address {hostport}: missing port in address"
ADDR_TOO_MANY_COLONS = "address {hostport}: too many colons in address"
ADDR_UNEXPECTED_BRACKET = "address {hostport}: unexpected ']' in address"
URL_PARSE = 'parse "{text}": {error}'
URL_BAD_SCHEME = "URL scheme must be http, https, unix, or unixs: {text}"
URL_NOT_HOST_PORT = 'URL address does not have the form "host:port": {text}'
URL_HAS_PATH = "URL must not contain a path: {text}"
URL_NONE_GIVEN = "no valid URLs given"

# Config file (etcd's sigs.k8s.io/yaml + encoding/json prefixes; the detail after them is
# petcd's, since its YAML reader is not Go's).
CFG_FILE_YAML = "error converting YAML to JSON: {error}"
CFG_FILE_JSON = "error unmarshaling JSON: {error}"
CFG_FILE_NOT_MAPPING = "config file is not a mapping"
CFG_FILE_FIELD = "{name}: {error}"
CFG_FILE_DURATION = "durations are integer nanoseconds in config files"
# petcd.yamlsubset's reasons (shown after CFG_FILE_YAML).
YAML_UNEXPECTED_LIST_ITEM = "line {lineno}: unexpected list item"
YAML_EXPECTED_KEY_VALUE = "line {lineno}: expected 'key: value'"
YAML_UNEXPECTED_INDENT = "line {lineno}: unexpected indentation"

# Member IDs (etcd's membership texts) and bootstrap.
MEMBER_ID_DUPLICATE = "member exists with identical ID {id}"
MEMBER_ID_ZERO = "cannot use 0 as member id"
BOOT_DATA_DIR = "cannot access data directory: {error}"
BOOT_FORCE_NEW_UNREADABLE = "--force-new-cluster: unreadable Raft log: {error}"
BOOT_NO_MATCHING_PEER = (
    "error validating peerURLs: no member of the existing cluster has peer URLs "
    "{urls} (add it with 'etcdctl member add' first)"
)
BOOT_FORCE_NEW_REMOVED = (
    "member {id} has been permanently removed from the cluster; "
    "--force-new-cluster cannot bring it back"
)
BOOT_NO_LOCAL_ID = "data dir {data_dir} has no readable local member ID: {error}"

# etcdutl snapshot restore texts (and cobra's "Error: " prefix). SNAP_USAGE is written as is
# (its "{output dir}" is etcd's usage text, not a format field).
SNAP_USAGE = "Usage: petcd snapshot restore <filename> --data-dir {output dir} [options]"
SNAP_ONE_ARG = "snapshot restore requires exactly one argument"
SNAP_ERROR_LINE = "Error: {error}"
SNAP_DATA_DIR_EXISTS = 'data-dir "{data_dir}" not empty or could not be read'
SNAP_WAL_DIR_EXISTS = 'wal-dir "{wal_dir}" exists'

# Go net/http server texts: the status lines/bodies sent before closing a bad connection.
HTTP_BAD_REQUEST = "400 Bad Request"
HTTP_MISSING_HOST = "400 Bad Request: missing required Host header"
HTTP_TOO_MANY_HOSTS = "400 Bad Request: too many Host headers"
HTTP_HEADER_TOO_LARGE = "431 Request Header Fields Too Large"
HTTP_NOT_FOUND = "404 page not found"

# Protobuf decoding (gogo-protobuf's / upb's texts), for petcd.api.deep.
PROTO_ILLEGAL_WIRE_TYPE = "illegal wireType"
PROTO_TOO_DEEP = "Error parsing message: Exceeded upb_DecodeOptions_MaxDepth"
FLAG_INVALID_BOOL = 'invalid boolean value "{value}" for -{name}: {error}'
PEER_JSON_BAD_CHAR = "invalid character in JSON: {error}"
PEER_JSON_NOT_STRINGS = "json: cannot unmarshal peerURLs into []string"
CLIENT_TLS_MISSING = "https:// client URLs need --cert-file and --key-file"

# Snapshot files (etcdutl's hash-check texts; the format texts are petcd's own file layout).
SNAP_HASH_MISMATCH = "expected sha256 [...]; got [...]: snapshot file corrupted"
SNAP_HASH_MISSING = "snapshot missing hash but --skip-hash-check=false"
SNAP_NOT_SNAPSHOT = "not a petcd snapshot file"
SNAP_TRUNCATED = "truncated petcd snapshot file"
SNAP_NOT_BACKEND = "not a petcd backend snapshot"
SNAP_CHECKSUM = "snapshot checksum mismatch"
SNAP_TRUNCATED_RECORD = "truncated snapshot record"
SNAP_CORRUPT_RECORD = "corrupt snapshot record"

# TLS configuration (etcd's transport.TLSInfo / embed texts and Go's os / crypto/tls texts).
TLS_KEY_CERT_PAIR = "KeyFile and CertFile must both be present[key: {key}, cert: {cert}]"
TLS_CLIENT_KEY_CERT_PAIR = (
    "ClientKeyFile and ClientCertFile must both be present or both absent: "
    "key: {key}, cert: {cert}]"
)
TLS_CN_AND_HOSTNAME = (
    'AllowedCN and AllowedHostname are mutually exclusive (cn="{cn}", hostname="{hostname}")'
)
TLS_HTTPS_NEEDS_CERT = "TLS key/cert ({flags}) must be provided for {side} url {url} with HTTPS scheme"
TLS_SELF_CERT_VALIDITY = "selfSignedCertValidity is invalid,it should be greater than 0"
TLS_NO_SUCH_FILE = "open {path}: no such file or directory"
TLS_LOAD_KEY_PAIR = "tls: failed to load key pair {cert}, {key}: {error}"
TLS_LOAD_CA = "failed to load trusted CA file {ca}: {error}"
TLS_OPEN = "open {path}: {error}"
TLS_PARSE_CRL = "failed to parse CRL {path}: {error}"

# DNS SRV discovery (etcd's client/pkg/srv texts and Go's net lookup texts).
SRV_LOOKUP = "lookup {name} : {error}"
SRV_LOOKUP_HOST = "lookup {name}: {error}"
SRV_QUERY = "error querying DNS SRV records for _{service} {error}"
SRV_NO_RECORDS = "no records"
SRV_NO_RECORDS_FOR = "no SRV records for {domain}"
SRV_SCHEME_MISMATCH = (
    "bootstrap at {scheme}://{host} from DNS for {service} has scheme "
    "mismatch with expected peer {local}"
)
SRV_LOCAL_MISSING = 'cannot find local etcd member "{name}" in SRV records'
SRV_LOOKUP_ERRORS = "dns lookup errors: {first} and {second}"

# v2 keys API (etcd's v2http / v2store detail texts; the error codes live in petcd.v2.errors).
V2_URL_ESCAPE = 'invalid URL escape "{escape}"'
V2_SEMICOLON = "invalid semicolon separator in query"
V2_KEY_PREFIX = "incorrect key prefix"
V2_INVALID_VALUE_QUOTED = 'invalid value for "{name}"'
V2_INVALID_VALUE = "invalid value for {name}"
V2_WAIT_NOT_GET = '"wait" can only be used with GET requests'
V2_PREV_VALUE_EMPTY = '"prevValue" cannot be empty'
V2_REFRESH_VALUE = "A value was provided on a refresh"
V2_REFRESH_NO_TTL = "No TTL value set"
V2_NO_EVENT = "received response with no Event/Watcher"
V2_NOT_A_FILE = "nodePath /1{path} : Not a file ()"
V2_HISTORY_CLEARED = "the requested history has been cleared [{start}/{index}]"
V2_METHOD_NOT_ALLOWED = "Method Not Allowed"

# Joining an existing cluster (etcd's GetClusterFromRemotePeers text).
JOIN_NO_CLUSTER_INFO = "could not retrieve cluster information from the given URLs"

# gofail's panic action, written to stderr before the process exits.
FAILPOINT_PANIC = "panic: failpoint panic: {name}"
V2_UNKNOWN_METHOD = "etcdserver: unknown method"

# Go's encoding/json and encoding/base64 texts, for the gRPC gateway's request decoding.
JSON_BAD_NUMBER = "invalid character 'I' in numeric literal"
JSON_BAD_VALUE_START = "invalid character '{char}' looking for beginning of value"
JSON_UNMARSHAL_TYPE = "json: cannot unmarshal {what} into Go value of type {go_type}"
JSON_UNKNOWN_ENUM = "unknown value {value} for enum {enum}"
BASE64_ILLEGAL = "illegal base64 data at input byte {offset}"

# petcd's own start-up texts (no etcd counterpart: petcd-specific settings and limits).
COMPACTION_RETENTION = "invalid auto-compaction-retention {retention!r}"
FAILPOINT_BAD_ENTRY = 'bad failpoint "{entry}"'
FAILPOINT_ENV_ENTRY = "{env}: {entry!r}: {error}"
PEER_LISTEN_NEEDS_TLS = "peer listen URL {url!r} needs --peer-cert-file/key"
PEER_LISTEN_UNSUPPORTED = "unsupported peer listen URL {url!r}"
DISCOVERY_NO_PROXY = "{error}; petcd cannot run as a v2 proxy (--discovery-fallback=proxy)"
DISCOVERY_REGISTER_STATUS = "unexpected status {status} registering self"
DISCOVERY_WAIT_STATUS = "unexpected status {status} while waiting for peers"
SNAP_FILE_SHRANK = "snapshot file shrank"
