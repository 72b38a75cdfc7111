"""petcd's flag/env/validation behaviour, compared line by line with real etcd 3.5.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from petcd import config, errors, version
from petcd.config import Config, ConfigError, EnvConflictError, FlagError, HelpRequested

from harness.impls import get_impl

ETCD = get_impl("etcd-3.5")
PETCD = [sys.executable, "-m", "petcd"]


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    r = subprocess.run(
        cmd, env=_clean_env(env), cwd=cwd, capture_output=True, text=True, timeout=20, check=False
    )
    return r.returncode, r.stdout, r.stderr


def _outcome(rc: int, stderr: str) -> tuple[int, str, str]:
    """(exit code, the first line for flag errors or the error record's msg, its detail)."""
    if rc == 2 and not stderr.startswith("{"):
        return rc, stderr.splitlines()[0], ""
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        if rec["level"] in ("warn", "fatal") and rec["msg"] in (
            "failed to verify flags",
            errors.CFG_ENV_CONFLICT,
        ):
            return rc, rec["msg"], str(rec.get("error") or rec.get("environment-variable"))
    return rc, "", stderr


# Every case fails before etcd touches disk or network.
CASES: list[tuple[list[str], dict[str, str]]] = [
    (["--bogus"], {}),
    (["--heartbeat-interval", "abc"], {}),
    (["--heartbeat-interval=-1"], {}),
    (["--enable-v2=maybe"], {}),
    (["--name"], {}),
    (["---x"], {}),
    (["--listen-peer-urls", "foo"], {}),
    (["--listen-peer-urls", "http://127.0.0.1:2380/path"], {}),
    (["--listen-peer-urls", "http://127.0.0.1"], {}),
    (["--initial-cluster-state", "foo"], {}),
    (["--election-timeout", "400"], {}),
    (["--election-timeout", "60000"], {}),
    (["--heartbeat-interval", "0"], {}),
    (["--election-timeout", "0"], {}),
    (["--listen-client-urls", "http://127.0.0.1:23790"], {}),
    (["--listen-peer-urls", "http://example.com:2380"], {}),
    (["--auto-compaction-mode", "foo"], {}),
    (["--discovery", "http://127.0.0.1:1", "--initial-cluster", "a=http://127.0.0.1:2"], {}),
    (["stray"], {}),
    (["--name", "y"], {"ETCD_NAME": "x"}),
    ([], {"ETCD_HEARTBEAT_INTERVAL": "abc"}),
    ([], {"ETCD_INITIAL_CLUSTER_STATE": "foo"}),
    ([], {"ETCD_ELECTION_TIMEOUT": "100"}),
    ([], {"ETCD_FOO": "bar", "ETCD_ELECTION_TIMEOUT": "10"}),
]


@pytest.mark.parametrize(
    ("argv", "env"), CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else ",".join(v)
)
def test_errors_match_real_etcd(argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
    if not ETCD.available():
        pytest.skip("etcd 3.5.1 not installed")
    want = _outcome(*_run([str(ETCD.server), *argv], env, tmp_path)[::2])
    got = _outcome(*_run([*PETCD, *argv], env, tmp_path)[::2])
    assert want[0] != 0 and want[1], want
    assert got == want
    assert list(tmp_path.iterdir()) == []  # nothing written by either


def test_unrecognized_env_var_warns_like_etcd(tmp_path: Path) -> None:
    env = {"ETCD_FOO": "bar", "ETCD_ELECTION_TIMEOUT": "10"}
    _, _, err = _run([*PETCD], env, tmp_path)
    recs = [json.loads(line) for line in err.splitlines()]
    warn = [r for r in recs if r["msg"] == "unrecognized environment variable"]
    assert warn and warn[0]["level"] == "warn"
    assert warn[0]["environment-variable"] == "ETCD_FOO=bar"


def test_version_and_help(tmp_path: Path) -> None:
    rc, out, _ = _run([*PETCD, "--version"], {"ETCD_NAME": "ignored-for-version"}, tmp_path)
    assert rc == 0
    assert out.splitlines()[0] == f"petcd Version: {version.PETCD_VERSION}"
    assert "etcd API Version: 3.5" in out.splitlines()
    rc, out, _ = _run([*PETCD, "--help"], {}, tmp_path)
    assert rc == 0
    for flag in ("--initial-cluster-token", "--listen-peer-urls", "--peer-trusted-ca-file"):
        assert f"  {flag} '" in out


def test_defaults_match_etcd() -> None:
    cfg = config.parse([], {})
    assert cfg.name == "default"
    assert cfg.data_dir == "default.etcd"
    assert cfg.listen_client_urls == ["http://localhost:2379"]
    assert cfg.listen_peer_urls == ["http://localhost:2380"]
    assert cfg.initial_cluster == "default=http://localhost:2380"
    assert cfg.initial_cluster_token == "etcd-cluster"
    assert (cfg.heartbeat_interval, cfg.election_timeout, cfg.election_ticks) == (100, 1000, 10)
    assert (cfg.snapshot_count, cfg.max_txn_ops, cfg.max_request_bytes) == (100000, 128, 1572864)
    assert cfg.initial_cluster_state == "new" and cfg.log_level == "info"


def test_name_drives_initial_cluster_and_data_dir() -> None:
    cfg = config.parse(["--name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:7"], {})
    assert cfg.initial_cluster == "n1=http://127.0.0.1:7"
    assert cfg.data_dir == "n1.etcd"


def test_env_sets_flags_and_flags_win_conflicts_are_errors() -> None:
    cfg = config.parse([], {"ETCD_INITIAL_CLUSTER_TOKEN": "tok", "ETCD_ENABLE_V2": "true"})
    assert cfg.initial_cluster_token == "tok" and cfg.enable_v2 is True
    with pytest.raises(EnvConflictError) as info:
        config.parse(["--initial-cluster-token=a"], {"ETCD_INITIAL_CLUSTER_TOKEN": "b"})
    assert info.value.env_var == "ETCD_INITIAL_CLUSTER_TOKEN"


def test_go_flag_syntax() -> None:
    cfg = config.parse(
        ["-name=a", "--snapshot-count", "0x10", "--force-new-cluster", "--pre-vote=false"], {}
    )
    assert (cfg.name, cfg.snapshot_count, cfg.force_new_cluster, cfg.pre_vote) == (
        "a",
        16,
        True,
        False,
    )
    with pytest.raises(HelpRequested):
        config.parse(["-h"], {})
    with pytest.raises(FlagError, match="flag provided but not defined: -nope"):
        config.parse(["--nope"], {})


def test_stray_after_double_dash_is_rejected() -> None:
    with pytest.raises(ConfigError, match="'x' is not a valid flag"):
        config.parse(["--", "x"], {})


def _three(name: str, ap: str, initial: str) -> Config:
    return config.parse(
        ["--name", name, "--initial-advertise-peer-urls", ap, "--initial-cluster", initial], {}
    )


def test_verify_bootstrap_strings_match_etcd() -> None:
    # Strings as printed by etcd 3.5.1 for the same flags (see the transport/report notes).
    cfg = _three("a", "http://127.0.0.1:12381", "a=http://127.0.0.1:12380")
    with pytest.raises(ConfigError) as info:
        config.verify_bootstrap(cfg)
    assert str(info.value) == (
        "--initial-cluster has a=http://127.0.0.1:12380 but missing from "
        '--initial-advertise-peer-urls=http://127.0.0.1:12381 ("http://127.0.0.1:12381"'
        '(resolved from "http://127.0.0.1:12381") != "http://127.0.0.1:12380"'
        '(resolved from "http://127.0.0.1:12380"))'
    )
    cfg = _three("a", "http://127.0.0.1:12380", "a=http://127.0.0.1:12380,a=http://127.0.0.1:12382")
    with pytest.raises(ConfigError) as info:
        config.verify_bootstrap(cfg)
    assert str(info.value) == (
        "--initial-cluster has a=http://127.0.0.1:12382 but missing from "
        '--initial-advertise-peer-urls=http://127.0.0.1:12380 (len(["http://127.0.0.1:12380"]) '
        '!= len(["http://127.0.0.1:12380" "http://127.0.0.1:12382"]))'
    )
    cfg = _three("a", "http://127.0.0.1:1", "b=http://127.0.0.1:1")
    with pytest.raises(ConfigError, match='couldn\'t find local name "a" in the initial cluster'):
        config.verify_bootstrap(cfg)
    cfg = config.parse(["--name", "a", "--initial-cluster", "garbage"], {})
    with pytest.raises(ConfigError) as info:
        config.verify_bootstrap(cfg)
    assert str(info.value) == (
        "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: "
    )
    ok = _three("a", "http://127.0.0.1:1", "a=http://127.0.0.1:1,b=http://127.0.0.1:2")
    assert config.verify_bootstrap(ok) == {
        "a": ["http://127.0.0.1:1"],
        "b": ["http://127.0.0.1:2"],
    }


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "etcd.yaml"
    path.write_text(
        "# sample\n"
        "name: 'file-node'\n"
        "listen-peer-urls: http://127.0.0.1:5000\n"
        "initial-advertise-peer-urls: http://127.0.0.1:5000\n"
        "initial-cluster: file-node=http://127.0.0.1:5000\n"
        "heartbeat-interval: 50\n"
        "election-timeout: 500\n"
        "log-outputs: [stderr]\n"
        "peer-transport-security:\n"
        "  client-cert-auth: true\n"
        "  trusted-ca-file: /ca.pem\n"
    )
    cfg = config.parse(["--config-file", str(path), "--name", "ignored"], {})
    assert cfg.name == "file-node" and cfg.heartbeat_interval == 50
    assert cfg.listen_peer_urls == ["http://127.0.0.1:5000"]
    assert cfg.peer_client_cert_auth is True and cfg.peer_trusted_ca_file == "/ca.pem"
    assert cfg.log_outputs == ["stderr"]
    via_env = config.parse([], {"ETCD_CONFIG_FILE": str(path)})
    assert via_env.name == "file-node"
    with pytest.raises(ConfigError, match="no such file"):
        config.parse(["--config-file", str(tmp_path / "missing.yaml")], {})


def test_log_records_have_etcds_zap_shape() -> None:
    import io
    import re

    from petcd.logutil import FatalError, new_logger

    buf = io.StringIO()
    log = new_logger("info", stream=buf).with_(**{"local-member-id": "8e9e05c52164694d"})
    log.debug("dropped below level")
    log.info("hello", count=3, err=ValueError("boom"))
    with pytest.raises(FatalError, match="bye"):
        log.fatal("bye")
    recs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["level"] for r in recs] == ["info", "fatal"]
    assert list(recs[0]) == ["level", "ts", "caller", "msg", "local-member-id", "count", "err"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", recs[0]["ts"])
    assert re.fullmatch(r"tests/test_config\.py:\d+", recs[0]["caller"])
    assert recs[0]["err"] == "boom" and recs[0]["count"] == 3
    with pytest.raises(ValueError, match='unrecognized level: "loud"'):
        new_logger("loud")


def test_config_defaults_match_the_flag_table() -> None:
    """One table of flags: every non-ignored flag has a Config field whose default is the
    table's default parsed, and Config has no flag-like field the table lacks."""
    import dataclasses

    from petcd import flags

    defaults = Config()
    fields = {f.name for f in dataclasses.fields(Config)} - {"explicit", "notices", "settings"}
    table = {spec.attr: spec for spec in flags.FLAGS if spec.kind != "ignored"}
    assert fields == set(table), (fields ^ set(table))
    drift = {
        spec.name: (spec.default_value(), getattr(defaults, attr))
        for attr, spec in table.items()
        if spec.default_value() != getattr(defaults, attr)
    }
    assert drift == {}
