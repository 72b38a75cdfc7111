#!/usr/bin/env bash
# Run the 3-member topology (compose/docker-compose.yml) with whichever compose CLI exists.
#
#   ETCD_IMPL=etcd-3.5 compose/compose.sh up -d        # petcd (default) | etcd-3.5 | etcd-3.4
#   compose/compose.sh ps | logs node1 | exec node1 etcdctl member list | down -v
#   compose/compose.sh wait [timeout-seconds]           # until every member is healthy
#   PETCD_TOXIPROXY=1 compose/compose.sh up -d          # with docker-compose.toxiproxy.yml
#   PETCD_BOOTSTRAP=discovery compose/compose.sh up -d  # static (default) | discovery | dns
#
# It derives ETCD_IMAGE and the address/URL variables from ETCD_IMPL and PETCD_NET_PREFIX and
# writes them to compose/.env, so later plain `docker compose -f compose/docker-compose.yml ...`
# commands (and later compose.sh calls without ETCD_IMPL) see the same topology.
# COMPOSE_PROJECT_NAME (default: petcd) names the containers, network and volumes.
# PETCD_TOXIPROXY=1 adds the Toxiproxy overlay to any bootstrap (peer URLs http://nodeN.peer:2380,
# or the SRV targets for dns; one proxy per directed link; API on
# 127.0.0.1:${TOXIPROXY_API_PORT:-8474}); PETCD_TOXIPROXY=0 drops it. Like ETCD_IMPL, the choice
# is remembered in compose/.env.
# PETCD_BOOTSTRAP picks the topology file: static (docker-compose.yml), discovery
# (docker-compose.discovery.yml; DISCOVERY_IMPL=petcd|etcd-3.5|etcd-3.4 picks the discovery
# service's image, default etcd-3.5) or dns (docker-compose.dns.yml). Also remembered.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATIC_FILE="$HERE/docker-compose.yml"
OVERLAY="$HERE/docker-compose.toxiproxy.yml"
ENVFILE="$HERE/.env"

die() { printf 'compose.sh: error: %s\n' "$*" >&2; exit 2; }

# Which compose CLI: the v2 plugin (`docker compose`) if present, else docker-compose (v1 or v2).
if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
else
    die "neither 'docker compose' nor 'docker-compose' is installed"
fi

# Values from an earlier run (compose/.env) are the defaults; the environment overrides them.
prev() { [[ -f "$ENVFILE" ]] && sed -n "s/^$1=//p" "$ENVFILE" | tail -n1 || true; }

impl=${ETCD_IMPL:-$(prev ETCD_IMPL)}
impl=${impl:-petcd}
image_of() {  # implementation -> image
    case $1 in
        petcd)    echo petcd/petcd:latest ;;
        etcd-3.5) echo petcd/etcd:3.5.1 ;;
        etcd-3.4) echo petcd/etcd:3.4.23 ;;
        *) return 1 ;;
    esac
}
image=$(image_of "$impl") || die "ETCD_IMPL must be petcd, etcd-3.5 or etcd-3.4 (got '$impl')"
if [[ -n "${ETCD_IMPL:-}" || -z "${ETCD_IMAGE:-}" ]]; then
    ETCD_IMAGE=$image
fi
net=${PETCD_NET_PREFIX:-$(prev PETCD_NET_PREFIX)}
net=${net:-172.16.238}
[[ $net =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "PETCD_NET_PREFIX must be like 172.16.238"

toxiproxy=${PETCD_TOXIPROXY:-$(prev PETCD_TOXIPROXY)}
toxiproxy=${toxiproxy:-0}
[[ $toxiproxy == [01] ]] || die "PETCD_TOXIPROXY must be 0 or 1 (got '$toxiproxy')"
bootstrap=${PETCD_BOOTSTRAP:-$(prev PETCD_BOOTSTRAP)}
bootstrap=${bootstrap:-static}
case $bootstrap in
    static)    FILE=$STATIC_FILE ;;
    discovery) FILE="$HERE/docker-compose.discovery.yml" ;;
    dns)       FILE="$HERE/docker-compose.dns.yml" ;;
    *) die "PETCD_BOOTSTRAP must be static, discovery or dns (got '$bootstrap')" ;;
esac
disc_impl=${DISCOVERY_IMPL:-$(prev DISCOVERY_IMPL)}
disc_impl=${disc_impl:-etcd-3.5}
disc_image=$(image_of "$disc_impl") \
    || die "DISCOVERY_IMPL must be petcd, etcd-3.5 or etcd-3.4 (got '$disc_impl')"
if [[ -n "${DISCOVERY_IMPL:-}" || -z "${DISCOVERY_IMAGE:-}" ]]; then
    DISCOVERY_IMAGE=$disc_image
