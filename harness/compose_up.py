"""The long-lived compose topology behind `make up` on a machine with a Docker engine.

It is the classic layout of `compose/docker-compose.yml` run by `compose/compose.sh` under the
project name `petcd`: subnet 172.16.238.0/24, members at .100-.102, client ports published on
127.0.0.1:2379, :22379 and :32379, so a plain `etcdctl member list` on the host (default endpoint
127.0.0.1:2379) and `docker compose -f compose/docker-compose.yml exec node1 etcdctl ...` both
work. With `toxiproxy=True` the overlay `compose/docker-compose.toxiproxy.yml` is added
(Toxiproxy API on 127.0.0.1:8474). `bootstrap` picks the topology file: "static" (the above),
"discovery" (`compose/docker-compose.discovery.yml`: a v2 discovery service of `discovery_impl`
at .10, published on 127.0.0.1:2399, and members booting from ETCD_DISCOVERY) or "dns"
(`compose/docker-compose.dns.yml`: dnsmasq at .53 with the SRV records, members booting from
ETCD_DISCOVERY_SRV=petcd.test). Same members, addresses and host ports in all three.

Invariants:
- `up` builds the implementation's image (and the proxy's) with images/build.sh first, which is
  cached: a warm rebuild takes seconds. It returns 0 only once all three members are healthy and
  agree on one leader; on failure it prints the containers' log tails and removes the project.
- `down` removes the project's containers, network and volumes, whichever bootstrap made them
  (read from the containers' compose service labels); it is a no-op when none exist.
"""

from __future__ import annotations

import json
import os
import subprocess  # compose.sh and build.sh: the scripts users run; containers go via the SDK
import time
from collections.abc import Callable

from harness import docker_control as dc
from harness.cluster import ClusterError
from harness.docker_backend import BOOTSTRAP_FILES, BUILD_SCRIPT, DNS_DOMAIN, IMAGES
from harness.etcdctl import Etcdctl
from harness.impls import REPO_ROOT, etcdctl_35

COMPOSE_SH = REPO_ROOT / "compose" / "compose.sh"
ENV_FILE = REPO_ROOT / "compose" / ".env"
PROJECT = "petcd"
MEMBERS = ("node1", "node2", "node3")
DEFAULT_CLIENT_PORTS = (2379, 22379, 32379)
DISCOVERY_CLIENT_PORT = 2399  # the discovery file's default host port for its service
BUILD_TIMEOUT = 1800.0
CLI_TIMEOUT = 300.0

Say = Callable[[str], None]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["COMPOSE_PROJECT_NAME"] = PROJECT
    env.update(extra)
    return env


def _compose_sh(*args: str, timeout: float = CLI_TIMEOUT, capture: bool = True,
                **env: str) -> subprocess.CompletedProcess[str]:
    # The very script a user runs (it writes compose/.env), so `make up` is what the docs show.
    return subprocess.run(["bash", str(COMPOSE_SH), *args], check=False, text=True,
                          capture_output=capture, timeout=timeout, env=_env(**env),
                          stdin=subprocess.DEVNULL)


def remembered(name: str) -> str | None:
    """A variable compose.sh recorded in compose/.env by the last run, if any."""
    try:
        lines = ENV_FILE.read_text().splitlines()
    except OSError:
        return None
    found = [line.split("=", 1)[1] for line in lines if line.startswith(f"{name}=")]
    return found[-1] if found else None


def _project_containers() -> list[dict[str, str]]:
    """Name, state and compose service of every container of the `petcd` project."""
    flt = {"label": f"com.docker.compose.project={PROJECT}"}
    return [{"name": c.name, "state": c.status,
             "service": c.labels.get("com.docker.compose.service", "")}
            for c in dc.client().containers.list(all=True, filters=flt)]


def containers() -> dict[str, str]:
    """Container name -> state of every container of the `petcd` project."""
    return {c["name"]: c["state"] for c in _project_containers()}


