#!/bin/sh
# One-shot set-up of the Toxiproxy service of docker-compose.toxiproxy.yml. It runs in the
# proxy's network namespace (`network_mode: service:toxiproxy`, with NET_ADMIN), so 127.0.0.1 is
# the proxy's API and `ip addr` changes the proxy's own interface. Any image with a POSIX sh,
# `ip` and `curl` can run it (petcd/toxiproxy has all three).
#
# 1. Adds one address per directed peer link to the proxy's interface: <prefix>.2SD is the link
#    from node S to node D (.212 is node1->node2, .231 node3->node1). The bridge delivers to any
#    address the container answers ARP for, so every member reaches these addresses.
# 2. Waits (with a deadline) for the Toxiproxy API and POSTs /populate with the proxies (nine for
#    3 members, 25 for PETCD_MEMBERS=5):
#      nodeS_to_nodeD   <prefix>.2SD:2380 -> node D's peer port <prefix>.(99+D):2380
#      client_to_nodeD  0.0.0.0:2379D     -> node D's client port <prefix>.(99+D):2379
#    /populate keeps proxies that already exist unchanged, so running it twice is harmless.
#
# Environment: PETCD_NET_PREFIX (default 172.16.238), PETCD_MEMBERS (3 or 5, default 3),
# TOXIPROXY_INIT_TIMEOUT (seconds, default 60).
set -eu

net=${PETCD_NET_PREFIX:-172.16.238}
api=http://127.0.0.1:8474
timeout=${TOXIPROXY_INIT_TIMEOUT:-60}
case ${PETCD_MEMBERS:-3} in
    5) nodes="1 2 3 4 5" ;;
    *) nodes="1 2 3" ;;
esac

dev=$(ip -o -4 addr show | awk -v p="$net." 'index($4, p) == 1 { print $2; exit }')
if [ -z "$dev" ]; then
    echo "toxiproxy-init: no interface with an address in $net.0/24" >&2
    ip -o -4 addr show >&2
    exit 1
fi
for s in $nodes; do
    for d in $nodes; do
        [ "$s" = "$d" ] && continue
        ip addr replace "$net.2$s$d/32" dev "$dev"
    done
done

deadline=$(( $(date +%s) + timeout ))
until curl -fsS -o /dev/null "$api/version" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "toxiproxy-init: Toxiproxy API $api not answering after ${timeout}s" >&2
        exit 1
    fi
    sleep 0.2
done

proxies=""
add() {  # name listen upstream
    proxies="$proxies${proxies:+,}{\"name\":\"$1\",\"listen\":\"$2\",\"upstream\":\"$3\",\"enabled\":true}"
}
for s in $nodes; do
    for d in $nodes; do
        [ "$s" = "$d" ] && continue
        add "node${s}_to_node${d}" "$net.2$s$d:2380" "$net.$((99 + d)):2380"
    done
done
for d in $nodes; do
    add "client_to_node$d" "0.0.0.0:2379$d" "$net.$((99 + d)):2379"
done
curl -fsS -X POST -H 'Content-Type: application/json' --data "[$proxies]" "$api/populate" \
    -o /dev/null
echo "toxiproxy-init: links on $dev ($net.2SD), proxies of members $nodes populated"
