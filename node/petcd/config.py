"""petcd configuration: etcd 3.5's flags, defaults, ``ETCD_*`` environment and validation.

Entry point: :func:`parse` (argv without the program name, an environment mapping) returns a
:class:`Config` or raises one of

* :class:`HelpRequested` -- ``-h``/``--help``; print :func:`help_text` to stdout, exit 0;
* :class:`FlagError` -- a Go-``flag``-level error (unknown flag, unparsable value); etcd prints
  the message and its usage to stderr and exits 2;
* :class:`ConfigError` -- any later error (bad env value, failed validation); etcd logs it as
  ``"failed to verify flags"`` and exits 1. :class:`EnvConflictError` (a flag and its env var
  both set) is a ConfigError that etcd logs at *fatal* level with its own message.

``Config.version`` set means ``--version`` was given: print :func:`version_text`, exit 0; the
rest of the config is then unvalidated (etcd checks ``--version`` before env and validation).

Bootstrap-time checks that etcd performs when starting the server (not when parsing flags)
are here too, for the server to call: :meth:`Config.initial_cluster_map`,
:func:`verify_bootstrap`, :func:`verify_join_existing`. Their error strings are etcd's.

Parse-time notices (etcd's "recognized and used environment variable", "unrecognized
environment variable", "'data-dir' was empty; using default", ...) are collected in
``Config.notices`` as ``(level, msg, fields)`` for the caller to log once logging is set up.
"""

from __future__ import annotations

import dataclasses
import platform
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from petcd import errors
from petcd import flags as cf
from petcd.goflag import ValueParseError, is_ip, parse_urls_map, split_host_port
from petcd.version import API_VERSION, PETCD_VERSION

__all__ = [
    "Config",
    "ConfigError",
    "EnvConflictError",
    "FlagError",
    "HelpRequested",
    "Settings",
    "help_text",
    "parse",
    "usage_text",
    "verify_bootstrap",
    "verify_join_existing",
    "version_text",
]


DEFAULT_NAME = "default"
DEFAULT_INITIAL_ADVERTISE_PEER_URLS = "http://localhost:2380"
MAX_ELECTION_MS = 50000
LOG_LEVELS = ("debug", "info", "warn", "error", "dpanic", "panic", "fatal")

Notice = tuple[str, str, dict[str, Any]]



class HelpRequested(Exception):
    """``-h``/``--help`` was given."""


class FlagError(Exception):
    """A command-line flag error; etcd prints ``str(e)`` and usage to stderr and exits 2."""

    exit_code = 2


class ConfigError(Exception):
    """Configuration rejected; etcd logs ``failed to verify flags`` with ``error=str(e)``."""

    exit_code = 1
    log_msg = "failed to verify flags"
    #: parse-time notices logged before the failure (as etcd logs them before exiting)
    notices: list[Notice] = []  # noqa: RUF012 - replaced per instance by parse()


class EnvConflictError(ConfigError):
    """A flag and its ``ETCD_*`` variable are both set (etcd: fatal log, exit 1)."""

    log_msg = errors.CFG_ENV_CONFLICT

    def __init__(self, env_var: str) -> None:
        super().__init__(errors.CFG_ENV_CONFLICT)
        self.env_var = env_var


@dataclass(frozen=True, slots=True)
class Settings:
    """petcd's own tunables, from ``PETCD_*`` environment variables (no etcd flag sets them;
    tests use them to reach rare paths quickly). Read here and nowhere else."""

    snapshot_catchup_entries: int = 5000
    """PETCD_SNAPSHOT_CATCHUP_ENTRIES: entries kept behind a snapshot for slow followers
    (etcd's default; lower forces snapshot transfers without writing 5000 entries)."""
    watch_progress_notify_interval: float = 600.0
    """PETCD_WATCH_PROGRESS_NOTIFY_INTERVAL: seconds between watch progress notifications
    when --experimental-watch-progress-notify-interval is not given (etcd: 10 minutes)."""
    revision_compaction_interval: float = 300.0
    """PETCD_REVISION_COMPACTION_INTERVAL: seconds between revision-mode auto-compaction
    checks (etcd: 5 minutes)."""
    dns_server: str = ""
    """PETCD_DNS_SERVER: ``ip[:port]`` of the DNS server for --discovery-srv lookups (the
    system resolver when empty)."""
    failpoints: str = ""
    """PETCD_FAILPOINTS: failpoints armed at start, ``name=terms`` separated by ``,`` or ``;``
    (gofail's GOFAIL_FAILPOINTS; see `petcd.storage.failpoints`)."""
    failpoints_http: str = ""
    """PETCD_FAILPOINTS_HTTP: ``host:port`` of gofail's HTTP endpoint to arm failpoints at
    runtime (etcd's GOFAIL_HTTP; off when empty; see `petcd.http.gofail`)."""


