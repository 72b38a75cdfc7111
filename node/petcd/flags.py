"""etcd 3.5's server flag table and a Go-``flag``-compatible command-line parser.

* :data:`FLAGS`: every server flag (name, value kind, ``--help`` default, group). The
  :class:`petcd.config.Config` dataclass has one field per flag (``-`` -> ``_``) whose default
  is the parsed table default (``node/tests/test_config.py`` fails on drift);
* :func:`parse_command_line` parses argv as Go's ``flag.FlagSet.Parse`` would;
* :func:`config_file_values` maps an etcd YAML config file onto the same table.

The value parsers (Go's semantics and error texts) are in :mod:`petcd.goflag`; the YAML reader
in :mod:`petcd.yamlsubset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from petcd import errors
from petcd.goflag import (
    ValueParseError,
    flag_to_env,
    parse_bool,
    parse_duration,
    parse_int,
    parse_uint,
    parse_urls,
)
from petcd.yamlsubset import load_yaml


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """One server flag: ``kind`` selects the parser; ``default`` is the raw default, which
    parses (``convert``) to the default of the Config field; ``--help`` shows ``shown`` when
    set (a default derived later, such as ``${name}.etcd``), else ``default``."""

    name: str
    kind: str
    default: str
    help: str
    group: str
    choices: tuple[str, ...] = ()
    shown: str = ""

    @property
    def attr(self) -> str:
        """Config attribute this flag sets (``-`` -> ``_``)."""
        return self.name.replace("-", "_")

    @property
    def is_bool(self) -> bool:
        return self.kind in ("bool", "ignored")

    def default_value(self) -> object:
        """The parsed ``default`` (what the Config field defaults to); an empty URL list
        default is the empty list (parsing "" as a value given on the command line fails)."""
        if self.kind == "urls" and not self.default:
            return []
        return self.convert(self.default)

    def convert(self, raw: str) -> object:
        """Parse ``raw`` for this flag; ValueParseError carries Go/etcd's reason text."""
        if self.kind == "str":
            return raw
        if self.kind == "bool":
            return parse_bool(raw)
        if self.kind == "uint":
            return parse_uint(raw)
        if self.kind == "int":
            return parse_int(raw)
        if self.kind == "duration":
            return parse_duration(raw)
        if self.kind == "urls":
            return parse_urls(raw)
        if self.kind == "choice":
            if raw not in self.choices:
                raise ValueParseError(errors.VALUE_INVALID)
            return raw
        if self.kind == "strings":
            return sorted({s for s in raw.split(",") if s}) if raw else []
        return None  # ignored


class CommandLineError(Exception):
    """Go ``flag`` parse failure; ``str(e)`` is the line Go prints before the usage."""


class HelpFlag(Exception):
    """``-h``/``--help``/``-help`` was given."""


_M, _C, _S, _L, _X, _P = "Member", "Clustering", "Security", "Logging", "Experimental", "Proxy"
_IGNORED = [
    "cluster-active-size",
    "cluster-remove-delay",
    "cluster-sync-interval",
    "config",
    "force",
    "max-result-buffer",
    "max-retry-attempts",
    "peer-heartbeat-interval",
    "peer-election-timeout",
    "retry-interval",
    "snapshot",
    "v",
    "vv",
]


LOG_ROTATION_CONFIG_JSON = (
    '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}'
)


def _f(name: str, kind: str, default: str, text: str, group: str, *choices: str) -> FlagSpec:
    return FlagSpec(name, kind, default, text, group, tuple(choices))


