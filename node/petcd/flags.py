"""Flag-value parsing with the semantics (and error strings) of etcd 3.5's command line.

etcd parses its command line with Go's ``flag`` package plus etcd's own value types
(``pkg/flags``). This module reproduces the observable parts of both:

* value parsers (:func:`parse_bool`, :func:`parse_uint`, :func:`parse_duration`,
  :func:`parse_urls`, ...) raise :class:`ValueParseError` whose text is the reason Go would print
  (``parse error``, ``value out of range``, ``invalid value``, the URL messages of
  ``types.NewURLs``);
* :func:`split_host_port` mirrors Go's ``net.SplitHostPort`` closely enough for URL checks;
* :func:`flag_to_env` maps a flag name to its ``ETCD_*`` environment variable.

Nothing here knows the set of etcd flags; :mod:`petcd.config` owns that table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "ValueParseError",
    "flag_to_env",
    "is_ip",
    "parse_bool",
    "parse_duration",
    "parse_int",
    "parse_uint",
    "parse_url",
    "parse_urls",
    "parse_urls_map",
    "split_host_port",
]

URL_SCHEMES = ("http", "https", "unix", "unixs")


class ValueParseError(ValueError):
    """A flag value could not be parsed; ``str(e)`` is the reason as etcd/Go words it."""


def flag_to_env(prefix: str, name: str) -> str:
    """``flag_to_env("ETCD", "initial-cluster-token") == "ETCD_INITIAL_CLUSTER_TOKEN"``."""
    return prefix + "_" + name.replace("-", "_").upper()


def parse_bool(s: str) -> bool:
    """Go's ``strconv.ParseBool``: 1/t/T/TRUE/true/True and the 0/f/F/FALSE/false/False set."""
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueParseError("parse error")


def _parse_go_int(s: str) -> int:
    """Go ``strconv.ParseInt(s, 0, 64)`` syntax: optional sign, 0x/0o/0b/0 prefixes, ``_``."""
    m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]*|[1-9][0-9_]*)", s)
    if m is None:
        raise ValueParseError("parse error")
    sign, body = m.group(1), m.group(2)
    if "__" in body or body.endswith("_"):
        raise ValueParseError("parse error")
    digits = body.replace("_", "")
    low = digits.lower()
    if low.startswith(("0x", "0b", "0o")):
        value = int(low, 0)
    elif len(low) > 1 and low.startswith("0"):
        value = int(low[1:], 8)
    else:
        value = int(low)
    return -value if sign == "-" else value


def parse_uint(s: str, bits: int = 64) -> int:
    """Unsigned integer as Go's flag ``UintVar``/``Uint64Var`` (``bits`` 64 on amd64)."""
    if s.startswith(("+", "-")):
        raise ValueParseError("parse error")
    value = _parse_go_int(s)
    if value >= 1 << bits:
        raise ValueParseError("value out of range")
    return value