SETTINGS_ENV: dict[str, str] = {
    "snapshot_catchup_entries": "PETCD_SNAPSHOT_CATCHUP_ENTRIES",
    "watch_progress_notify_interval": "PETCD_WATCH_PROGRESS_NOTIFY_INTERVAL",
    "revision_compaction_interval": "PETCD_REVISION_COMPACTION_INTERVAL",
    "dns_server": "PETCD_DNS_SERVER",
    "failpoints": "PETCD_FAILPOINTS",
    "failpoints_http": "PETCD_FAILPOINTS_HTTP",
}
"""Settings field -> its environment variable."""


def read_settings(environ: Mapping[str, str]) -> Settings:
    """:class:`Settings` from ``environ``; ConfigError on a value that does not parse."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        key = SETTINGS_ENV[f.name]
        raw = environ.get(key, "")
        if not raw:
            continue
        kind: Callable[[str], object] = {int: int, float: float}.get(type(f.default), str)
        try:
            values[f.name] = kind(raw)
        except ValueError:
            raise ConfigError(errors.CFG_INVALID_SETTING.format(raw=raw, key=key)) from None
    if "failpoints" in values:
        # Lazily: the failpoint table pulls in the error texts (and grpc); --help needs neither.
        from petcd.storage import failpoints

        try:
            failpoints.parse(values["failpoints"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if "failpoints_http" in values:
        try:
            split_host_port(values["failpoints_http"])
        except ValueParseError:
            raw = values["failpoints_http"]
            raise ConfigError(
                errors.CFG_INVALID_SETTING.format(raw=raw, key="PETCD_FAILPOINTS_HTTP")
            ) from None
    return Settings(**values)


@dataclass(slots=True)
class Config:
    """Every etcd 3.5 server flag, attribute = flag name with ``-`` -> ``_``; each default
    is the parsed default of :data:`petcd.flags.FLAGS` (a test fails on drift).

    URL lists are canonical strings (``scheme://host:port``), sorted and unique.
    Durations are seconds (float). ``explicit`` holds flags set by argv, env or file.
    """

    name: str = DEFAULT_NAME
    data_dir: str = ""
    wal_dir: str = ""
    listen_peer_urls: list[str] = field(default_factory=lambda: ["http://localhost:2380"])
    listen_client_urls: list[str] = field(default_factory=lambda: ["http://localhost:2379"])
    listen_metrics_urls: list[str] = field(default_factory=list)
    max_snapshots: int = 5
    max_wals: int = 5
    snapshot_count: int = 100000
    heartbeat_interval: int = 100
    election_timeout: int = 1000
    initial_election_tick_advance: bool = True
    quota_backend_bytes: int = 0
    backend_bbolt_freelist_type: str = "map"
    backend_batch_interval: float = 0.0
    backend_batch_limit: int = 0
    max_txn_ops: int = 128
    max_request_bytes: int = 1572864
    grpc_keepalive_min_time: float = 5.0
    grpc_keepalive_interval: float = 7200.0
    grpc_keepalive_timeout: float = 20.0
    socket_reuse_port: bool = False
    socket_reuse_address: bool = False
    raft_read_timeout: float = 5.0
    raft_write_timeout: float = 5.0
    initial_advertise_peer_urls: list[str] = field(
        default_factory=lambda: [DEFAULT_INITIAL_ADVERTISE_PEER_URLS]
    )
    advertise_client_urls: list[str] = field(default_factory=lambda: ["http://localhost:2379"])
    discovery: str = ""
    discovery_fallback: str = "proxy"
    discovery_proxy: str = ""
    discovery_srv: str = ""
    discovery_srv_name: str = ""
    initial_cluster: str = "default=http://localhost:2380"
    initial_cluster_token: str = "etcd-cluster"
    initial_cluster_state: str = "new"
    strict_reconfig_check: bool = True
    pre_vote: bool = True
    enable_v2: bool = False
    experimental_enable_v2v3: str = ""
    v2_deprecation: str = "not-yet"
    proxy: str = "off"
    proxy_failure_wait: int = 5000
    proxy_refresh_interval: int = 30000
    proxy_dial_timeout: int = 1000
    proxy_write_timeout: int = 5000
    proxy_read_timeout: int = 0
    cert_file: str = ""
    key_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    client_cert_auth: bool = False
    client_crl_file: str = ""
    client_cert_allowed_hostname: str = ""
    trusted_ca_file: str = ""
    auto_tls: bool = False
    peer_cert_file: str = ""
    peer_key_file: str = ""
    peer_client_cert_file: str = ""
    peer_client_key_file: str = ""
    peer_client_cert_auth: bool = False
    peer_trusted_ca_file: str = ""
    peer_auto_tls: bool = False
    self_signed_cert_validity: int = 1
    peer_crl_file: str = ""
    peer_cert_allowed_cn: str = ""
    peer_cert_allowed_hostname: str = ""
    cipher_suites: list[str] = field(default_factory=list)
    experimental_peer_skip_client_san_verification: bool = False
    cors: list[str] = field(default_factory=lambda: ["*"])
    host_whitelist: list[str] = field(default_factory=lambda: ["*"])
    logger: str = "zap"
    log_outputs: list[str] = field(default_factory=lambda: ["default"])
    log_level: str = "info"
    enable_log_rotation: bool = False
    log_rotation_config_json: str = cf.LOG_ROTATION_CONFIG_JSON
    version: bool = False
    auto_compaction_retention: str = "0"
    auto_compaction_mode: str = "periodic"
    enable_pprof: bool = False
    metrics: str = "basic"
    experimental_enable_distributed_tracing: bool = False
    experimental_distributed_tracing_address: str = "localhost:4317"
    experimental_distributed_tracing_service_name: str = "etcd"
    experimental_distributed_tracing_instance_id: str = ""
    auth_token: str = "simple"
    bcrypt_cost: int = 10
    auth_token_ttl: int = 300
    enable_grpc_gateway: bool = True
    experimental_initial_corrupt_check: bool = False
    experimental_corrupt_check_time: float = 0.0
    experimental_enable_lease_checkpoint: bool = False
    experimental_compaction_batch_limit: int = 0
    experimental_watch_progress_notify_interval: float = 600.0
    experimental_downgrade_check_time: float = 5.0
    experimental_warning_apply_duration: float = 0.1
    experimental_memory_mlock: bool = False
    experimental_txn_mode_write_with_shared_buffer: bool = True
    experimental_bootstrap_defrag_threshold_megabytes: int = 0
    unsafe_no_fsync: bool = False
    force_new_cluster: bool = False
    config_file: str = ""
    explicit: set[str] = field(default_factory=set)
    notices: list[Notice] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)
    """petcd's PETCD_* tunables (not etcd flags)."""

    @property
    def election_ticks(self) -> int:
        """Election timeout in heartbeat ticks (etcd ``ElectionTicks``)."""
        return self.election_timeout // self.heartbeat_interval

    @property
    def is_new_cluster(self) -> bool:
        return self.initial_cluster_state == "new"

    @property
    def effective_data_dir(self) -> str:
        """``--data-dir`` or etcd's default ``${name}.etcd``."""
        return self.data_dir or f"{self.name}.etcd"

    def initial_cluster_map(self) -> dict[str, list[str]]:
        """``--initial-cluster`` as {name: sorted peer URLs}; ConfigError as etcd words it."""
        try:
            return parse_urls_map(self.initial_cluster)
        except ValueParseError as exc:
            raise ConfigError(errors.CFG_INITIAL_CLUSTER.format(error=exc)) from None


# --------------------------------------------------------------------------------------------
# Parsing


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Parse etcd-style ``argv`` (without program name) and ``ETCD_*`` ``environ``.

    Follows etcd 3.5.1's ``etcdmain`` order: command line, ``--version``, config file (then
    argv and env are ignored), env vars for flags not on the command line, env verification,
    derived defaults, validation. See the module docstring for the exceptions raised.
    """
    cfg = Config()
    try:
        values, rest = cf.parse_command_line(argv)
    except cf.HelpFlag:
        raise HelpRequested() from None
    except cf.CommandLineError as exc:
        raise FlagError(str(exc)) from None
    for spec, value in values:
        _assign(cfg, spec, value)
    if rest:
        raise ConfigError(errors.CFG_NOT_A_FLAG.format(arg=rest[0]))
    if cfg.version:
        return cfg
    try:
        config_file = cfg.config_file or environ.get("ETCD_CONFIG_FILE", "")
        if config_file:
            cfg = load_config_file(config_file)
            cfg.notices.append(
                (
                    "info",
                    (
                        "loaded server configuration, other configuration command line flags and "
                        "environment variables will be ignored if provided"
                    ),
                    {"path": config_file},
                )
            )
        else:
            _apply_environment(cfg, environ)
            _derive_defaults(cfg)
        cfg.settings = read_settings(environ)
        validate(cfg)
        _post_validate_defaults(cfg)
    except ConfigError as exc:
        exc.notices = cfg.notices
        raise
    return cfg


def _assign(cfg: Config, spec: cf.FlagSpec, value: object) -> None:
    """Set the Config attribute for ``spec``; ignored flags only count as set."""
    cfg.explicit.add(spec.name)
    if spec.kind != "ignored":
        setattr(cfg, spec.attr, value)


def load_config_file(path: str) -> Config:
    """etcd ``--config-file`` (see :func:`petcd.flags.config_file_values`); ConfigError with
    etcd's read/parse error text."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(
            errors.CFG_OPEN_FILE.format(path=path, error=exc.strerror.lower() if exc.strerror else exc)
        ) from None
    cfg = Config()
    try:
        for spec, value in cf.config_file_values(text):
            _assign(cfg, spec, value)
    except ValueParseError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