# fmt: off
FLAGS: tuple[FlagSpec, ...] = (
    _f("config-file", "str", "", "YAML configuration file; when given, flags and env are ignored.", _M),
    _f("name", "str", "default", "Member name, unique within the cluster.", _M),
    FlagSpec("data-dir", "str", "", "Directory for this member's data.", _M, shown="${name}.etcd"),
    _f("wal-dir", "str", "", "Separate directory for the Raft log (LevelDB in petcd).", _M),
    _f("listen-peer-urls", "urls", "http://localhost:2380", "URLs to accept peer traffic on.", _M),
    _f("listen-client-urls", "urls", "http://localhost:2379", "URLs to accept client traffic on.", _M),
    _f("listen-metrics-urls", "urls", "", "Extra URLs serving /metrics and /health.", _M),
    _f("max-snapshots", "uint", "5", "Snapshot files to keep (0 = unlimited).", _M),
    _f("max-wals", "uint", "5", "WAL files to keep (0 = unlimited).", _M),
    _f("snapshot-count", "uint", "100000", "Applied entries between snapshots.", _M),
    _f("heartbeat-interval", "uint", "100", "Heartbeat interval, in milliseconds.", _M),
    _f("election-timeout", "uint", "1000", "Election timeout, in milliseconds.", _M),
    _f("initial-election-tick-advance", "bool", "true", "Fast-forward election ticks at boot.", _M),
    _f("quota-backend-bytes", "int", "0", "Backend size that raises a NOSPACE alarm (0 = default).", _M),
    _f("backend-bbolt-freelist-type", "str", "map", "Accepted for compatibility (bbolt only).", _M),
    _f("backend-batch-interval", "duration", "0s", "Longest time before a backend commit.", _M),
    _f("backend-batch-limit", "int", "0", "Most operations before a backend commit.", _M),
    _f("max-txn-ops", "uint", "128", "Most operations allowed in one transaction.", _M),
    _f("max-request-bytes", "uint", "1572864", "Largest client request accepted, in bytes.", _M),
    _f("grpc-keepalive-min-time", "duration", "5s", "Shortest client ping interval allowed.", _M),
    _f("grpc-keepalive-interval", "duration", "2h", "Server-to-client ping interval (0 = off).", _M),
    _f("grpc-keepalive-timeout", "duration", "20s", "Wait for a ping reply before closing.", _M),
    _f("socket-reuse-port", "bool", "false", "Set SO_REUSEPORT on listeners.", _M),
    _f("socket-reuse-address", "bool", "false", "Set SO_REUSEADDR on listeners.", _M),
    _f("raft-read-timeout", "duration", "5s", "Read timeout on peer connections.", _M),
    _f("raft-write-timeout", "duration", "5s", "Write timeout on peer connections.", _M),
    _f("initial-advertise-peer-urls", "urls", "http://localhost:2380", "Peer URLs this member announces.", _C),
    _f("advertise-client-urls", "urls", "http://localhost:2379", "Client URLs this member announces.", _C),
    _f("discovery", "str", "", "Discovery service URL for bootstrapping.", _C),
    _f("discovery-fallback", "choice", "proxy", "On discovery failure: 'exit' or 'proxy'.", _C, "proxy", "exit"),
    _f("discovery-proxy", "str", "", "HTTP proxy for the discovery service.", _C),
    _f("discovery-srv", "str", "", "DNS domain whose SRV records list the cluster.", _C),
    _f("discovery-srv-name", "str", "", "Suffix of the SRV service name to query.", _C),
    _f("initial-cluster", "str", "default=http://localhost:2380", "Bootstrap members: name=peerURL,...", _C),
    _f("initial-cluster-token", "str", "etcd-cluster", "Token that makes cluster/member IDs unique.", _C),
    _f("initial-cluster-state", "choice", "new", "'new' or 'existing'.", _C, "new", "existing"),
    _f("strict-reconfig-check", "bool", "true", "Refuse reconfigurations that would lose quorum.", _C),
    _f("pre-vote", "bool", "true", "Run Raft's pre-vote phase before elections.", _C),
    _f("auto-compaction-retention", "str", "0", "Auto-compaction retention (0 = off).", _C),
    _f("auto-compaction-mode", "str", "periodic", "'periodic' (duration) or 'revision' (count).", _C),
    _f("enable-v2", "bool", "false", "Accept the v2 API (not implemented by petcd).", _C),
    _f("experimental-enable-v2v3", "str", "", "Accepted for compatibility.", _C),
    _f("v2-deprecation", "choice", "not-yet", "v2store deprecation stage.", _C, "not-yet", "write-only", "write-only-drop-data", "gone"),
    _f("proxy", "choice", "off", "v2 proxy mode (not implemented by petcd).", _P, "off", "readonly", "on"),
    _f("proxy-failure-wait", "uint", "5000", "Accepted for compatibility.", _P),
    _f("proxy-refresh-interval", "uint", "30000", "Accepted for compatibility.", _P),
    _f("proxy-dial-timeout", "uint", "1000", "Accepted for compatibility.", _P),
    _f("proxy-write-timeout", "uint", "5000", "Accepted for compatibility.", _P),
    _f("proxy-read-timeout", "uint", "0", "Accepted for compatibility.", _P),
    _f("cert-file", "str", "", "Client-facing TLS certificate.", _S),
    _f("key-file", "str", "", "Client-facing TLS key.", _S),
    _f("client-cert-file", "str", "", "Client certificate used when dialling as a client.", _S),
    _f("client-key-file", "str", "", "Client key used when dialling as a client.", _S),
    _f("client-cert-auth", "bool", "false", "Require client certificates.", _S),
    _f("client-crl-file", "str", "", "Client certificate revocation list.", _S),
    _f("client-cert-allowed-hostname", "str", "", "Hostname client certificates must carry.", _S),
    _f("trusted-ca-file", "str", "", "CA bundle for client certificates.", _S),
    _f("auto-tls", "bool", "false", "Self-signed client TLS.", _S),
    _f("peer-cert-file", "str", "", "Peer TLS certificate.", _S),
    _f("peer-key-file", "str", "", "Peer TLS key.", _S),
    _f("peer-client-cert-file", "str", "", "Peer client certificate.", _S),
    _f("peer-client-key-file", "str", "", "Peer client key.", _S),
    _f("peer-client-cert-auth", "bool", "false", "Require peer client certificates.", _S),
    _f("peer-trusted-ca-file", "str", "", "CA bundle for peer certificates.", _S),
    _f("peer-auto-tls", "bool", "false", "Self-signed peer TLS.", _S),
    _f("self-signed-cert-validity", "uint", "1", "Years self-signed certificates stay valid.", _S),
    _f("peer-crl-file", "str", "", "Peer certificate revocation list.", _S),
    _f("peer-cert-allowed-cn", "str", "", "CN peer certificates must carry.", _S),
    _f("peer-cert-allowed-hostname", "str", "", "Hostname peer certificates must carry.", _S),
    _f("cipher-suites", "strings", "", "TLS cipher suites, comma separated.", _S),
    _f("experimental-peer-skip-client-san-verification", "bool", "false", "Skip peer SAN checks.", _S),
    _f("cors", "strings", "*", "Allowed CORS origins.", _S),
    _f("host-whitelist", "strings", "*", "Accepted Host headers when not using TLS.", _S),
    _f("auth-token", "str", "simple", "Auth token provider and options.", _S),
    _f("bcrypt-cost", "uint", "10", "bcrypt cost for password hashes.", _S),
    _f("auth-token-ttl", "uint", "300", "Auth token lifetime, in seconds.", _S),
    _f("logger", "str", "zap", "Structured JSON logging (only 'zap').", _L),
    _f("log-outputs", "strings", "default", "Where logs go: 'stderr', 'stdout' or 'default'.", _L),
    _f("log-level", "str", "info", "debug, info, warn, error, panic or fatal.", _L),
    _f("enable-log-rotation", "bool", "false", "Accepted for compatibility.", _L),
    _f("log-rotation-config-json", "str", LOG_ROTATION_CONFIG_JSON, "Accepted for compatibility.", _L),
    _f("enable-pprof", "bool", "false", "Serve profiling data (accepted; no-op in petcd).", _L),
    _f("metrics", "str", "basic", "'basic' or 'extensive' metrics.", _L),
    _f("enable-grpc-gateway", "bool", "true", "Serve the JSON gateway (not in petcd).", _L),
    _f("version", "bool", "false", "Print the version and exit.", _M),
    _f("experimental-enable-distributed-tracing", "bool", "false", "Accepted for compatibility.", _X),
    _f("experimental-distributed-tracing-address", "str", "localhost:4317", "Accepted.", _X),
    _f("experimental-distributed-tracing-service-name", "str", "etcd", "Accepted.", _X),
    _f("experimental-distributed-tracing-instance-id", "str", "", "Accepted.", _X),
    _f("experimental-initial-corrupt-check", "bool", "false", "Hash-check peers before serving.", _X),
    _f("experimental-corrupt-check-time", "duration", "0s", "Interval between corruption checks.", _X),
    _f("experimental-enable-lease-checkpoint", "bool", "false", "Persist remaining lease TTLs.", _X),
    _f("experimental-compaction-batch-limit", "int", "0", "Revisions visited per compaction batch (0 = 1000).", _X),
    _f("experimental-watch-progress-notify-interval", "duration", "10m", "Watch progress interval.", _X),
    _f("experimental-downgrade-check-time", "duration", "5s", "Downgrade status check interval.", _X),
    _f("experimental-warning-apply-duration", "duration", "100ms", "Slow-apply warning threshold.", _X),
    _f("experimental-memory-mlock", "bool", "false", "Accepted for compatibility.", _X),
    _f("experimental-txn-mode-write-with-shared-buffer", "bool", "true", "Accepted.", _X),
    _f("experimental-bootstrap-defrag-threshold-megabytes", "uint", "0", "Accepted.", _X),
    _f("unsafe-no-fsync", "bool", "false", "Skip fsync (unsafe: loses data on crash).", _X),
    _f("force-new-cluster", "bool", "false", "Restart as a one-member cluster from local data.", _X),
) + tuple(FlagSpec(n, "ignored", "", "", "") for n in _IGNORED)
# fmt: on