def running_topology() -> tuple[str, bool]:
    """(bootstrap, toxiproxy) of the project's existing containers, from their compose service
    names: a `discovery` or `dns` service means that bootstrap, `toxiproxy` the overlay."""
    services = {c["service"] for c in _project_containers()}
    bootstrap = next((b for b in ("discovery", "dns") if b in services), "static")
    return bootstrap, "toxiproxy" in services


def _leftovers() -> list[str]:
    _, nets, vols = dc.labelled(PROJECT)
    return [*nets, *vols]


def client_endpoints() -> list[str]:
    """The members' client URLs on the host (NODEn_CLIENT_PORT overrides the defaults)."""
    urls = []
    for i, default in enumerate(DEFAULT_CLIENT_PORTS, start=1):
        port = os.environ.get(f"NODE{i}_CLIENT_PORT") or remembered(f"NODE{i}_CLIENT_PORT")
        urls.append(f"http://127.0.0.1:{port or default}")
    return urls


def _agreed_leader(timeout: float) -> str:
    """Wait until every member answers `endpoint status` with the same non-zero leader."""
    ctl = Etcdctl(client_endpoints(), binary=etcdctl_35(), command_timeout="2s", timeout=10.0)
    deadline = time.monotonic() + timeout
    last = "not polled"
    while True:
        res = ctl("endpoint", "status", "-w", "json")
        if res.ok:
            docs = json.loads(res.stdout)
            leaders = {int(d["Status"].get("leader", 0)) for d in docs}
            if len(docs) == len(MEMBERS) and len(leaders) == 1 and 0 not in leaders:
                return f"{leaders.pop():x}"
            last = f"leaders seen: {leaders}"
        else:
            last = res.stderr.strip()[-300:]
        if time.monotonic() >= deadline:
            raise TimeoutError(f"members did not agree on a leader within {timeout:.0f}s: {last}")
        time.sleep(0.2)