def _apply_environment(cfg: Config, environ: Mapping[str, str]) -> None:
    """etcd ``flags.SetFlagsFromEnv`` + ``verifyEnv`` semantics (see module docstring)."""
    env = dict(environ)
    ver = env.pop("ETCD_VERSION", "")
    if ver:
        cfg.notices.append(
            (
                "warn",
                "cannot set special environment variable",
                {"key": "ETCD_VERSION", "value": ver},
            )
        )
    from_flags = {cf.env_name(n) for n in cfg.explicit}
    used: set[str] = set()
    error: ConfigError | None = None
    for spec in cf.FLAGS:
        key = cf.env_name(spec.name)
        if key in from_flags:
            continue
        val = env.get(key, "")
        if not val:
            continue
        used.add(key)
        try:
            _assign(cfg, spec, spec.convert(val))
        except ValueParseError as exc:
            error = ConfigError(errors.CFG_INVALID_ENV.format(raw=val, key=key, error=exc))
            continue
        cfg.notices.append(
            (
                "info",
                "recognized and used environment variable",
                {"variable-name": key, "variable-value": val},
            )
        )
    for key, val in env.items():
        if key in used:
            continue
        if key in from_flags:
            raise EnvConflictError(key)
        if key.startswith("ETCD_"):
            cfg.notices.append(
                (
                    "warn",
                    "unrecognized environment variable",
                    {"environment-variable": f"{key}={val}"},
                )
            )
    if error is not None:
        raise error


