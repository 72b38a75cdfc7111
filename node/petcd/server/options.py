"""`ServerOptions`: everything a member is configured with, given to `EtcdServer` at
construction (built from the flags by the assembly point, `petcd.assembly`).

Subsystem installers read their settings from `server.options` while the server is being
built; nothing configures a subsystem after the server exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from petcd.config import Settings
from petcd.server.auth_store import DEFAULT_BCRYPT_COST
from petcd.server.auth_tokens import DEFAULT_TTL_SECONDS
from petcd.tlsutil import TLSInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """One member's configuration. The flag-backed fields have no defaults here (the flag
    table holds them); the rest default to "not configured"."""

    name: str
    client_urls: tuple[str, ...]
    """--advertise-client-urls"""
    heartbeat_ms: int
    election_ms: int
    snapshot_count: int
    max_txn_ops: int
    max_request_bytes: int
    cluster_token: str
    """--initial-cluster-token"""
    settings: Settings = field(default_factory=Settings)
    """petcd's PETCD_* tunables (config.Settings)."""
    compaction_batch_limit: int = 0
    """--experimental-compaction-batch-limit (0: etcd's 1000)."""
    watch_progress_notify_interval: float | None = None
    """--experimental-watch-progress-notify-interval (None: the watch hub's default)."""
    auto_compaction_mode: str = "periodic"
    auto_compaction_retention: str = "0"
    quota_backend_bytes: int = 0
    """--quota-backend-bytes (0: etcd's default quota)."""
    bcrypt_cost: int = DEFAULT_BCRYPT_COST
    auth_token_ttl: float = DEFAULT_TTL_SECONDS
    """--auth-token-ttl in seconds (<= 0: etcd's default 300)."""
    enable_v2: bool = False
    client_tls: TLSInfo | None = None
    """The client-side TLS members dial each other's client URLs with (leader forwarding)."""