def build_images(impl: str, toxiproxy: bool, say: Say, bootstrap: str = "static",
                 discovery_impl: str = "etcd-3.5") -> bool:
    """images/build.sh for the implementation (and the proxy, discovery service or DNS server
    the topology needs); its progress goes to stderr."""
    steps = [impl, *(["toxiproxy"] if toxiproxy else [])]
    if bootstrap == "discovery" and discovery_impl != impl:
        steps.append(discovery_impl)
    if bootstrap == "dns":
        steps.append("dnsmasq")
    say(f"building images ({', '.join(steps)}) with images/build.sh (cached)")
    # A shell script (mmdebstrap, apt-get download, docker build): run as a process.
    res = subprocess.run(["bash", str(BUILD_SCRIPT), *steps], check=False, timeout=BUILD_TIMEOUT,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    if res.returncode != 0:
        say(f"images/build.sh {' '.join(steps)} failed (rc={res.returncode})")
    return res.returncode == 0


def print_members(say: Say) -> None:
    """`etcdctl member list` and `endpoint status` of the topology, as a user would run them."""
    ctl = Etcdctl(client_endpoints(), binary=etcdctl_35(), command_timeout="3s")
    for line in ctl("member", "list", "-w", "table").stdout.splitlines():
        say(line)
    for line in ctl("endpoint", "status", "-w", "table").stdout.splitlines():
        say(line)


def up(impl: str, toxiproxy: bool, timeout: float, say: Say, bootstrap: str = "static",
       discovery_impl: str = "etcd-3.5") -> int:
    """Start (or find running) the 3-member compose topology of `impl` booted by `bootstrap`
    (static, discovery or dns); 0 once healthy."""
    if bootstrap not in BOOTSTRAP_FILES:
        say(f"bootstrap must be one of {', '.join(BOOTSTRAP_FILES)}, not {bootstrap!r}")
        return 1
    running = {n: s for n, s in containers().items() if s == "running"}
    if running:
        have = remembered("ETCD_IMPL") or "petcd"
        have_boot, have_proxy = running_topology()
        if have != impl or have_proxy != toxiproxy or have_boot != bootstrap:
            say(f"a {have} ({have_boot}{' +toxiproxy' if have_proxy else ''}) compose cluster "
                f"is already up (project {PROJECT}); run `make down` first")
            return 1
        say(f"{impl} ({bootstrap}) compose cluster already running (project {PROJECT})")
    else:
        if not build_images(impl, toxiproxy, say, bootstrap, discovery_impl):
            return 1
        how = {"static": "", "discovery": f", booting from a {discovery_impl} discovery service",
               "dns": ", booting from DNS SRV records (dnsmasq)"}[bootstrap]
        say(f"starting 3-member {impl} cluster ({IMAGES[impl]}) with compose/compose.sh "
            f"({BOOTSTRAP_FILES[bootstrap].name}{how})"
            f"{' and the Toxiproxy overlay' if toxiproxy else ''}")
        res = _compose_sh("up", "-d", "--remove-orphans", ETCD_IMPL=impl,
                          PETCD_TOXIPROXY="1" if toxiproxy else "0", PETCD_BOOTSTRAP=bootstrap,
                          DISCOVERY_IMPL=discovery_impl)
        if res.returncode != 0:
            say(f"compose up failed:\n{res.stderr.strip()}")
            _fail_cleanup(say)
            return 1
    wait = _compose_sh("wait", str(int(timeout)), timeout=timeout + 60)
    if wait.returncode != 0:
        say(f"members not healthy:\n{wait.stderr.strip()}")
        _fail_cleanup(say)
        return 1
    try:
        leader = _agreed_leader(timeout=30.0)
    except TimeoutError as exc:
        say(str(exc))
        _fail_cleanup(say)
        return 1
    print_members(say)
    say(f"leader {leader}; host etcdctl's default endpoint 127.0.0.1:2379 is node1")
    if toxiproxy:
        say("Toxiproxy API: http://127.0.0.1:8474 (proxies nodeS_to_nodeD, client_to_nodeN)")
    if bootstrap == "discovery":
        port = remembered("DISCOVERY_CLIENT_PORT") or DISCOVERY_CLIENT_PORT
        token = remembered("PETCD_DISCOVERY_TOKEN") or "petcd-discovery"
        say(f"discovery service: curl -s 'http://127.0.0.1:{port}/v2/keys/discovery/{token}"
            "?recursive=true'")
    if bootstrap == "dns":
        say(f"SRV: docker compose -f compose/{BOOTSTRAP_FILES[bootstrap].name} exec node1 "
            f"etcdctl --discovery-srv {DNS_DOMAIN} member list")
    say(f"inside: docker compose -f compose/{BOOTSTRAP_FILES[bootstrap].name} exec node1 "
        "etcdctl member list")
    say("stop: make down")
    return 0


def _fail_cleanup(say: Say) -> None:
    for name in containers():
        say(f"--- {name} log tail:\n{dc.logs(name, 20)}")
    down(say)


def present() -> bool:
    """Whether any container, network or volume of the project exists."""
    return bool(containers()) or bool(_leftovers())


def down(say: Say) -> bool:
    """Remove the project's containers, network and volumes; False if nothing was there."""
    if not present():
        return False
    # The file of the topology that is up, whatever compose/.env remembers.
    bootstrap, toxiproxy = running_topology()
    res = _compose_sh("down", "-v", "--remove-orphans", "-t", "2", PETCD_BOOTSTRAP=bootstrap,
                      PETCD_TOXIPROXY="1" if toxiproxy else "0")
    if res.returncode != 0 or present():
        say(f"compose down left {sorted(containers())} {_leftovers()}:\n{res.stderr.strip()}")
        raise ClusterError("compose down failed")
    say(f"removed the compose cluster (project {PROJECT}: containers, network, volumes)")
    return True


def status(say: Say) -> int:
    """Containers' states and each member's status; 0 if all three answer."""
    states = containers()
    if not states:
        say(f"no compose cluster (project {PROJECT})")
        return 3
    for name, state in sorted(states.items()):
        say(f"{name} {state}")
    ctl = Etcdctl(client_endpoints(), binary=etcdctl_35(), command_timeout="2s")
    res = ctl("endpoint", "status", "-w", "table")
    for line in (res.stdout or res.stderr).splitlines():
        say(line)
    return 0 if res.ok else 1