def _derive_defaults(cfg: Config) -> None:
    """etcd's post-parse adjustments in ``configFromCmdLine``."""
    may_be_proxy = cfg.proxy != "off" or (cfg.discovery != "" and cfg.discovery_fallback == "proxy")
    if (
        "listen-client-urls" in cfg.explicit
        and "advertise-client-urls" not in cfg.explicit
        and not may_be_proxy
    ):
        cfg.advertise_client_urls = []
    if (cfg.discovery or cfg.discovery_srv or cfg.discovery_srv_name) and (
        "initial-cluster" not in cfg.explicit
    ):
        cfg.initial_cluster = ""


def _post_validate_defaults(cfg: Config) -> None:
    """Adjustments etcd makes after validation (``UpdateDefaultClusterFromName``, data dir)."""
    if (
        cfg.name != DEFAULT_NAME
        and "initial-cluster" not in cfg.explicit
        and (cfg.initial_cluster == Config().initial_cluster)
    ):
        cfg.initial_cluster = ",".join(f"{cfg.name}={u}" for u in cfg.initial_advertise_peer_urls)
    if not cfg.data_dir:
        cfg.data_dir = f"{cfg.name}.etcd"
        cfg.notices.append(
            ("warn", "'data-dir' was empty; using default", {"data-dir": cfg.data_dir})
        )