FLAGS_BY_NAME: dict[str, FlagSpec] = {f.name: f for f in FLAGS}


def env_name(flag: str) -> str:
    """The ``ETCD_*`` variable for ``flag``."""
    return flag_to_env("ETCD", flag)


def parse_command_line(argv: Sequence[str]) -> tuple[list[tuple[FlagSpec, object]], list[str]]:
    """Go ``flag.FlagSet.Parse`` over FLAGS.

    Returns ([(spec, parsed value)] in order, remaining non-flag arguments). Raises
    :class:`HelpFlag` or :class:`CommandLineError` (message worded as Go's).
    """
    out: list[tuple[FlagSpec, object]] = []
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        minuses = 2 if arg[1] == "-" else 1
        if minuses == 2 and len(arg) == 2:
            args.pop(0)
            break
        name = arg[minuses:]
        if not name or name[0] in "-=":
            raise CommandLineError(errors.FLAG_BAD_SYNTAX.format(arg=arg))
        args.pop(0)
        name, has_value, value = name.partition("=")
        spec = FLAGS_BY_NAME.get(name)
        if spec is None:
            if name in ("help", "h"):
                raise HelpFlag()
            raise CommandLineError(errors.FLAG_NOT_DEFINED.format(name=name))
        if spec.is_bool:
            if not has_value:
                value = "true"
            try:
                out.append((spec, spec.convert(value)))
            except ValueParseError as exc:
                raise CommandLineError(
                    errors.FLAG_INVALID_BOOL.format(value=value, name=name, error=exc)
                ) from None
            continue
        if not has_value:
            if not args:
                raise CommandLineError(errors.FLAG_NEEDS_ARGUMENT.format(name=name))
            value = args.pop(0)
        try:
            out.append((spec, spec.convert(value)))
        except ValueParseError as exc:
            raise CommandLineError(
                errors.FLAG_INVALID_VALUE.format(value=value, name=name, error=exc)
            ) from None
    return out, args