fi
export DISCOVERY_IMAGE
FILES=(-f "$FILE")
if [[ $toxiproxy == 1 ]]; then
    FILES+=(-f "$OVERLAY")
    # The peer names the overlay's extra_hosts map per member: the SRV targets for dns.
    if [[ $bootstrap == dns ]]; then suffix=${PETCD_DNS_DOMAIN:-petcd.test}; else suffix=peer; fi
    n1=${NODE1_PEER_HOST:-node1.$suffix}
    n2=${NODE2_PEER_HOST:-node2.$suffix}
    n3=${NODE3_PEER_HOST:-node3.$suffix}
else
    n1=${NODE1_PEER_HOST:-$net.100}
    n2=${NODE2_PEER_HOST:-$net.101}
    n3=${NODE3_PEER_HOST:-$net.102}
fi
export ETCD_IMAGE PETCD_NET_PREFIX=$net NODE1_PEER_HOST=$n1 NODE2_PEER_HOST=$n2 NODE3_PEER_HOST=$n3
export PETCD_INITIAL_CLUSTER=${PETCD_INITIAL_CLUSTER:-node1=http://$n1:2380,node2=http://$n2:2380,node3=http://$n3:2380}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-petcd}

{
    echo "# written by compose/compose.sh; edit ETCD_IMPL here or pass it in the environment"
    echo "ETCD_IMPL=$impl"
    echo "ETCD_IMAGE=$ETCD_IMAGE"
    echo "COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME"
    echo "PETCD_NET_PREFIX=$net"
    echo "PETCD_TOXIPROXY=$toxiproxy"
    echo "PETCD_BOOTSTRAP=$bootstrap"
    echo "DISCOVERY_IMPL=$disc_impl"
    echo "DISCOVERY_IMAGE=$DISCOVERY_IMAGE"
    # Plain `docker-compose` run inside compose/ (no -f) then sees the same files.
    if [[ $toxiproxy == 1 ]]; then
        echo "COMPOSE_FILE=$(basename "$FILE"):docker-compose.toxiproxy.yml"
    elif [[ $bootstrap != static ]]; then
        echo "COMPOSE_FILE=$(basename "$FILE")"
    fi
    echo "NODE1_PEER_HOST=$n1"
    echo "NODE2_PEER_HOST=$n2"
    echo "NODE3_PEER_HOST=$n3"
    echo "PETCD_INITIAL_CLUSTER=$PETCD_INITIAL_CLUSTER"
    for v in NODE1_CLIENT_PORT NODE2_CLIENT_PORT NODE3_CLIENT_PORT PETCD_CLUSTER_TOKEN \
             PETCD_RESTART PETCD_HEARTBEAT_MS PETCD_ELECTION_MS TOXIPROXY_IMAGE \
             TOXIPROXY_INIT_IMAGE TOXIPROXY_API_PORT NODE1_PROXY_CLIENT_PORT \
             NODE2_PROXY_CLIENT_PORT NODE3_PROXY_CLIENT_PORT PETCD_DISCOVERY_TOKEN \
             PETCD_DISCOVERY_SIZE DISCOVERY_CLIENT_PORT PETCD_DNS_DOMAIN DNSMASQ_IMAGE; do
        [[ -n "${!v:-}" ]] && echo "$v=${!v}"
    done
    true
} > "$ENVFILE.tmp" && mv "$ENVFILE.tmp" "$ENVFILE"

# `wait [timeout]`: poll each member's container health until all are healthy.
if [[ "${1:-}" == wait ]]; then
    timeout=${2:-90}
    deadline=$(( $(date +%s) + timeout ))
    while :; do
        ids=$("${COMPOSE[@]}" "${FILES[@]}" ps -q)
        [[ -n "$ids" ]] || die "no containers in project $COMPOSE_PROJECT_NAME (run up -d first)"
        # The one-shot toxiproxy-init and discovery-init have exited by design once members run.
        states=$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids \
                 | grep -Ev '[_-](toxiproxy|discovery)-init[_-]' || true)
        if ! grep -Eqv ' running (healthy|none)$' <<<"$states"; then  # none: no healthcheck (e.g. Shopify's image)
            echo "$states" | sed 's/^\//healthy: /'
            exit 0
        fi
        if grep -Eq ' (created|exited|dead) ' <<<"$states"; then
            echo "$states" >&2
            die "a member is not running (see: compose/compose.sh logs)"
        fi
        if (( $(date +%s) >= deadline )); then
            echo "$states" >&2
            die "not all members healthy after ${timeout}s"
        fi
        sleep 1
    done
fi

exec "${COMPOSE[@]}" "${FILES[@]}" "$@"