def _check_bind_urls(urls: list[str]) -> None:
    for u in urls:
        scheme, _, hostport = u.partition("://")
        if scheme in ("unix", "unixs"):
            continue
        host, _ = split_host_port(hostport)
        if host != "localhost" and not is_ip(host):
            raise ConfigError(errors.CFG_BIND_NOT_IP.format(url=u))


def _check_host_urls(flag: str, urls: list[str]) -> None:
    for u in urls:
        host, _ = split_host_port(u.partition("://")[2])
        if host == "":
            raise ConfigError(errors.CFG_EMPTY_HOST.format(flag=flag, urls=",".join(urls), url=u))


def validate(cfg: Config) -> None:
    """etcd ``embed.Config.Validate`` (plus its logger-level check); raises ConfigError."""
    if cfg.log_level not in LOG_LEVELS:
        err = ConfigError(errors.CFG_UNRECOGNIZED_LEVEL.format(level=cfg.log_level))
        err.exit_code = 2
        raise err
    _check_bind_urls(cfg.listen_peer_urls)
    _check_bind_urls(cfg.listen_client_urls)
    _check_bind_urls(cfg.listen_metrics_urls)
    _check_host_urls("initial-advertise-peer-urls", cfg.initial_advertise_peer_urls)
    _check_host_urls("advertise-client-urls", cfg.advertise_client_urls)
    if cfg.initial_cluster_state not in ("new", "existing"):
        raise ConfigError(errors.CFG_CLUSTER_STATE.format(state=cfg.initial_cluster_state))
    if sum(bool(x) for x in (cfg.discovery, cfg.initial_cluster, cfg.discovery_srv)) > 1:
        raise ConfigError(errors.CFG_CONFLICT_BOOTSTRAP_FLAGS)
    if cfg.heartbeat_interval == 0:
        raise ConfigError(errors.CFG_HEARTBEAT_ZERO.format(ms=cfg.heartbeat_interval))
    if cfg.election_timeout == 0:
        raise ConfigError(errors.CFG_ELECTION_ZERO.format(ms=cfg.election_timeout))
    if 5 * cfg.heartbeat_interval > cfg.election_timeout:
        raise ConfigError(
            errors.CFG_ELECTION_TOO_SHORT.format(
                election=cfg.election_timeout, heartbeat=cfg.heartbeat_interval
            )
        )
    if cfg.election_timeout > MAX_ELECTION_MS:
        raise ConfigError(
            errors.CFG_ELECTION_TOO_LONG.format(election=cfg.election_timeout, max=MAX_ELECTION_MS)
        )
    if cfg.listen_client_urls and not cfg.advertise_client_urls:
        raise ConfigError(errors.CFG_UNSET_ADVERTISE_CLIENT_URLS)
    if cfg.auto_compaction_mode not in ("", "periodic", "revision"):
        raise ConfigError(errors.CFG_AUTO_COMPACTION_MODE.format(mode=cfg.auto_compaction_mode))


# --------------------------------------------------------------------------------------------
# Bootstrap checks (etcd server/config VerifyBootstrap / VerifyJoinExisting)


def _go_quote_list(items: list[str]) -> str:
    return "[" + " ".join(f'"{s}"' for s in items) + "]"


def _resolve(url: str, resolver: Callable[[str], str]) -> str:
    scheme, _, hostport = url.partition("://")
    host, port = split_host_port(hostport)
    if is_ip(host) or scheme in ("unix", "unixs"):
        return url
    try:
        ip = resolver(host)
    except OSError:
        return url
    shown = f"[{ip}]" if ":" in ip else ip
    return f"{scheme}://{shown}:{port}"