def parse_int(s: str, bits: int = 64) -> int:
    """Signed integer as Go's flag ``IntVar``/``Int64Var``."""
    value = _parse_go_int(s)
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueParseError("value out of range")
    return value


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(s: str) -> float:
    """Go ``time.ParseDuration`` (e.g. ``"1h30m"``, ``"250ms"``, ``"0"``); returns seconds."""
    text = s
    sign = 1.0
    if text[:1] in ("+", "-"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueParseError("parse error")
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None or m.group(1) in ("", "."):
            raise ValueParseError("parse error")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go ``net.SplitHostPort``: ``"h:p"``/``"[v6]:p"`` -> (host, port); else ValueParseError."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueParseError(f"address {hostport}: missing ']' in address")
        rest = hostport[end + 1 :]
        if not rest.startswith(":"):
            raise ValueParseError(f"address {hostport}: missing port in address")
        host, port = hostport[1:end], rest[1:]
    else:
        idx = hostport.rfind(":")
        if idx < 0:
            raise ValueParseError(f"address {hostport}: missing port in address")
        host, port = hostport[:idx], hostport[idx + 1 :]
        if ":" in host:
            raise ValueParseError(f"address {hostport}: too many colons in address")
    if "[" in port or "]" in port:
        raise ValueParseError(f"address {hostport}: unexpected ']' in address")
    return host, port


def is_ip(host: str) -> bool:
    """True when ``host`` is a literal IPv4/IPv6 address (Go ``net.ParseIP != nil``)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_url(raw: str) -> str:
    """Validate one URL as etcd's ``types.NewURLs`` does; return its canonical string.

    The canonical form is ``scheme://host:port`` (scheme lower-cased), which is what Go's
    ``url.URL.String()`` yields for the URLs etcd accepts; member IDs hash this form.
    """
    text = raw.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueParseError(f'parse "{text}": {exc}') from exc
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise ValueParseError(f"URL scheme must be http, https, unix, or unixs: {text}")
    try:
        split_host_port(parts.netloc)
    except ValueParseError:
        raise ValueParseError(f'URL address does not have the form "host:port": {text}') from None
    if parts.path:
        raise ValueParseError(f"URL must not contain a path: {text}")
    query = f"?{parts.query}" if parts.query else ""
    frag = f"#{parts.fragment}" if parts.fragment else ""
    return f"{scheme}://{parts.netloc}{query}{frag}"


def parse_urls(value: str) -> list[str]:
    """Comma-separated URL list -> canonical URLs, sorted and de-duplicated (etcd UniqueURLs)."""
    items = value.split(",")
    if not items:
        raise ValueParseError("no valid URLs given")
    return sorted({parse_url(item) for item in items})


def parse_urls_map(value: str) -> dict[str, list[str]]:
    """``name=url,name=url2,other=url3`` -> {name: sorted urls} (etcd ``types.NewURLsMap``).

    Empty comma items are skipped; an item without ``=`` has an empty URL, which fails with
    etcd's scheme error, exactly like etcd.
    """
    grouped: dict[str, list[str]] = {}
    for item in value.split(","):
        if not item:
            continue
        name, _, url = item.partition("=")
        grouped.setdefault(name, []).append(url)
    return {name: sorted(parse_url(u) for u in urls) for name, urls in grouped.items()}


# --------------------------------------------------------------------------------------------
# The etcd 3.5 server flag table and a Go-``flag``-compatible command-line parser.


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """One server flag: ``kind`` selects the parser; ``default`` is shown in ``--help``."""

    name: str
    kind: str
    default: str
    help: str
    group: str
    choices: tuple[str, ...] = ()

    @property
    def attr(self) -> str:
        """Config attribute this flag sets (``-`` -> ``_``)."""
        return self.name.replace("-", "_")

    @property
    def is_bool(self) -> bool:
        return self.kind in ("bool", "ignored")

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
                raise ValueParseError("invalid value")
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


def _f(name: str, kind: str, default: str, text: str, group: str, *choices: str) -> FlagSpec:
    return FlagSpec(name, kind, default, text, group, tuple(choices))


# fmt: off
FLAGS: tuple[FlagSpec, ...] = (
    _f("config-file", "str", "", "YAML configuration file; when given, flags and env are ignored.", _M),
    _f("name", "str", "default", "Member name, unique within the cluster.", _M),
    _f("data-dir", "str", "${name}.etcd", "Directory for this member's data.", _M),
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
    _f("backend-batch-interval", "duration", "", "Longest time before a backend commit.", _M),
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
    _f("log-rotation-config-json", "str", "{...}", "Accepted for compatibility.", _L),
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
    _f("experimental-compaction-batch-limit", "int", "1000", "Revisions deleted per compaction batch.", _X),
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
            raise CommandLineError(f"bad flag syntax: {arg}")
        args.pop(0)
        name, has_value, value = name.partition("=")
        spec = FLAGS_BY_NAME.get(name)
        if spec is None:
            if name in ("help", "h"):
                raise HelpFlag()
            raise CommandLineError(f"flag provided but not defined: -{name}")
        if spec.is_bool:
            if not has_value:
                value = "true"
            try:
                out.append((spec, spec.convert(value)))
            except ValueParseError as exc:
                raise CommandLineError(
                    f'invalid boolean value "{value}" for -{name}: {exc}'
                ) from None
            continue
        if not has_value:
            if not args:
                raise CommandLineError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        try:
            out.append((spec, spec.convert(value)))
        except ValueParseError as exc:
            raise CommandLineError(f'invalid value "{value}" for flag -{name}: {exc}') from None
    return out, args


def render_help() -> str:
    """``--help`` text: every flag grouped, with its default and a one-line description."""
    lines: list[str] = []
    for group in (_M, _C, _S, _L, _P, _X):
        lines.append(f"\n{group}:")
        for spec in FLAGS:
            if spec.group == group:
                lines.append(f"  --{spec.name} '{spec.default}'")
                lines.append(f"    {spec.help}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Config-file YAML: the subset etcd's sample configuration uses (PyYAML is used if present).

YamlValue = object


def _yaml_scalar(text: str) -> YamlValue:
    t = text.strip()
    if t in ("", "~", "null", "Null", "NULL"):
        return None
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        inner = t[1:-1]
        return inner.replace("''", "'") if t[0] == "'" else inner.encode().decode("unicode_escape")
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t.startswith("[") and t.endswith("]"):
        body = t[1:-1].strip()
        return [_yaml_scalar(x) for x in body.split(",")] if body else []
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    return t


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def load_yaml(text: str) -> YamlValue:
    """Parse a YAML document: PyYAML when installed, else a mapping of scalars, inline or
    block lists and one nested mapping level. Raises ValueError on anything else."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from None
    root: dict[str, YamlValue] = {}
    parent_key: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.strip() == "---":
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0:
            parent_key = None
        if body.startswith("- "):
            if parent_key is None:
                raise ValueError(f"line {lineno}: unexpected list item")
            current = root.get(parent_key)
            if not isinstance(current, list):
                current = []
                root[parent_key] = current
            current.append(_yaml_scalar(body[2:]))
            continue
        key, sep, rest = body.partition(":")
        if not sep or (rest and not rest.startswith(" ")):
            raise ValueError(f"line {lineno}: expected 'key: value'")
        key = str(_yaml_scalar(key))
        if indent == 0:
            if rest.strip():
                root[key] = _yaml_scalar(rest)
            else:
                root[key] = None
                parent_key = key
        else:
            if parent_key is None:
                raise ValueError(f"line {lineno}: unexpected indentation")
            sub = root.get(parent_key)
            if not isinstance(sub, dict):
                sub = {}
                root[parent_key] = sub
            sub[key] = _yaml_scalar(rest)
    return root


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
        raise ValueParseError(f"error converting YAML to JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueParseError("error unmarshaling JSON: config file is not a mapping")
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
            raise ValueParseError(f"error unmarshaling JSON: {name}: {exc}") from None
    return out


def _from_yaml(spec: FlagSpec, value: object) -> object:
    if spec.kind == "duration":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueParseError("durations are integer nanoseconds in config files")
        return value / 1e9
    if spec.kind == "strings" and isinstance(value, list):
        return sorted({str(v) for v in value})
    if spec.kind in ("uint", "int") and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueParseError("parse error")
    if isinstance(value, bool):
        return spec.convert("true" if value else "false")
    return spec.convert(str(value))