def render_help() -> str:
    """``--help`` text: every flag grouped, with its default and a one-line description."""
    lines: list[str] = []
    for group in (_M, _C, _S, _L, _P, _X):
        lines.append(f"\n{group}:")
        for spec in FLAGS:
            if spec.group == group:
                lines.append(f"  --{spec.name} '{spec.shown or spec.default}'")
                lines.append(f"    {spec.help}")
    return "\n".join(lines) + "\n"


_SECURITY_KEYS = frozenset(
    ("cert-file", "key-file", "client-cert-file", "client-key-file", "client-cert-auth",
     "trusted-ca-file", "auto-tls")
)  # fmt: skip


def config_file_values(text: str) -> list[tuple[FlagSpec, object]]:
    """Flag values from an etcd YAML config file's ``text``.

    Like etcd: keys are flag names, URL lists are comma-separated strings, durations are
    integer nanoseconds, TLS settings sit under ``client-transport-security`` /
    ``peer-transport-security``, unknown keys are ignored. ValueParseError carries etcd's
    ``error converting YAML to JSON`` / ``error unmarshaling JSON`` prefixes.
    """
    try:
        doc = load_yaml(text)
    except ValueError as exc:
        raise ValueParseError(errors.CFG_FILE_YAML.format(error=exc)) from None
    if not isinstance(doc, dict):
        raise ValueParseError(errors.CFG_FILE_JSON.format(error=errors.CFG_FILE_NOT_MAPPING))
    items: list[tuple[str, object]] = []
    for key, value in doc.items():
        prefix = {"client-transport-security": "", "peer-transport-security": "peer-"}.get(key)
        if prefix is not None and isinstance(value, dict):
            items += [(prefix + k, v) for k, v in value.items() if k in _SECURITY_KEYS]
        else:
            items.append((str(key), value))
    out: list[tuple[FlagSpec, object]] = []
    for name, value in items:
        spec = FLAGS_BY_NAME.get(name)
        if spec is None or spec.kind == "ignored" or value is None:
            continue
        try:
            out.append((spec, _from_yaml(spec, value)))
        except ValueParseError as exc:
            raise ValueParseError(
                errors.CFG_FILE_JSON.format(error=errors.CFG_FILE_FIELD.format(name=name, error=exc))
            ) from None
    return out


def _from_yaml(spec: FlagSpec, value: object) -> object:
    if spec.kind == "duration":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueParseError(errors.CFG_FILE_DURATION)
        return value / 1e9
    if spec.kind == "strings" and isinstance(value, list):
        return sorted({str(v) for v in value})
    if spec.kind in ("uint", "int") and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueParseError(errors.VALUE_PARSE_ERROR)
    if isinstance(value, bool):
        return spec.convert("true" if value else "false")
    return spec.convert(str(value))