def _urls_equal(a: list[str], b: list[str], resolver: Callable[[str], str]) -> str | None:
    """None when equal after resolving hostnames; else etcd's ``netutil`` mismatch text."""
    if len(a) != len(b):
        return f"len({_go_quote_list(a)}) != len({_go_quote_list(b)})"
    ra = sorted(zip([_resolve(u, resolver) for u in a], a, strict=True))
    rb = sorted(zip([_resolve(u, resolver) for u in b], b, strict=True))
    for (xa, pa), (xb, pb) in zip(ra, rb, strict=True):
        if xa != xb:
            return f'"{xa}"(resolved from "{pa}") != "{xb}"(resolved from "{pb}")'
    return None


def _has_local_member(cfg: Config, cluster: dict[str, list[str]]) -> None:
    if cfg.name not in cluster:
        raise ConfigError(errors.CFG_LOCAL_NAME_MISSING.format(name=cfg.name))


def _duplicate_url(cluster: dict[str, list[str]]) -> None:
    seen: set[str] = set()
    for urls in cluster.values():
        for u in urls:
            if u in seen:
                text = ",".join(sorted(f"{n}={x}" for n, us in cluster.items() for x in us))
                raise ConfigError(errors.CFG_DUPLICATE_URL.format(cluster=text))
            seen.add(u)


def verify_bootstrap(
    cfg: Config, resolver: Callable[[str], str] = socket.gethostbyname
) -> dict[str, list[str]]:
    """Checks etcd makes before bootstrapping a new member; returns the initial cluster map.

    Raises ConfigError with etcd's strings ("couldn't find local name ...", "--initial-cluster
    has ... but missing from --initial-advertise-peer-urls=...", "... has duplicate url",
    "initial cluster unset and no discovery URL found").
    """
    cluster = cfg.initial_cluster_map()
    _has_local_member(cfg, cluster)
    local = cluster[cfg.name]
    ap = sorted(cfg.initial_advertise_peer_urls)
    mismatch = _urls_equal(ap, local, resolver)
    if mismatch is not None:
        missing = [u for u in dict.fromkeys(local) if u not in ap]
        if missing:
            mstr = ",".join(f"{cfg.name}={u}" for u in missing)
            raise ConfigError(
                errors.CFG_ADVERTISE_MISSING.format(
                    missing=mstr, advertise=",".join(ap), mismatch=mismatch
                )
            )
        extra = [u for u in ap if u not in local]
        own = ",".join(f"{cfg.name}={u}" for u in ap)
        if extra:
            raise ConfigError(errors.CFG_CLUSTER_MISSING.format(extra=",".join(extra), own=own))
        raise ConfigError(
            errors.CFG_RESOLVE_MISMATCH.format(advertise=",".join(ap), own=own, mismatch=mismatch)
        )
    _duplicate_url(cluster)
    if not cluster and not cfg.discovery:
        raise ConfigError(errors.CFG_NO_CLUSTER)
    return cluster


def verify_join_existing(cfg: Config) -> dict[str, list[str]]:
    """Checks etcd makes before joining an existing cluster; returns the initial cluster map."""
    cluster = cfg.initial_cluster_map()
    _has_local_member(cfg, cluster)
    _duplicate_url(cluster)
    if cfg.discovery:
        raise ConfigError(errors.CFG_DISCOVERY_ON_JOIN)
    return cluster


# --------------------------------------------------------------------------------------------
# Texts


def version_text() -> str:
    """What ``petcd --version`` prints (etcd's layout, petcd's version + etcd API version)."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return (
        f"petcd Version: {PETCD_VERSION}\n"
        f"etcd API Version: {API_VERSION}\n"
        f"Python Version: {platform.python_version()}\n"
        f"OS/Arch: {sys.platform}/{arch}\n"
    )


def usage_text() -> str:
    """Short usage printed after a flag error (etcd prints its usage line there)."""
    return (
        "Usage:\n\n"
        "  petcd [flags]\n    Start a petcd (etcd-compatible) server.\n\n"
        "  petcd --version\n    Print petcd's version and the etcd API version it speaks.\n\n"
        "  petcd -h | --help\n    List the flags.\n\n"
        "  petcd --config-file <path>\n"
        "    Read the configuration from a YAML file; flags and environment are then ignored.\n"
    )


def help_text() -> str:
    """Full flag listing (``--help``), grouped like etcd's, with defaults."""
    return cf.render_help()


def replace(cfg: Config, **changes: Any) -> Config:
    """``dataclasses.replace`` for Config (typed convenience for tests and the server)."""
    return dataclasses.replace(cfg, **changes)
